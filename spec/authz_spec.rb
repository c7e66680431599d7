# frozen_string_literal: true

RSpec.describe Portcullis::AccessPolicy do
  def code_of
    yield
    raise "expected Portcullis::ConfigError"
  rescue Portcullis::ConfigError => e
    e.code
  end

  let(:rules) do
    [{ match: { issuer: "CN=Ops CA,O=MyOrg", spiffe_prefix: "spiffe://example.org/ops/" },
       grant: ["containers:deploy"] }]
  end

  describe ".new" do
    it "builds from plain hashes with symbol or string keys" do
      expect(described_class.new(rules: rules).size).to eq(1)
      expect(described_class.new(rules: [{ "match" => { "cn" => "x" }, "grant" => "files:read" }]).size).to eq(1)
      expect(described_class.new(rules: []).size).to eq(0)
    end

    it "refuses a rule that would match everyone" do
      expect(code_of { described_class.new(rules: [{ match: {}, grant: ["x"] }]) }).to eq("authz.empty_match")
      expect(code_of { described_class.new(rules: [{ match: { cn: nil }, grant: ["x"] }]) }).to eq("authz.empty_match")
    end

    it "refuses malformed matchers and permissions with codes" do
      bad = {
        { issuer: "Ops CA" } => "authz.bad_rule",
        { spiffe_prefix: "spiffe://example.org/../ops/" } => "authz.bad_rule",
        { spiffe_prefix: "spiffe://example.org:80/ops/" } => "authz.bad_rule",
        { dns: "*" } => "authz.bad_rule",
        { spiffe_trust_domain: "spiffe://example.org/x" } => "authz.bad_rule"
      }
      bad.each do |match, code|
        expect(code_of { described_class.new(rules: [{ match: match, grant: ["x"] }]) }).to eq(code), match.inspect
      end
      expect(code_of { described_class.new(rules: [{ match: { cn: "a" }, grant: ["a b"] }]) }).to eq("authz.bad_permission")
      expect(code_of { described_class.new(rules: [{ match: { cn: "a" }, grant: [] }]) }).to eq("authz.no_grants")
    end

    it "refuses unknown keys instead of silently widening a match" do
      expect { described_class.new(rules: [{ match: { isuer: "CN=x", cn: "a" }, grant: ["x"] }]) }
        .to raise_error(ArgumentError, /isuer/)
      expect { described_class.new(rules: [{ match: { cn: "a" }, grantz: ["x"] }]) }.to raise_error(ArgumentError, /grantz/)
      expect { described_class.new(rules: [{ grant: ["x"] }]) }.to raise_error(ArgumentError, /match/)
      expect { described_class.new(rules: ["cn=a"]) }.to raise_error(ArgumentError)
      expect { described_class.new(rules: [{ match: { cn: 1 }, grant: ["x"] }]) }.to raise_error(ArgumentError)
      expect { described_class.new }.to raise_error(ArgumentError)
    end
  end

  describe "deciding on verified identities" do
    # A CA named by hand, so its DN can carry exactly the attributes a test needs.
    def ca_named(pairs)
      key = TestPKI.new_key
      cert = TestPKI.build(subject: OpenSSL::X509::Name.new(pairs), public_key: key,
                           not_before: TestPKI::VALID_FROM, not_after: TestPKI::VALID_UNTIL)
      TestPKI.add_ca_extensions(cert, OpenSSL::X509::ExtensionFactory.new(cert, cert))
      cert.sign(key, OpenSSL::Digest.new("SHA256"))
      TestPKI::CA.new(cert, key)
    end

    def verified(ca, **leaf)
      issued = ca.issue(**leaf)
      Portcullis::TrustStore.new(ca: ca.pem).verify(issued.cert)
    end

    let(:ops_ca) { ca_named([["O", "MyOrg"], ["CN", "Ops CA"]]) }
    let(:policy) do
      described_class.new(rules: [
        { match: { issuer: "cn=ops ca, o=myorg", spiffe_prefix: "spiffe://example.org/ops/" },
          grant: ["containers:deploy", "files:read"] },
        { match: { dns: "*.trusted.example.com" }, grant: ["files:read"] },
        { match: { subject: "CN=auditor,O=MyOrg", issuer: "CN=Ops CA,O=MyOrg" }, grant: ["audit:read"] }
      ])
    end

    it "takes permissions as Symbols everywhere, and grants: as the toml spells it" do
      id = verified(ops_ca, cn: "deployer", uris: ["spiffe://example.org/ops/deployer"])
      expect(policy.allowed?(id, :"containers:deploy")).to be(true)
      expect(policy.authorize!(id, :"files:read")).to be(true)
      expect { policy.authorize!(id, :"audit:read") }.to raise_error(Portcullis::Forbidden)
      toml_spelled = described_class.new(rules: [{ match: { cn: "deployer" }, grants: [:deploy] }])
      expect(toml_spelled.permissions(id)).to eq(["deploy"])
      expect { described_class.new(rules: [{ match: { cn: "x" }, grant: ["a"], grants: ["b"] }]) }
        .to raise_error(ArgumentError, /both grant: and grants:/)
    end

    it "grants by structural issuer DN and SPIFFE prefix together" do
      id = verified(ops_ca, cn: "builder", uris: ["spiffe://example.org/ops/builder"])
      expect(policy.allowed?(id, "containers:deploy")).to be(true)
      expect(policy.permissions(id)).to eq(["containers:deploy", "files:read"])
      expect(policy.permissions(id)).to be_frozen
      expect(policy.authorize!(id, "files:read")).to be(true)
    end

    it "is not fooled by SPIFFE look-alikes, DNS look-alikes or the wrong issuer" do
      expect(policy.permissions(verified(ops_ca, uris: ["spiffe://example.org/opsevil/x"]))).to eq([])
      expect(policy.permissions(verified(ops_ca, uris: ["spiffe://example.org/ops"]))).to eq([])
      expect(policy.permissions(verified(ops_ca, dns: ["eviltrusted.example.com"]))).to eq([])
      expect(policy.permissions(verified(ops_ca, dns: ["api.trusted.example.com"]))).to eq(["files:read"])
      other = ca_named([["O", "MyOrg"], ["CN", "Dev CA"]])
      expect(policy.permissions(verified(other, uris: ["spiffe://example.org/ops/builder"]))).to eq([])
    end

    it "does not let a CN containing ',O=MyOrg' stand in for O=MyOrg" do
      evil_ca = ca_named([["CN", "Ops CA,O=MyOrg"]])
      id = verified(evil_ca, cn: "builder", uris: ["spiffe://example.org/ops/builder"])
      expect(id.issuer).to eq('CN=Ops CA\\,O=MyOrg')
      expect(policy.permissions(id)).to eq([])
      auditor_look_alike = ca_named([["CN", "auditor,O=MyOrg"]])
      expect(policy.permissions(verified(auditor_look_alike, cn: "auditor,O=MyOrg"))).to eq([])
    end

    it "raises Portcullis::Forbidden with a code naming the identity" do
      id = verified(ops_ca, cn: "builder", uris: ["spiffe://example.org/ops/builder"])
      expect { policy.authorize!(id, "audit:read") }.to raise_error(Portcullis::Forbidden) { |e|
        expect(e.code).to eq("authz.forbidden")
        expect(e.message).to include("spiffe://example.org/ops/builder", "audit:read")
      }
      expect(policy.allowed?(id, "audit:read")).to be(false)
    end
  end

  it "refuses anything but a Portcullis::Identity" do
    policy = described_class.new(rules: rules)
    fake = Struct.new(:subject, :spiffe_id).new("CN=admin", "spiffe://example.org/ops/x")
    expect { policy.allowed?(fake, "containers:deploy") }.to raise_error(TypeError)
    expect { policy.permissions({ subject: "CN=admin" }) }.to raise_error(TypeError)
  end
end

RSpec.describe Portcullis::RouteRequirements do
  subject(:routes) do
    described_class.new("/admin" => "admin", "POST /deploy" => %w[containers:deploy], :"/reports" => [:"reports:read"])
  end

  it "lists what a request needs, folding the spellings a router would fold" do
    ["/admin", "//admin", "/x/../admin", "/%61dmin", "/ADMIN", "/admin;x", "/admin/users", "\\admin"].each do |path|
      expect(routes.required("GET", path)).to eq(["admin"]), path
    end
    expect(routes.required("GET", "/administrator")).to eq([])
    expect(routes.required("GET", "/reports/q3")).to eq(["reports:read"])
  end

  it "matches methods case-insensitively, HEAD as GET, and only the named method" do
    expect(routes.required("post", "/deploy")).to eq(["containers:deploy"])
    expect(routes.required("GET", "/deploy")).to eq([])
    expect(described_class.new("GET /r" => "r").required("HEAD", "/r")).to eq(["r"])
  end

  it "compares undecodable and binary paths as bytes" do
    expect(routes.required("GET", "/%ff/../admin".b)).to eq(["admin"])
    expect(routes.required("GET", "/\xff\xfe".b)).to eq([])
  end

  it "returns frozen results and is itself shareable" do
    expect(routes.required("GET", "/admin")).to be_frozen
    expect(routes.required("GET", "/admin").first).to be_frozen
    expect(routes).not_to be_empty
    expect(described_class.new({})).to be_empty
  end

  it "refuses malformed tables with typed errors" do
    { { "admin" => "a" } => "authz.bad_route", { "GET POST /x" => "a" } => "authz.bad_route",
      { "/x" => [] } => "authz.bad_route", { "/x" => "" } => "authz.bad_permission",
      { "/x" => "two words" } => "authz.bad_permission" }.each do |map, code|
      expect { described_class.new(map) }.to raise_error(Portcullis::ConfigError) { |e| expect(e.code).to eq(code) }
    end
    expect { described_class.new("/x" => 1) }.to raise_error(TypeError)
    expect { described_class.new([["/x", "a"]]) }.to raise_error(TypeError)
    expect { described_class.new(1 => "a") }.to raise_error(TypeError, /require: keys/)
  end
end

RSpec.describe Portcullis::SkipRoutes do
  subject(:skip) { described_class.new(["/up", "/assets/"]) }

  it "skips canonical paths at or beneath a prefix, and nothing else" do
    %w[/up /up/ /up/db /assets/app.css].each { |path| expect(skip.skips?(path)).to be(true), path }
    ["/upload", "/UP", "//up", "/up/../admin", "/up/%2e%2e/admin", "/up;x", "/up/..", "/up\\..\\admin",
     "/\xff".b].each do |path|
      expect(skip.skips?(path)).to be(false), path
    end
    expect(described_class.new([])).to be_empty
  end

  it "refuses prefixes that could never match, with a code" do
    ["up", "GET /up", "/a/../b", "/%75p"].each do |bad|
      expect { described_class.new([bad]) }.to raise_error(Portcullis::ConfigError) { |e| expect(e.code).to eq("authz.bad_route") }
    end
    expect { described_class.new([:up]) }.to raise_error(TypeError)
  end
end

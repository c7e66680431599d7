# frozen_string_literal: true

RSpec.describe Portcullis::AccessPolicy do
  def code_of
    yield
    raise "expected Portcullis::Forbidden"
  rescue Portcullis::Forbidden => e
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
      expect { described_class.new(rules: [{ match: { cn: "a" }, grants: ["x"] }]) }.to raise_error(ArgumentError, /grants/)
      expect { described_class.new(rules: [{ grant: ["x"] }]) }.to raise_error(ArgumentError, /match/)
      expect { described_class.new(rules: ["cn=a"]) }.to raise_error(ArgumentError)
      expect { described_class.new(rules: [{ match: { cn: 1 }, grant: ["x"] }]) }.to raise_error(ArgumentError)
      expect { described_class.new }.to raise_error(ArgumentError)
    end
  end

  it "refuses anything but a Portcullis::Identity" do
    policy = described_class.new(rules: rules)
    fake = Struct.new(:subject, :spiffe_id).new("CN=admin", "spiffe://example.org/ops/x")
    expect { policy.allowed?(fake, "containers:deploy") }.to raise_error(TypeError)
    expect { policy.permissions({ subject: "CN=admin" }) }.to raise_error(TypeError)
  end
end

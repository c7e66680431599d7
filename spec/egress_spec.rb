# frozen_string_literal: true

require "spec_helper"
require "ipaddr"

RSpec.describe Portcullis::EgressPolicy do
  let(:public_dns) { ->(_host) { ["93.184.216.34"] } }
  let(:http) { described_class.new(schemes: %w[http https]) }

  def denial(policy, url, **opts)
    policy.check!(url, **opts)
    nil
  rescue Portcullis::EgressDenied => e
    e
  end

  it "returns a Destination with the canonical URL, host, port and checked addresses" do
    policy = described_class.new(allow_hosts: ["api.example.com"])
    dest = policy.check!("https://API.Example.com./v1?q=1", resolver: ->(_h) { ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"] })
    expect(dest).to be_a(Portcullis::Destination)
    expect(dest.url).to eq("https://api.example.com./v1?q=1")
    expect(dest.host).to eq("api.example.com")
    expect(dest.port).to eq(443)
    expect(dest.addresses).to eq(["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
    expect(dest.to_h.keys).to eq(%i[url host port addresses])
    expect(dest.inspect).to include("api.example.com")
  end

  it "has the documented defaults: https only, port 443" do
    policy = described_class.new
    expect(denial(policy, "http://example.com/", resolver: public_dns).code).to eq("egress.scheme")
    expect(denial(policy, "https://example.com:8443/", resolver: public_dns).code).to eq("egress.port")
    expect(policy.check!("https://example.com/", resolver: public_dns).port).to eq(443)
    expect(http.check!("http://example.com/", resolver: public_dns).port).to eq(80)
  end

  {
    "http://169.254.169.254/latest/meta-data/" => "egress.metadata",
    "http://metadata.google.internal/computeMetadata/v1/" => "egress.metadata",
    "http://[fd00:ec2::254]/" => "egress.metadata",
    "http://2130706433/" => "egress.reserved_address",
    "http://0177.0.0.1/" => "egress.reserved_address",
    "http://0x7f.1/" => "egress.reserved_address",
    "http://127.1/" => "egress.reserved_address",
    "http://[::ffff:127.0.0.1]/" => "egress.reserved_address",
    "http://[64:ff9b::10.0.0.1]/" => "egress.reserved_address",
    "http://[2002:c0a8:0101::]/" => "egress.ipv6_tunnel",
    "http://[2002:808:808::]/" => "egress.ipv6_tunnel",
    "http://[2001:0:4136:e378:8000:63bf:a247:27dd]/" => "egress.ipv6_tunnel",
    "http://vault.example../" => "egress.bad_url",
    "http://metadata.google.internal../" => "egress.bad_url",
    "http://a..example/" => "egress.bad_url",
    "http://user:pw@93.184.216.34/" => "egress.userinfo",
    "http://evil.example\\@good.example/" => "egress.backslash",
    "http://evil.example/\n" => "egress.control_char",
    "http://ex%61mple.com/" => "egress.encoded_host",
    "http://example\u3002com/" => "egress.encoded_host",
    "gopher://example.com/" => "egress.scheme",
    "http://example.com:6379/" => "egress.port",
    "not a url" => "egress.control_char",
    "::" => "egress.bad_url"
  }.each do |url, code|
    it "refuses #{url.inspect} with #{code}" do
      err = denial(http, url, resolver: public_dns)
      expect(err).to be_a(Portcullis::EgressDenied)
      expect(err).to be_a(Portcullis::Error)
      expect(err.code).to eq(code)
      expect(http.allowed?(url, resolver: public_dns)).to be(false)
    end
  end

  it "names the address and the matching range in the message" do
    err = denial(http, "http://internal.example/", resolver: ->(_h) { ["10.9.8.7"] })
    expect(err.code).to eq("egress.reserved_address")
    expect(err.message).to include("10.9.8.7", "10.0.0.0/8", "internal.example")
  end

  it "rejects the destination when any DNS answer is bad" do
    err = denial(http, "http://mixed.example/", resolver: ->(_h) { ["93.184.216.34", "::ffff:169.254.169.254"] })
    expect(err.code).to eq("egress.metadata")
  end

  it "accepts IPAddr answers and a single String answer" do
    expect(http.check!("http://x.example/", resolver: ->(_h) { [IPAddr.new("93.184.216.34")] }).addresses).to eq(["93.184.216.34"])
    expect(http.check!("http://x.example/", resolver: ->(_h) { "93.184.216.34" }).addresses).to eq(["93.184.216.34"])
  end

  it "turns resolver failures and junk answers into egress.resolve_failed" do
    expect(denial(http, "http://x.example/", resolver: ->(_h) { [] }).code).to eq("egress.resolve_failed")
    expect(denial(http, "http://x.example/", resolver: ->(_h) { nil }).code).to eq("egress.resolve_failed")
    expect(denial(http, "http://x.example/", resolver: ->(_h) { ["not-an-ip"] }).code).to eq("egress.resolve_failed")
    expect(denial(http, "http://x.example/", resolver: ->(_h) { raise IOError, "timeout" }).message).to include("timeout")
  end

  it "does not call the resolver for IP literals, and calls it with the normalised name" do
    asked = []
    resolver = ->(host) { asked << host; ["93.184.216.34"] }
    http.check!("http://93.184.216.34/", resolver: resolver)
    http.check!("http://WWW.Bücher.DE./", resolver: resolver)
    expect(asked).to eq(["www.xn--bcher-kva.de"])
  end

  it "resolves with the system resolver when no resolver is given" do
    loopback = described_class.new(schemes: ["http"], allow_cidrs: ["127.0.0.0/8", "::1/128"])
    expect(loopback.check!("http://localhost/").addresses).not_to be_empty
    expect(described_class.new(schemes: ["http"]).allowed?("http://localhost/")).to be(false)
    expect(denial(loopback, "http://no-such-host.invalid/").code).to eq("egress.resolve_failed")
  end

  it "matches host patterns exactly or by *.suffix, never by bare suffix" do
    policy = described_class.new(allow_hosts: ["trusted.example.com", "*.internal.example"])
    expect(policy.allowed?("https://trusted.example.com/", resolver: public_dns)).to be(true)
    expect(policy.allowed?("https://eviltrusted.example.com/", resolver: public_dns)).to be(false)
    expect(policy.allowed?("https://a.internal.example/", resolver: public_dns)).to be(true)
    expect(policy.allowed?("https://internal.example/", resolver: public_dns)).to be(false)
    expect(policy.allowed?("https://evilinternal.example/", resolver: public_dns)).to be(false)
    expect(denial(policy, "https://evil.example/", resolver: public_dns).code).to eq("egress.host_not_allowed")
    denying = described_class.new(deny_hosts: ["*.bad.example"])
    expect(denial(denying, "https://x.bad.example/", resolver: public_dns).code).to eq("egress.host_denied")
  end

  it "applies the precedence deny_cidrs > metadata > allow_cidrs > reserved > public" do
    policy = described_class.new(allow_cidrs: ["10.0.0.0/8", "169.254.0.0/16"], deny_cidrs: ["10.1.0.0/16"])
    expect(policy.allowed_ip?("10.2.3.4")).to be(true)
    expect { policy.check_ip!("10.1.2.3") }.to raise_error(Portcullis::EgressDenied) { |e| expect(e.code).to eq("egress.denied_cidr") }
    expect { policy.check_ip!("169.254.169.254") }.to raise_error(Portcullis::EgressDenied) { |e| expect(e.code).to eq("egress.metadata") }
    expect(policy.allowed_ip?("169.254.1.1")).to be(true)
    expect(policy.allowed_ip?("192.168.1.1")).to be(false)
    expect(policy.allowed_ip?("93.184.216.34")).to be(true)
    expect(policy.allowed_ip?(IPAddr.new("::ffff:10.2.3.4"))).to be(true)
    expect { policy.check_ip!("nonsense") }.to raise_error(ArgumentError)
    named = described_class.new(allow_cidrs: ["169.254.169.254/32"])
    expect(named.allowed_ip?("169.254.169.254")).to be(true)
  end

  it "has no bare allocators (objects come only from checks)" do
    expect { Portcullis::Destination.new }.to raise_error(TypeError)
    expect { described_class.allocate }.to raise_error(TypeError)
  end

  it "never raises from allowed?, whatever the input" do
    [nil, 42, "", "http://", "\u0000", "h" * 100_000, :sym, Object.new].each do |input|
      expect(http.allowed?(input)).to be(false)
    end
  end

  it "reads binary Strings (from sockets) as UTF-8 and refuses invalid bytes" do
    location = "https://b\xC3\xBCcher.de/".b
    expect(http.check_redirect!("https://93.184.216.34/", location, resolver: public_dns).host).to eq("xn--bcher-kva.de")
    expect(denial(http, "https://a.example/\xFF".b, resolver: public_dns).code).to eq("egress.bad_url")
    expect(http.allowed?("https://a.example/\xFF".b, resolver: public_dns)).to be(false)
  end

  it "re-checks redirects hop by hop and refuses downgrades" do
    dest = http.check!("https://93.184.216.34/a/b")
    expect(http.check_redirect!(dest, "../c").url).to eq("https://93.184.216.34/c")
    expect(http.check_redirect!("https://93.184.216.34/a", "https://example.com/", resolver: public_dns).host).to eq("example.com")
    { "http://93.184.216.34/" => "egress.downgrade",
      "//169.254.169.254/" => "egress.metadata",
      "https://internal.example/" => "egress.reserved_address" }.each do |location, code|
      expect { http.check_redirect!(dest, location, resolver: ->(_h) { ["10.0.0.1"] }) }
        .to raise_error(Portcullis::EgressDenied) { |e| expect(e.code).to eq(code) }
    end
  end

  it "refuses invalid policies with Portcullis::ConfigError" do
    [{ allow_cidrs: ["10.0.0.0/33"] }, { schemes: ["ftp"] }, { allow_hosts: ["*"] }, { ports: [0] }].each do |opts|
      expect { described_class.new(**opts) }.to raise_error(Portcullis::ConfigError) { |e| expect(e.code).to eq("egress.invalid_policy") }
    end
    expect { described_class.new(ports: [70_000]) }.to raise_error(RangeError)
    expect { described_class.new(bogus: 1) }.to raise_error(ArgumentError)
  end

  it "refuses 6to4 and Teredo unless allowed, and judges what they carry when allowed" do
    six = "https://[2002:808:808::]/"
    teredo = "https://[2001:0:4136:e378:8000:63bf:a247:27dd]/"
    err = denial(described_class.new, six)
    expect(err.code).to eq("egress.ipv6_tunnel")
    expect(err.message).to include("8.8.8.8", "allow_6to4")
    expect(denial(described_class.new, teredo).message).to include("93.184.216.34", "allow_teredo")
    tunnels = described_class.new(allow_6to4: true, allow_teredo: true)
    expect(tunnels.allowed?(six)).to be(true)
    expect(tunnels.allowed?(teredo)).to be(true)
    expect(denial(tunnels, "https://[2002:7f00:1::]/").code).to eq("egress.reserved_address")
    expect(described_class.new(allow_6to4: true).allowed?(teredo)).to be(false)
  end

  it "never lets a re-opened NAT64 prefix carry a reserved IPv4 address" do
    reopened = described_class.new(allow_nat64: false, allow_cidrs: ["64:ff9b::/96"])
    expect(denial(reopened, "https://[64:ff9b::7f00:1]/").code).to eq("egress.reserved_address")
    expect(reopened.allowed?("https://[64:ff9b::93.184.216.34]/")).to be(true)
  end

  it "applies one host-name rule to deny_hosts, allow_hosts and metadata names" do
    dns = ->(_h) { ["93.184.216.34"] }
    deny = described_class.new(deny_hosts: ["vault.corp.example"])
    expect(denial(deny, "https://vault.corp.example./", resolver: dns).code).to eq("egress.host_denied")
    expect(denial(deny, "https://vault.corp.example../", resolver: dns).code).to eq("egress.bad_url")
    allow = described_class.new(allow_hosts: ["api.example.com"])
    expect(allow.check!("https://api.example.com./", resolver: dns).host).to eq("api.example.com")
    expect { described_class.new(deny_hosts: ["vault.corp.example.."]) }
      .to raise_error(Portcullis::ConfigError) { |e| expect(e.code).to eq("egress.invalid_policy") }
  end

  it "hands out the canonical request target and scheme of a destination" do
    dest = described_class.new.check!("https://93.184.216.34/a|b/%zz?q=%zz#frag")
    expect(dest.request_target).to eq("/a|b/%zz?q=%zz")
    expect(dest.scheme).to eq("https")
  end

  it "can disable NAT64 and strict mode" do
    no_nat64 = described_class.new(allow_nat64: false)
    expect(no_nat64.allowed?("https://[64:ff9b::93.184.216.34]/")).to be(false)
    expect(described_class.new.allowed?("https://[64:ff9b::93.184.216.34]/")).to be(true)
    lax = described_class.new(strict: false)
    expect(lax.allowed?("https://user@93.184.216.34/")).to be(true)
    expect(lax.allowed?("https://user@127.0.0.1/")).to be(false)
  end
end

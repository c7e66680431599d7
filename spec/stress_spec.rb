# frozen_string_literal: true

require "spec_helper"
require "erb"

# Every binding, driven from 8 threads at once under GC.stress for a short loop: objects
# crossing the boundary must stay rooted while Rust holds them, and no error may panic.
# TrustStore/Identity, SafeRoot, Command and Config have theirs next to their other specs
# (identity_spec, safe_root_spec, command_spec, config_spec); this file covers the rest.
RSpec.describe "bindings under GC.stress from 8 threads" do
  THREADS = 8
  ROUNDS = 3

  # Runs the block in THREADS threads, ROUNDS times each, with GC.stress on; returns every
  # result. GC.stress makes each allocation collect, so the loops stay short.
  def stressed
    GC.stress = true
    begin
      Array.new(THREADS) { |t| Thread.new { Array.new(ROUNDS) { |i| yield(t, i) } } }.flat_map(&:value)
    ensure
      GC.stress = false
    end
  end

  def code_of
    yield
    nil
  rescue Portcullis::Error => e
    e.code
  end

  let(:root) { TestPKI::CA.root }
  let(:inter) { root.intermediate }
  let(:now) { Time.utc(2025, 6, 1) }

  it "AccessPolicy: allowed?, permissions and authorize! on verified identities" do
    store = Portcullis::TrustStore.new(ca: root.pem)
    ops = store.verify(inter.issue(cn: "ops", uris: ["spiffe://example.org/ops/a"]).cert, chain: [inter.pem], at: now)
    dev = store.verify(inter.issue(cn: "dev", uris: ["spiffe://example.org/dev/a"]).cert, chain: [inter.pem], at: now)
    policy = Portcullis::AccessPolicy.new(rules: [
      { match: { spiffe_prefix: "spiffe://example.org/ops/" }, grant: ["deploy", "read"] },
      { match: { cn: "dev" }, grant: ["read"] }
    ])
    results = stressed do |t, i|
      id = (t + i).even? ? ops : dev
      [policy.allowed?(id, "deploy"), policy.permissions(id), code_of { policy.authorize!(id, "deploy") }]
    end
    expect(results.size).to eq(THREADS * ROUNDS)
    expect(results).to all(satisfy { |allowed, perms, code|
      (allowed && perms == %w[deploy read] && code.nil?) ||
        (!allowed && perms == ["read"] && code == "authz.forbidden")
    })
    expect(results.map(&:first)).to include(true, false)
  end

  it "EgressPolicy/Destination: check!, redirects, refusals and IP checks" do
    policy = Portcullis::EgressPolicy.new(schemes: %w[http https], allow_hosts: ["api.example.com"])
    resolver = ->(_host) { ["93.184.216.34"] }
    results = stressed do |t, i|
      case (t + i) % 3
      when 0
        dest = policy.check!("https://API.example.com/v1?x=#{i}", resolver: resolver)
        [dest.url, dest.host, dest.port, dest.addresses, dest.to_h.size]
      when 1
        dest = policy.check!("http://api.example.com/a/b", resolver: resolver)
        policy.check_redirect!(dest, "../c", resolver: resolver).url
      else
        [code_of { policy.check!("http://169.254.169.254/latest/meta-data/") },
         policy.allowed_ip?("10.0.0.1"), code_of { policy.check_ip!("::ffff:127.0.0.1") }]
      end
    end
    expect(results.size).to eq(THREADS * ROUNDS)
    results.each do |r|
      case r
      when String then expect(r).to eq("http://api.example.com/c")
      when Array
        if r.size == 5
          expect(r).to eq(["https://api.example.com/v1?x=#{r[0][/\d+\z/]}", "api.example.com", 443, ["93.184.216.34"], 4])
        else
          expect(r[0]).to start_with("egress.")
          expect(r[1]).to be(false)
          expect(r[2]).to start_with("egress.")
        end
      end
    end
  end

  it "Certificates: decodes every form and refuses garbage" do
    leaf = inter.issue(cn: "dec")
    escaped = ERB::Util.url_encode(leaf.pem)
    b64 = [leaf.der].pack("m0")
    results = stressed do |t, i|
      case (t + i) % 5
      when 0 then Portcullis::Certificates.decode(leaf.pem).first
      when 1 then Portcullis::Certificates.decode_pem(leaf.pem + inter.pem).first
      when 2 then Portcullis::Certificates.decode_url_escaped_pem(escaped).first
      when 3 then Portcullis::Certificates.decode_base64_der(b64)
      else code_of { Portcullis::Certificates.decode("-----BEGIN CERTIFICATE-----\n!!\n") }
      end
    end
    expect(results.size).to eq(THREADS * ROUNDS)
    expect(results.uniq.sort).to eq([leaf.der, "cert.bad_encoding"].sort)
  end

  it "CertSource: extracts from forwarded headers and refuses untrusted peers" do
    leaf = inter.issue(cn: "fwd")
    escaped = ERB::Util.url_encode(leaf.pem)
    nginx = Portcullis::CertSource.new(:nginx, trusted_proxies: ["10.0.0.0/8"])
    envoy = Portcullis::CertSource.new(:envoy, trusted_proxies: ["10.0.0.0/8"])
    xfcc = %(By=spiffe://example.org/app;Cert="#{escaped}")
    results = stressed do |t, i|
      case (t + i) % 3
      when 0 then nginx.extract({ "HTTP_X_SSL_CLIENT_CERT" => escaped, "REMOTE_ADDR" => "10.1.2.3" }).first
      when 1 then envoy.extract({ "x-forwarded-client-cert" => xfcc }, "10.9.9.9").first
      else code_of { nginx.extract({ "HTTP_X_SSL_CLIENT_CERT" => escaped, "REMOTE_ADDR" => "203.0.113.9" }) }
      end
    end
    expect(results.size).to eq(THREADS * ROUNDS)
    expect(results.uniq.sort).to eq([leaf.der, "cert.untrusted_proxy"].sort)
  end
end

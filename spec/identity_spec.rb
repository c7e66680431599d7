# frozen_string_literal: true

require "tempfile"
require "pathname"
require "uri"

RSpec.describe Portcullis::TrustStore do
  let(:now) { Time.utc(2025, 6, 1) }
  let(:root) { TestPKI::CA.root }
  let(:inter) { root.intermediate }
  let(:leaf) do
    inter.issue(cn: "api-client", dns: ["api.example.com"], uris: ["https://example.com/c"],
                ips: ["10.0.0.7", "2001:db8::1"], emails: ["ops@example.com"], serial: 0xABCDEF)
  end
  let(:store) { described_class.new(ca: root.pem) }

  def error_code
    yield
    raise "expected Portcullis::CertificateError"
  rescue Portcullis::CertificateError => e
    expect(e).to be_a(Portcullis::Error)
    expect(e.message).not_to be_empty
    e.code
  end

  describe ".new" do
    it "accepts PEM text, DER, a file path, a Pathname, OpenSSL certificates and arrays" do
      Tempfile.create(["ca", ".pem"]) do |f|
        f.write(root.pem)
        f.flush
        [root.pem, root.der, f.path, Pathname.new(f.path), root.cert, [root.cert, TestPKI::CA.root("Other").pem]].each do |ca|
          s = described_class.new(ca: ca)
          expect(s.verify(leaf.cert, chain: [inter.cert], at: now).common_name).to eq("api-client")
        end
      end
    end

    it "refuses an empty or unparsable CA bundle with cert.bad_trust_store" do
      expect(error_code { described_class.new(ca: "") }).to eq("cert.bad_trust_store")
      expect(error_code { described_class.new(ca: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n") })
        .to eq("cert.bad_trust_store")
      expect(error_code { described_class.new(ca: "/nonexistent/ca.pem") }).to eq("cert.bad_trust_store")
      expect(error_code { described_class.new(ca: root.pem, crls: ["nope"]) }).to eq("cert.bad_trust_store")
    end

    it "rejects bad arguments with Ruby's own errors" do
      expect { described_class.new(ca: []) }.to raise_error(ArgumentError)
      expect { described_class.new(ca: root.pem, usage: :mail) }.to raise_error(ArgumentError, /usage/)
      expect { described_class.new(ca: root.pem, cache_size: -1) }.to raise_error(ArgumentError)
      expect { described_class.new(ca: 42) }.to raise_error(TypeError)
      expect { described_class.new }.to raise_error(ArgumentError)
    end

    it "reports its configuration" do
      s = described_class.new(ca: root.pem, usage: :server, cache_size: 5)
      expect(s.usage).to eq(:server)
      expect(s.cache_size).to eq(5)
      expect(s.inspect).to include("usage=:server")
      expect(store.usage).to eq(:client)
    end

    it "uses configured intermediates when the peer sends none" do
      s = described_class.new(ca: root.pem, intermediates: [inter.pem])
      expect(s.verify(leaf.cert, at: now).issuer).to eq("CN=Spec Intermediate,O=Portcullis Spec")
      expect(error_code { store.verify(leaf.cert, at: now) }).to eq("cert.unknown_issuer")
    end
  end

  describe "#verify" do
    it "says to pass the rest in chain: when given a PEM bundle as the leaf" do
      expect { store.verify(leaf.cert.to_pem + inter.cert.to_pem, at: now) }
        .to raise_error(Portcullis::CertificateError, /found 2; pass the leaf alone and the rest in chain:/)
    end

    it "returns a frozen Identity with every attribute" do
      id = store.verify(leaf.cert, chain: [inter.cert], at: now)
      expect(id).to be_a(Portcullis::Identity).and be_frozen
      expect(id.subject).to eq("CN=api-client,O=Portcullis Spec")
      expect(id.issuer).to eq("CN=Spec Intermediate,O=Portcullis Spec")
      expect(id.common_name).to eq("api-client")
      expect(id.dns_names).to eq(["api.example.com"])
      expect(id.uris).to eq(["https://example.com/c"])
      expect(id.emails).to eq(["ops@example.com"])
      expect(id.ips).to eq(["10.0.0.7", "2001:db8::1"])
      expect(id.spiffe_id).to be_nil
      expect(id.serial).to eq("abcdef")
      expect(id.fingerprint).to eq(OpenSSL::Digest::SHA256.hexdigest(leaf.der))
      expect(id.not_before).to eq(Time.utc(2021, 1, 1))
      expect(id.not_after).to eq(Time.utc(2035, 1, 1))
      expect(id.not_before).to be_utc
      expect(id.chain_fingerprints).to eq([leaf.der, inter.der, root.der].map { |d| OpenSSL::Digest::SHA256.hexdigest(d) })
      expect(id.to_h).to include(subject: id.subject, serial: "abcdef", ips: id.ips, spiffe_id: nil,
                                 not_after: Time.utc(2035, 1, 1), chain_fingerprints: id.chain_fingerprints)
      expect(id.to_h.keys).to eq(%i[subject issuer common_name dns_names uris emails ips spiffe_id serial
                                    fingerprint not_before not_after chain_fingerprints revocation_warning])
      expect(id.revocation_warning).to be_nil
      expect(id.inspect).to include("CN=api-client")
    end

    it "accepts OpenSSL certificates, PEM and DER, with the chain in any order" do
      i2 = inter.intermediate("Second")
      deep = i2.issue(cn: "deep")
      by_cert = store.verify(deep.cert, chain: [inter.cert, i2.cert], at: now)
      by_pem = store.verify(deep.pem, chain: [i2.pem + inter.pem], at: now)
      by_der = store.verify(deep.der, chain: [i2.der, inter.der], at: now)
      expect(by_cert).to eq(by_pem)
      expect(by_pem).to eql(by_der)
      expect(by_cert.hash).to eq(by_der.hash)
      expect(by_cert).not_to eq(store.verify(leaf.cert, chain: [inter.cert], at: now))
      expect(by_cert).not_to eq("deep")
      expect(by_cert.chain_fingerprints.size).to eq(4)
    end

    it "defaults the verification time to now" do
      expect(store.verify(leaf.cert, chain: [inter.cert]).common_name).to eq("api-client")
    end

    it "cannot be constructed from Ruby" do
      expect { Portcullis::Identity.new }.to raise_error(TypeError)
      expect { Portcullis::Identity.allocate }.to raise_error(TypeError)
    end

    it "fills spiffe_id for an X509-SVID" do
      svid = inter.issue(cn: "svid", uris: ["spiffe://example.org/ns/prod/sa/api"])
      id = described_class.new(ca: root.pem, require_spiffe: true).verify(svid.cert, chain: [inter.cert], at: now)
      expect(id.spiffe_id).to eq("spiffe://example.org/ns/prod/sa/api")
      expect(id.spiffe_trust_domain).to eq("example.org")
    end

    it "raises cert.bad_encoding for garbage, truncated and oversized input" do
      expect(error_code { store.verify("garbage", at: now) }).to eq("cert.bad_encoding")
      expect(error_code { store.verify(leaf.der[0, 100], at: now) }).to eq("cert.bad_encoding")
      expect(error_code { store.verify(Random.bytes(2048), at: now) }).to eq("cert.bad_encoding")
      expect(error_code { store.verify("\x30" + ("A" * (1024 * 1024)), at: now) }).to eq("cert.bad_encoding")
      expect(error_code { store.verify(leaf.cert, chain: ["junk"], at: now) }).to eq("cert.bad_encoding")
      expect { store.verify(42) }.to raise_error(TypeError)
      expect { store.verify(leaf.cert, chain: "x") }.to raise_error(TypeError)
      expect { store.verify(leaf.cert, at: "tomorrow") }.to raise_error(TypeError)
    end

    it "raises cert.unknown_issuer for a missing intermediate or a foreign CA" do
      expect(error_code { store.verify(leaf.cert, at: now) }).to eq("cert.unknown_issuer")
      foreign = TestPKI::CA.root("Foreign").issue(cn: "x")
      expect(error_code { store.verify(foreign.cert, at: now) }).to eq("cert.unknown_issuer")
    end

    it "raises cert.expired and cert.not_yet_valid, even on a cache hit" do
      store.verify(leaf.cert, chain: [inter.cert], at: now)
      expect(error_code { store.verify(leaf.cert, chain: [inter.cert], at: Time.utc(2036, 1, 1)) }).to eq("cert.expired")
      expect(error_code { store.verify(leaf.cert, chain: [inter.cert], at: Time.utc(2020, 6, 1)) }).to eq("cert.not_yet_valid")
    end

    it "raises cert.wrong_usage for a server certificate in a client store" do
      server = inter.issue(cn: "srv", dns: ["srv.example.com"], eku: [:server])
      expect(error_code { store.verify(server.cert, chain: [inter.cert], at: now) }).to eq("cert.wrong_usage")
      server_store = described_class.new(ca: root.pem, usage: :server)
      expect(server_store.verify(server.cert, chain: [inter.cert], at: now).dns_names).to eq(["srv.example.com"])
    end

    it "raises cert.bad_signature for a tampered certificate" do
      der = leaf.der.dup
      der.setbyte(der.bytesize - 2, der.getbyte(der.bytesize - 2) ^ 1)
      expect(error_code { store.verify(der, chain: [inter.cert], at: now) }).to eq("cert.bad_signature")
    end

    it "raises cert.ca_as_leaf for a CA certificate presented as the client" do
      expect(error_code { store.verify(inter.cert, at: now) }).to eq("cert.ca_as_leaf")
    end

    it "raises cert.not_spiffe for SVID rule breaches" do
      two = inter.issue(uris: ["spiffe://example.org/a", "spiffe://example.org/b"])
      expect(error_code { store.verify(two.cert, chain: [inter.cert], at: now) }).to eq("cert.not_spiffe")
      strict = described_class.new(ca: root.pem, require_spiffe: true)
      expect(error_code { strict.verify(leaf.cert, chain: [inter.cert], at: now) }).to eq("cert.not_spiffe")
    end

    it "raises cert.chain_too_long for an absurd presented chain or a path over max_intermediates" do
      expect(error_code { store.verify(leaf.cert, chain: [inter.cert] * 1000, at: now) }).to eq("cert.chain_too_long")
      strict = described_class.new(ca: root.pem, max_intermediates: 0)
      expect(error_code { strict.verify(leaf.cert, chain: [inter.cert], at: now) }).to eq("cert.chain_too_long")
      expect(described_class.new(ca: root.pem, max_intermediates: 1).verify(leaf.cert, chain: [inter.cert], at: now)
                            .common_name).to eq("api-client")
      expect { described_class.new(ca: root.pem, max_intermediates: -1) }.to raise_error(ArgumentError)
    end

    it "raises cert.revoked and cert.revocation_unknown from CRLs" do
      revoked = described_class.new(ca: root.pem, crls: [inter.crl(revoked: [leaf])])
      expect(error_code { revoked.verify(leaf.cert, chain: [inter.cert], at: now) }).to eq("cert.revoked")
      strict = described_class.new(ca: root.pem, crls: [root.crl.to_pem], deny_unknown_revocation: true)
      expect(error_code { strict.verify(leaf.cert, chain: [inter.cert], at: now) }).to eq("cert.revocation_unknown")
      lenient = described_class.new(ca: root.pem, crls: [root.crl.to_der])
      expect(lenient.verify(leaf.cert, chain: [inter.cert], at: now).common_name).to eq("api-client")
    end
  end

  describe "#verify_server" do
    let(:server) { inter.issue(cn: "srv", dns: ["srv.example.com"], ips: ["192.0.2.1"], eku: [:server]) }

    it "checks the expected DNS name or IP address" do
      expect(store.verify_server(server.cert, "srv.example.com", chain: [inter.cert], at: now).common_name).to eq("srv")
      expect(store.verify_server(server.cert, "192.0.2.1", chain: [inter.cert], at: now).ips).to eq(["192.0.2.1"])
      %w[evil.example.com example.com 192.0.2.2].each do |name|
        expect(error_code { store.verify_server(server.cert, name, chain: [inter.cert], at: now) }).to eq("cert.name_mismatch")
      end
    end
  end

  describe "#reload_crls" do
    it "replaces the CRLs and clears the cache" do
      store.verify(leaf.cert, chain: [inter.cert], at: now)
      expect(store.cached_count).to eq(1)
      expect(store.reload_crls([inter.crl(revoked: [leaf]), root.crl])).to be(true)
      expect(store.cached_count).to eq(0)
      expect(error_code { store.verify(leaf.cert, chain: [inter.cert], at: now) }).to eq("cert.revoked")
      expect(error_code { store.reload_crls(["junk"]) }).to eq("cert.bad_trust_store")
      store.reload_crls([])
      expect(store.verify(leaf.cert, chain: [inter.cert], at: now).common_name).to eq("api-client")
    end
  end

  describe "cache" do
    it "stays within cache_size" do
      small = described_class.new(ca: root.pem, cache_size: 2)
      5.times { |i| small.verify(inter.issue(cn: "c#{i}").cert, chain: [inter.cert], at: now) }
      expect(small.cached_count).to eq(2)
      off = described_class.new(ca: root.pem, cache_size: 0)
      off.verify(leaf.cert, chain: [inter.cert], at: now)
      expect(off.cached_count).to eq(0)
    end
  end

  it "verifies from 8 threads at once under GC.stress" do
    leaves = Array.new(4) { |i| inter.issue(cn: "t#{i}") }
    uncached = described_class.new(ca: root.pem, cache_size: 0)
    GC.stress = true
    begin
      threads = Array.new(8) do |t|
        Thread.new do
          s = t.even? ? store : uncached
          Array.new(3) do |i|
            l = leaves[(t + i) % leaves.size]
            s.verify(l.cert, chain: [inter.pem], at: now).common_name
          end
        end
      end
      results = threads.map(&:value)
    ensure
      GC.stress = false
    end
    expect(results.flatten.size).to eq(24)
    expect(results.flatten).to all(match(/\At\d\z/))
  end
end

RSpec.describe Portcullis::Certificates do
  let(:leaf) { TestPKI::CA.root.issue(cn: "d") }

  it "decodes PEM, DER, URL-escaped PEM and bare base64 DER to DER strings" do
    expect(described_class.decode(leaf.pem)).to eq([leaf.der])
    expect(described_class.decode(leaf.der)).to eq([leaf.der])
    expect(described_class.decode(leaf.der).first.encoding).to eq(Encoding::BINARY)
    expect(described_class.decode_pem(leaf.pem * 2)).to eq([leaf.der, leaf.der])
    escaped = URI.encode_www_form_component(leaf.pem).gsub("+", "%20")
    expect(described_class.decode_url_escaped_pem(escaped)).to eq([leaf.der])
    expect(described_class.decode_base64_der([leaf.der].pack("m0"))).to eq(leaf.der)
  end

  it "raises cert.bad_encoding for garbage" do
    %i[decode decode_pem decode_url_escaped_pem decode_base64_der].each do |m|
      expect { described_class.public_send(m, "%%garbage!!") }
        .to raise_error(Portcullis::CertificateError) { |e| expect(e.code).to eq("cert.bad_encoding") }
    end
  end
end

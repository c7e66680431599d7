# frozen_string_literal: true

require "erb"
require "base64"
require "digest"

RSpec.describe Portcullis::CertSource do
  let(:leaf) { MtlsClients.world[:good][0] }
  let(:inter) { MtlsClients.world[:intermediate][0] }
  let(:proxy) { "10.0.0.7" }
  let(:escaped_leaf) { ERB::Util.url_encode(leaf.to_pem) }

  def source(kind, **opts)
    described_class.new(kind, trusted_proxies: ["10.0.0.0/8", "::1"], **opts)
  end

  def error_code
    yield
    raise "expected Portcullis::CertificateError"
  rescue Portcullis::CertificateError => e
    e.code
  end

  describe "configuration" do
    it "knows its kind and header" do
      s = source(:envoy)
      expect(s.kind).to eq(:envoy)
      expect(s.forwarded?).to be(true)
      expect(s.header).to eq("x-forwarded-client-cert")
      expect(source(:nginx, header: "X-Client-Cert").header).to eq("x-client-cert")
    end

    it "refuses forwarded sources without trusted proxies, bad CIDRs and unknown kinds" do
      expect(error_code { described_class.new(:envoy) }).to eq("cert.no_trusted_proxies")
      expect(error_code { described_class.new(:nginx, trusted_proxies: ["10.0.0.0/33"]) }).to eq("cert.bad_proxy")
      expect(error_code { described_class.new(:nginx, trusted_proxies: ["0.0.0.0/0"]) }).to eq("cert.bad_proxy")
      expect(error_code { described_class.new(:apache, trusted_proxies: ["10.0.0.1"]) }).to eq("cert.unknown_source")
      expect { described_class.new(42) }.to raise_error(ArgumentError)
      expect(described_class.new(:tls).forwarded?).to be(false)
    end

    it "checks only the given socket peer" do
      s = source(:nginx)
      expect(s.trusted_proxy?("10.1.1.1")).to be(true)
      expect(s.trusted_proxy?("::ffff:10.1.1.1")).to be(true)
      expect(s.trusted_proxy?("192.0.2.1")).to be(false)
      expect(s.trusted_proxy?(nil)).to be(false)
    end
  end

  describe "nginx" do
    it "reads URL-escaped PEM from the Rack env" do
      env = { "HTTP_X_SSL_CLIENT_CERT" => escaped_leaf, "REMOTE_ADDR" => proxy }
      der, chain = source(:nginx).extract(env)
      expect(der).to eq(leaf.to_der)
      expect(der.encoding).to eq(Encoding::BINARY)
      expect(chain).to eq([])
    end

    it "reads a plain lowercase headers hash with an explicit peer" do
      der, = source(:nginx).extract({ "x-ssl-client-cert" => escaped_leaf }, "::1")
      expect(der).to eq(leaf.to_der)
    end

    it "refuses the header from an untrusted socket peer, whatever X-Forwarded-For says" do
      env = { "HTTP_X_SSL_CLIENT_CERT" => escaped_leaf, "REMOTE_ADDR" => "203.0.113.9",
              "HTTP_X_FORWARDED_FOR" => proxy }
      expect(error_code { source(:nginx).extract(env) }).to eq("cert.untrusted_proxy")
      expect(error_code { source(:nginx).extract(env.merge("REMOTE_ADDR" => nil)) }).to eq("cert.untrusted_proxy")
    end

    it "rejects invalid escapes, oversized values and missing headers" do
      s = source(:nginx)
      bad = escaped_leaf.sub("%20", "%2G")
      expect(error_code { s.extract({ "HTTP_X_SSL_CLIENT_CERT" => bad, "REMOTE_ADDR" => proxy }) }).to eq("cert.bad_encoding")
      big = "A" * (16 * 1024 + 1)
      expect(error_code { s.extract({ "HTTP_X_SSL_CLIENT_CERT" => big, "REMOTE_ADDR" => proxy }) }).to eq("cert.header_too_large")
      small = source(:nginx, max_cert_bytes: 100)
      expect(error_code { small.extract({ "HTTP_X_SSL_CLIENT_CERT" => escaped_leaf, "REMOTE_ADDR" => proxy }) }).to eq("cert.header_too_large")
      expect(error_code { s.extract({ "REMOTE_ADDR" => proxy }) }).to eq("cert.missing")
      binary = "\xff\xfe".b
      expect(error_code { s.extract({ "HTTP_X_SSL_CLIENT_CERT" => binary, "REMOTE_ADDR" => proxy }) }).to eq("cert.bad_encoding")
    end
  end

  describe "envoy" do
    def element(cert, hash: Digest::SHA256.hexdigest(cert.to_der), chain: nil)
      parts = ["By=spiffe://example.org/app", "Hash=#{hash}", %(Cert="#{ERB::Util.url_encode(cert.to_pem)}")]
      parts << %(Chain="#{ERB::Util.url_encode(chain.map(&:to_pem).join)}") if chain
      parts << %(Subject="CN=a\\"b,O=c;d")
      parts.join(";")
    end

    def xfcc(value) = { "HTTP_X_FORWARDED_CLIENT_CERT" => value, "REMOTE_ADDR" => proxy }

    it "uses the element added by the nearest proxy (the last one)" do
      forged = MtlsClients.world[:stranger][0]
      der, chain = source(:envoy).extract(xfcc("#{element(forged)},#{element(leaf, chain: [leaf, inter])}"))
      expect(der).to eq(leaf.to_der)
      expect(chain).to eq([inter.to_der])
    end

    it "rejects a Hash that does not match Cert" do
      value = element(leaf, hash: Digest::SHA256.hexdigest(inter.to_der))
      expect(error_code { source(:envoy).extract(xfcc(value)) }).to eq("cert.xfcc_hash_mismatch")
    end

    it "rejects a Chain that does not start with Cert" do
      value = element(leaf, chain: [inter, leaf])
      expect(error_code { source(:envoy).extract(xfcc(value)) }).to eq("cert.xfcc_chain_mismatch")
    end

    it "treats an element with only By/URI as certificate-less, and bad grammar as bad encoding" do
      expect(error_code { source(:envoy).extract(xfcc("By=spiffe://a;URI=spiffe://b")) }).to eq("cert.missing")
      expect(error_code { source(:envoy).extract(xfcc(%(By="unterminated))) }).to eq("cert.bad_encoding")
    end
  end

  it "reads the ALB chain leaf first" do
    value = ERB::Util.url_encode(leaf.to_pem + inter.to_pem).gsub("%2B", "+").gsub("%2F", "/").gsub("%3D", "=")
    der, chain = source(:alb).extract({ "HTTP_X_AMZN_MTLS_CLIENTCERT" => value, "REMOTE_ADDR" => proxy })
    expect([der, chain]).to eq([leaf.to_der, [inter.to_der]])
  end

  it "reads Traefik's base64 DER list" do
    value = [leaf, inter].map { |c| ERB::Util.url_encode(Base64.strict_encode64(c.to_der)) }.join(",")
    der, chain = source(:traefik).extract({ "HTTP_X_FORWARDED_TLS_CLIENT_CERT" => value, "REMOTE_ADDR" => proxy })
    expect([der, chain]).to eq([leaf.to_der, [inter.to_der]])
  end

  it "reads RFC 9440 byte sequences" do
    env = { "HTTP_CLIENT_CERT" => ":#{Base64.strict_encode64(leaf.to_der)}:",
            "HTTP_CLIENT_CERT_CHAIN" => ":#{Base64.strict_encode64(inter.to_der)}:",
            "REMOTE_ADDR" => proxy }
    expect(source(:rfc9440).extract(env)).to eq([leaf.to_der, [inter.to_der]])
    env["HTTP_CLIENT_CERT"] = Base64.strict_encode64(leaf.to_der)
    expect(error_code { source(:rfc9440).extract(env) }).to eq("cert.bad_encoding")
  end

  it "reads WEBrick-style SSL_CLIENT_CERT and SSL_CLIENT_CERT_CHAIN_n without a proxy check" do
    env = { "SSL_CLIENT_CERT" => leaf.to_pem, "SSL_CLIENT_CERT_CHAIN_0" => inter.to_pem, "REMOTE_ADDR" => "203.0.113.1" }
    expect(described_class.new(:tls).extract(env)).to eq([leaf.to_der, [inter.to_der]])
    # A client-sent header of the same name arrives as HTTP_SSL_CLIENT_CERT and is ignored.
    spoofed = { "HTTP_SSL_CLIENT_CERT" => leaf.to_pem, "REMOTE_ADDR" => "203.0.113.1" }
    expect(error_code { described_class.new(:tls).extract(spoofed) }).to eq("cert.missing")
  end
end

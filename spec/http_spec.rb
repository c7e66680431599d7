# frozen_string_literal: true

require "spec_helper"
require "json"
require "webrick"
require "webrick/https"

RSpec.describe Portcullis::HTTP do
  # Local upstreams on 127.0.0.1 (ephemeral ports): two plain HTTP servers (different
  # origins) and one HTTPS server that requires a client certificate.
  def self.start_server(extra = {})
    config = { BindAddress: "127.0.0.1", Port: 0, Logger: WEBrick::Log.new(File::NULL), AccessLog: [] }
    server = WEBrick::HTTPServer.new(config.merge(extra))
    yield server
    Thread.new { server.start }
    server
  end

  before(:all) do
    @seen = Queue.new
    seen = @seen
    record = ->(req) { seen << { path: req.path, host: req["host"], method: req.request_method } }

    @b = self.class.start_server do |s|
      s.mount_proc("/echo") do |req, res|
        record.call(req)
        res["content-type"] = "application/json"
        res.body = JSON.generate("authorization" => req["authorization"], "cookie" => req["cookie"],
                                 "method" => req.request_method)
      end
    end
    b_port = @b.config[:Port]

    @a = self.class.start_server do |s|
      redirect = lambda do |path, location, status = 302|
        s.mount_proc(path) do |req, res|
          record.call(req)
          res.status = status
          res["location"] = location.respond_to?(:call) ? location.call : location
        end
      end
      s.mount_proc("/hello") do |req, res|
        record.call(req)
        res["x-seen-host"] = req["host"].to_s
        res.body = "hello"
      end
      s.mount_proc("/echo") do |req, res|
        record.call(req)
        res.body = JSON.generate("authorization" => req["authorization"], "cookie" => req["cookie"],
                                 "method" => req.request_method)
      end
      s.mount_proc("/big") do |_req, res|
        res.body = "x" * 5000
      end
      s.mount_proc("/big-chunked") do |_req, res|
        res.chunked = true
        res.body = "y" * 5000
      end
      redirect.call("/to-meta", "http://169.254.169.254/latest/meta-data/")
      redirect.call("/to-private", "http://10.0.0.1/")
      redirect.call("/to-decimal-loopback", -> { "http://2130706434:#{s.config[:Port]}/hello" })
      redirect.call("/to-mapped", -> { "http://[::ffff:127.0.0.2]:#{s.config[:Port]}/hello" })
      redirect.call("/to-internal-name", -> { "http://internal.test:#{s.config[:Port]}/hello" })
      redirect.call("/to-b", "http://127.0.0.1:#{b_port}/echo")
      redirect.call("/to-self", "/echo")
      redirect.call("/loop", "/loop")
      redirect.call("/post-303", "/echo", 303)
      redirect.call("/post-307", "/echo", 307)
    end

    ca_cert, = EgressPKI.ca
    server_cert, server_key = EgressPKI.leaf("upstream.test", dns: ["upstream.test"])
    @server_cert = server_cert
    @tls = self.class.start_server(
      SSLEnable: true, SSLCertificate: server_cert, SSLPrivateKey: server_key,
      SSLCertificateStore: EgressPKI.store, SSLCACertificateFile: nil,
      SSLVerifyClient: OpenSSL::SSL::VERIFY_PEER | OpenSSL::SSL::VERIFY_FAIL_IF_NO_PEER_CERT
    ) do |s|
      s.mount_proc("/hello") do |req, res|
        record.call(req)
        res.body = "hello #{req.client_cert&.subject}"
      end
    end
    @client_cert, @client_key = EgressPKI.leaf("billing-service", usage: "clientAuth")
    @ca_cert = ca_cert
  end

  after(:all) do
    [@a, @b, @tls].each(&:shutdown)
  end

  let(:a_port) { @a.config[:Port] }
  let(:b_port) { @b.config[:Port] }
  let(:tls_port) { @tls.config[:Port] }
  let(:dns) do
    {
      "upstream.test" => ["127.0.0.1"],
      "wrong.test" => ["127.0.0.1"],
      "internal.test" => ["10.1.2.3"],
      "rebind.test" => ["127.0.0.1", "192.168.1.1"]
    }
  end
  let(:resolver) { ->(host) { dns.fetch(host, []) } }
  let(:policy) do
    Portcullis::EgressPolicy.new(schemes: %w[http https], ports: [80, a_port, b_port, tls_port],
                                 allow_cidrs: ["127.0.0.1/32"])
  end
  let(:client) { described_class.new(policy: policy, resolver: resolver, max_body_bytes: 1000) }
  let(:tls_client) do
    described_class.new(policy: policy, resolver: resolver, ca_file: EgressPKI.ca_file,
                        cert: @client_cert, key: @client_key)
  end

  def seen_requests
    list = []
    list << @seen.pop until @seen.empty?
    list
  end

  def expect_denied(code)
    expect { yield }.to raise_error(Portcullis::EgressDenied) { |e| expect(e.code).to eq(code) }
  end

  before { seen_requests }

  it "fetches an allowed local URL" do
    res = client.get("http://127.0.0.1:#{a_port}/hello")
    expect(res.status).to eq(200)
    expect(res.body).to eq("hello")
    expect(res).to be_success
    expect(res.destination.addresses).to eq(["127.0.0.1"])
  end

  it "connects to the pinned address and keeps the name for the Host header" do
    # upstream.test exists only in the stub resolver: reaching the server proves the
    # connection used the checked address rather than resolving again.
    res = client.get("http://upstream.test:#{a_port}/hello")
    expect(res.status).to eq(200)
    expect(res["x-seen-host"]).to eq("upstream.test:#{a_port}")
  end

  it "ignores the environment's proxy settings" do
    saved = ENV.to_h.slice("http_proxy", "HTTP_PROXY")
    ENV["http_proxy"] = ENV["HTTP_PROXY"] = "http://127.0.0.1:9"
    # A name, not 127.0.0.1: URI#find_proxy never proxies loopback addresses, so only a
    # name shows whether the environment's proxy would be used.
    expect(client.get("http://upstream.test:#{a_port}/hello").body).to eq("hello")
  ensure
    %w[http_proxy HTTP_PROXY].each { |k| saved.key?(k) ? ENV[k] = saved[k] : ENV.delete(k) }
  end

  it "refuses a loopback URL the policy does not allow, before connecting" do
    strict_client = described_class.new(policy: Portcullis::EgressPolicy.new(schemes: ["http"], ports: [a_port]))
    expect_denied("egress.reserved_address") { strict_client.get("http://127.0.0.1:#{a_port}/hello") }
    expect(seen_requests).to be_empty
  end

  it "refuses a name that resolves to a private address" do
    expect_denied("egress.reserved_address") { client.get("http://internal.test:#{a_port}/hello") }
  end

  it "refuses a name when any one of its answers is private (no partial pinning)" do
    expect_denied("egress.reserved_address") { client.get("http://rebind.test:#{a_port}/hello") }
    expect(seen_requests).to be_empty
  end

  {
    "/to-meta" => "egress.metadata",
    "/to-private" => "egress.reserved_address",
    "/to-decimal-loopback" => "egress.reserved_address",
    "/to-mapped" => "egress.reserved_address",
    "/to-internal-name" => "egress.reserved_address"
  }.each do |path, code|
    it "refuses a redirect from #{path} to a denied destination (#{code})" do
      expect_denied(code) { client.get("http://127.0.0.1:#{a_port}#{path}") }
      expect(seen_requests.map { |r| r[:path] }).to eq([path])
    end
  end

  it "drops Authorization and Cookie when a redirect changes origin" do
    res = client.get("http://127.0.0.1:#{a_port}/to-b",
                     headers: { "authorization" => "Bearer secret", "cookie" => "session=1" })
    expect(res.url).to eq("http://127.0.0.1:#{b_port}/echo")
    expect(JSON.parse(res.body)).to include("authorization" => nil, "cookie" => nil)
  end

  it "keeps Authorization and Cookie on a same-origin redirect" do
    res = client.get("http://127.0.0.1:#{a_port}/to-self",
                     headers: { "Authorization" => "Bearer secret", "cookie" => "session=1" })
    expect(JSON.parse(res.body)).to include("authorization" => "Bearer secret", "cookie" => "session=1")
  end

  it "turns a POST into a GET after 303 and keeps the method after 307" do
    res = client.post("http://127.0.0.1:#{a_port}/post-303", body: "x=1")
    expect(JSON.parse(res.body)["method"]).to eq("GET")
    res = client.post("http://127.0.0.1:#{a_port}/post-307", body: "x=1")
    expect(JSON.parse(res.body)["method"]).to eq("POST")
  end

  it "stops after max_redirects" do
    expect_denied("egress.too_many_redirects") { client.get("http://127.0.0.1:#{a_port}/loop") }
    expect(seen_requests.size).to eq(6)
  end

  it "caps the response size (declared and streamed)" do
    expect_denied("egress.response_too_large") { client.get("http://127.0.0.1:#{a_port}/big") }
    expect_denied("egress.response_too_large") { client.get("http://127.0.0.1:#{a_port}/big-chunked") }
  end

  describe "TLS to an upstream that requires a client certificate" do
    it "succeeds with the client certificate, verifying the server by name" do
      res = tls_client.get("https://upstream.test:#{tls_port}/hello")
      expect(res.status).to eq(200)
      expect(res.body).to eq("hello /CN=billing-service")
    end

    it "fails without a client certificate" do
      no_cert = described_class.new(policy: policy, resolver: resolver, ca_file: EgressPKI.ca_file)
      expect { no_cert.get("https://upstream.test:#{tls_port}/hello") }
        .to raise_error { |e| expect(e).to be_a(OpenSSL::SSL::SSLError).or be_a(EOFError).or be_a(SystemCallError) }
      expect(seen_requests).to be_empty
    end

    it "verifies the certificate against the host name, not the pinned IP" do
      expect { tls_client.get("https://wrong.test:#{tls_port}/hello") }
        .to raise_error(OpenSSL::SSL::SSLError, /hostname/)
    end

    it "does not trust the upstream without the configured CA" do
      system_store = described_class.new(policy: policy, resolver: resolver, cert: @client_cert, key: @client_key)
      expect { system_store.get("https://upstream.test:#{tls_port}/hello") }
        .to raise_error(OpenSSL::SSL::SSLError, /certificate verify failed/)
    end

    it "accepts a matching SHA-256 pin of the key (sha256/base64) or of the certificate (hex)" do
      spki = OpenSSL::Digest::SHA256.digest(@server_cert.public_key.public_to_der)
      cert_hex = OpenSSL::Digest::SHA256.hexdigest(@server_cert.to_der).scan(/../).join(":")
      ["sha256/#{[spki].pack('m0')}", cert_hex].each do |pin|
        pinned = described_class.new(policy: policy, resolver: resolver, ca_file: EgressPKI.ca_file,
                                     cert: @client_cert, key: @client_key, pin_sha256: [pin])
        expect(pinned.get("https://upstream.test:#{tls_port}/hello").status).to eq(200)
      end
    end

    it "refuses a pin mismatch before sending the request" do
      pinned = described_class.new(policy: policy, resolver: resolver, ca_file: EgressPKI.ca_file,
                                   cert: @client_cert, key: @client_key, pin_sha256: ["ab" * 32])
      expect_denied("egress.pin_mismatch") { pinned.get("https://upstream.test:#{tls_port}/hello") }
      expect(seen_requests).to be_empty
    end
  end

  it "rejects malformed pins and policies up front" do
    expect { described_class.new(policy: policy, pin_sha256: ["nope"]) }.to raise_error(ArgumentError)
    expect { described_class.new(policy: "not a policy") }.to raise_error(ArgumentError)
    expect { client.request(:trace, "http://127.0.0.1:#{a_port}/") }.to raise_error(ArgumentError)
  end
end

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
                                 "x-api-key" => req["x-api-key"], "x-trace" => req["x-trace"],
                                 "method" => req.request_method, "body" => req.body)
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
      redirect.call("/post-307-to-b", "http://127.0.0.1:#{b_port}/echo", 307)
      redirect.call("/post-308-to-b", "http://127.0.0.1:#{b_port}/echo", 308)
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

  describe "cross-origin redirects and the headers they carry" do
    let(:secrets) { { "authorization" => "Bearer s", "cookie" => "c=1", "x-api-key" => "k", "x-trace" => "t" } }

    it "re-sends the body on 307/308 and, by default, custom credential headers (the documented hazard)" do
      %w[/post-307-to-b /post-308-to-b].each do |path|
        echoed = JSON.parse(client.post("http://127.0.0.1:#{a_port}#{path}", body: "x=1", headers: secrets).body)
        expect(echoed).to include("method" => "POST", "body" => "x=1", "authorization" => nil, "cookie" => nil,
                                  "x-api-key" => "k")
      end
    end

    it "drops the configured header list when the origin changes" do
      drop = described_class.new(policy: policy, resolver: resolver,
                                 cross_origin_drop_headers: described_class::CREDENTIAL_HEADERS + ["X-Api-Key"])
      echoed = JSON.parse(drop.post("http://127.0.0.1:#{a_port}/post-307-to-b", body: "x=1", headers: secrets).body)
      expect(echoed).to include("authorization" => nil, "cookie" => nil, "x-api-key" => nil, "x-trace" => "t")
      none = described_class.new(policy: policy, resolver: resolver, cross_origin_drop_headers: :all)
      echoed = JSON.parse(none.post("http://127.0.0.1:#{a_port}/post-308-to-b", body: "x=1", headers: secrets).body)
      expect(echoed).to include("authorization" => nil, "x-api-key" => nil, "x-trace" => nil, "body" => "x=1")
      # same origin keeps them
      echoed = JSON.parse(none.get("http://127.0.0.1:#{a_port}/to-self", headers: secrets).body)
      expect(echoed).to include("authorization" => "Bearer s")
    end

    it "refuses a drop list entry that is not a header name" do
      expect { described_class.new(policy: policy, cross_origin_drop_headers: ["x api key"]) }.to raise_error(ArgumentError)
    end
  end

  describe "against a hostile upstream" do
    # A raw loopback server: reads the request head, then lets the test's block answer.
    def raw_server(&answer)
      server = TCPServer.new("127.0.0.1", 0)
      @raw_threads = []
      @raw_threads << Thread.new do
        loop do
          socket = server.accept
          @raw_threads << Thread.new(socket) do |s|
            head = +""
            head << s.readpartial(4096) until head.include?("\r\n\r\n")
            answer.call(s, head)
          rescue IOError, SystemCallError
            nil
          ensure
            s.close unless s.closed?
          end
        end
      rescue IOError, SystemCallError
        nil
      end
      @raw_servers = (@raw_servers || []) << server
      server.addr[1]
    end

    after do
      (@raw_servers || []).each(&:close)
      (@raw_threads || []).each(&:kill)
    end

    def raw_client(port, **opts)
      raw_policy = Portcullis::EgressPolicy.new(schemes: ["http"], ports: [port], allow_cidrs: ["127.0.0.1/32"])
      described_class.new(policy: raw_policy, **opts)
    end

    it "sends the Destination's own path and query, which URI() would refuse" do
      lines = Queue.new
      port = raw_server do |s, head|
        lines << head.lines.first
        s.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
      end
      c = raw_client(port)
      expect(c.get("http://127.0.0.1:#{port}/a|b").body).to eq("ok")
      expect(lines.pop).to eq("GET /a|b HTTP/1.1\r\n")
      expect(c.get("http://127.0.0.1:#{port}/%zz?q=%zz&r=a|b#frag").status).to eq(200)
      expect(lines.pop).to eq("GET /%zz?q=%zz&r=a|b HTTP/1.1\r\n")
      c.get("http://127.0.0.1:#{port}/x/../y\u00e9")
      expect(lines.pop).to eq("GET /y%C3%A9 HTTP/1.1\r\n")
    end

    it "caps the bytes of the response headers while they arrive" do
      port = raw_server do |s, _head|
        s.write("HTTP/1.1 200 OK\r\nx-big: ")
        64.times { s.write("a" * 65_536) } # 4 MiB in one header line, no end in sight
      end
      expect_denied("egress.response_headers_too_large") { raw_client(port).get("http://127.0.0.1:#{port}/") }
      err = begin
        raw_client(port, max_header_bytes: 1000).get("http://127.0.0.1:#{port}/")
      rescue Portcullis::EgressDenied => e
        e
      end
      expect(err.message).to include("max_header_bytes (1000 bytes)")
    end

    it "caps the number of response header fields" do
      count = Queue.new
      port = raw_server do |s, _head|
        n = count.pop
        s.write("HTTP/1.1 200 OK\r\n#{(1..n).map { |i| "x-h#{i}: v\r\n" }.join}content-length: 2\r\n\r\nok")
      end
      count << 150
      expect(raw_client(port).get("http://127.0.0.1:#{port}/").headers.size).to eq(151)
      count << 250
      expect_denied("egress.response_headers_too_large") { raw_client(port).get("http://127.0.0.1:#{port}/") }
      count << 20
      expect_denied("egress.response_headers_too_large") { raw_client(port, max_headers: 10).get("http://127.0.0.1:#{port}/") }
    end

    it "counts a 1xx interim response against the same header budget and still reads the final one" do
      port = raw_server do |s, _head|
        s.write("HTTP/1.1 100 Continue\r\nx-a: 1\r\n\r\nHTTP/1.1 200 OK\r\nx-b: 2\r\ncontent-length: 2\r\n\r\nok")
      end
      expect(raw_client(port).get("http://127.0.0.1:#{port}/").body).to eq("ok")
      expect_denied("egress.response_headers_too_large") do
        raw_client(port, max_headers: 2).get("http://127.0.0.1:#{port}/")
      end
    end

    it "caps a chunk-size line like a header line" do
      port = raw_server do |s, _head|
        s.write("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        64.times { s.write("0" * 65_536) }
      end
      expect_denied("egress.response_headers_too_large") { raw_client(port).get("http://127.0.0.1:#{port}/") }
    end

    it "stops a body trickled slower than any per-read timeout at the total deadline" do
      port = raw_server do |s, _head|
        s.write("HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")
        loop do
          s.write("ab")
          sleep 0.2
        end
      end
      c = raw_client(port, read_timeout: 1, total_timeout: 1.5)
      expect_denied("egress.deadline_exceeded") { c.get("http://127.0.0.1:#{port}/") }
    end

    it "stops trickled headers at the total deadline" do
      port = raw_server do |s, _head|
        s.write("HTTP/1.1 200 OK\r\n")
        loop do
          s.write("x")
          sleep 0.2
        end
      end
      expect_denied("egress.deadline_exceeded") do
        raw_client(port, read_timeout: 1, total_timeout: 1.5).get("http://127.0.0.1:#{port}/")
      end
    end

    it "holds the deadline across redirects" do
      hops = 0
      port = raw_server do |s, _head|
        hops += 1
        sleep 0.4
        s.write("HTTP/1.1 302 Found\r\nlocation: /again\r\ncontent-length: 0\r\n\r\n")
      end
      expect_denied("egress.deadline_exceeded") do
        raw_client(port, read_timeout: 1, total_timeout: 1, max_redirects: 50).get("http://127.0.0.1:#{port}/")
      end
      expect(hops).to be < 50
    end

    it "stops an upload to a peer that never reads at the total deadline" do
      port = raw_server do |_s, _head|
        sleep 30
      end
      c = raw_client(port, write_timeout: 10, read_timeout: 10, total_timeout: 1)
      expect_denied("egress.deadline_exceeded") { c.post("http://127.0.0.1:#{port}/", body: "z" * (64 << 20)) }
    end

    it "caps the open timeouts of many pinned addresses by the total deadline" do
      # Twelve loopback listeners whose accept queues are full: the kernel drops further
      # SYNs, so every connect attempt waits for its open timeout (12 x 1 s uncapped).
      first = Socket.new(:INET, :STREAM)
      first.bind(Addrinfo.tcp("127.0.0.1", 0))
      port = first.local_address.ip_port
      listeners = [first] + (2..12).map do |k|
        Socket.new(:INET, :STREAM).tap { |l| l.bind(Addrinfo.tcp("127.0.0.#{k}", port)) }
      end
      fillers = listeners.flat_map do |l|
        l.listen(0)
        Array.new(2) do
          Socket.new(:INET, :STREAM).tap do |c|
            c.connect_nonblock(l.local_address, exception: false)
          end
        end
      end
      addresses = (1..12).map { |k| "127.0.0.#{k}" }
      many = Portcullis::EgressPolicy.new(schemes: ["http"], ports: [port], allow_cidrs: ["127.0.0.0/8"])
      c = described_class.new(policy: many, resolver: ->(_h) { addresses }, open_timeout: 1, total_timeout: 2.5)
      expect_denied("egress.deadline_exceeded") { c.get("http://many.test:#{port}/") }
    ensure
      (listeners.to_a + fillers.to_a).each(&:close)
    end

    it "refuses a non-positive deadline or header cap up front" do
      expect { raw_client(1, total_timeout: 0) }.to raise_error(ArgumentError)
      expect { raw_client(1, max_header_bytes: 0) }.to raise_error(ArgumentError)
      expect { raw_client(1, max_headers: -1) }.to raise_error(ArgumentError)
    end
  end

  it "rejects malformed pins and policies up front" do
    expect { described_class.new(policy: policy, pin_sha256: ["nope"]) }.to raise_error(ArgumentError)
    expect { described_class.new(policy: "not a policy") }.to raise_error(ArgumentError)
    expect { client.request(:trace, "http://127.0.0.1:#{a_port}/") }.to raise_error(ArgumentError)
  end
end

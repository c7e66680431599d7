# frozen_string_literal: true

require "socket"

# GET /fetch?url= — the seed's "fetch this URL for me", through Portcullis::HTTP: every URL
# and every redirect hop is checked by an EgressPolicy, and the connection goes only to the
# checked address.
module Demo
  # A tiny HTTP/1.1 upstream on 127.0.0.2 (loopback, but NOT 127.0.0.1: the policy opens
  # 127.0.0.2/32 only, so `http://2130706433/` and `http://[::ffff:127.0.0.1]/`, which ARE
  # 127.0.0.1, stay refused). One connection at a time is plenty for the demo. Its port is
  # fixed before either process loads this file (run.rb picks a free one), because the
  # server's lockdown must name it in `bind_tcp` and `connect_tcp`.
  module Upstream
    HOST = "127.0.0.2"
    PORT = Integer(ENV.fetch("PORTCULLIS_DEMO_UPSTREAM_PORT", "18081"))

    def self.start
      @server = TCPServer.new(HOST, PORT)
      @thread = Thread.new { serve }
      Demo.on_stop { stop }
    end

    def self.port = PORT

    def self.url(path) = "http://#{HOST}:#{port}#{path}"

    def self.stop
      @server.close
      @thread.join(2)
    end

    def self.serve
      loop do
        client = @server.accept
        begin
          respond(client)
        rescue StandardError
          nil # a broken client must not stop the upstream
        ensure
          client.close
        end
      end
    rescue IOError, SystemCallError
      nil # the listening socket was closed: stop
    end

    def self.respond(client)
      request_line = client.gets.to_s
      while (line = client.gets) && line != "\r\n"; end # drop the request headers
      head, body = case request_line.split[1]
                   when "/hello" then ["200 OK", "hello from the upstream"]
                   when "/to-metadata" then ["302 Found\r\nlocation: http://169.254.169.254/latest/meta-data/", ""]
                   when "/to-loopback" then ["302 Found\r\nlocation: http://127.0.0.1:#{port}/hello", ""]
                   else ["404 Not Found", "not found"]
                   end
      client.write("HTTP/1.1 #{head}\r\ncontent-type: text/plain\r\ncontent-length: #{body.bytesize}\r\n" \
                   "connection: close\r\n\r\n#{body}")
    end
  end

  on_start { Upstream.start }

  EGRESS = Portcullis::EgressPolicy.new(schemes: %w[http https], ports: [80, 443, Upstream.port],
                                        allow_cidrs: ["#{Upstream::HOST}/32"])
  HTTP_CLIENT = Portcullis::HTTP.new(policy: EGRESS, open_timeout: 2, read_timeout: 2)

  route "GET", "/fetch", permission: "egress:fetch" do |request, _identity|
    response = HTTP_CLIENT.get(request.params["url"].to_s)
    [200, "upstream #{response.status}: #{response.body.strip}"]
  rescue Portcullis::EgressDenied => e
    [403, "refused: #{e.code}"]
  rescue SystemCallError, IOError, Timeout::Error, SocketError => e
    [502, "upstream unreachable: #{e.class}"]
  end

  call :workload, "GET", "/fetch?url=#{Upstream.url('/hello')}",
       status: 200, outcome: "upstream 200: hello from the upstream", note: "allowlisted upstream (127.0.0.2/32)"
  call :workload, "GET", "/fetch?url=http://169.254.169.254/latest/meta-data/",
       status: 403, outcome: "egress.metadata", note: "cloud metadata SSRF"
  call :workload, "GET", "/fetch?url=http://2130706433/",
       status: 403, outcome: "egress.reserved_address", note: "decimal spelling of 127.0.0.1"
  call :workload, "GET", "/fetch?url=http://[::ffff:127.0.0.1]/",
       status: 403, outcome: "egress.reserved_address", note: "127.0.0.1 inside IPv4-mapped IPv6"
  call :workload, "GET", "/fetch?url=#{Upstream.url('/to-metadata')}",
       status: 403, outcome: "egress.metadata", note: "allowed upstream 302s to metadata: hop re-checked"
  call :workload, "GET", "/fetch?url=#{Upstream.url('/to-loopback')}",
       status: 403, outcome: "egress.reserved_address", note: "allowed upstream 302s to 127.0.0.1"
  call :viewer, "GET", "/fetch?url=#{Upstream.url('/hello')}",
       status: 403, outcome: "authz.forbidden", note: "no egress:fetch permission"
end

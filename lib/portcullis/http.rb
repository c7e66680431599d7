# frozen_string_literal: true

require "net/http"
require "openssl"
require "uri"
require "base64"

module Portcullis
  # An outbound HTTP client that cannot be talked into SSRF, on Net::HTTP.
  #
  #   client = Portcullis::HTTP.new(policy: Portcullis::EgressPolicy.new(allow_hosts: ["api.example.com"]),
  #                                 cert: client_cert, key: client_key)   # mTLS to the upstream
  #   res = client.get("https://api.example.com/v1/items", headers: { "authorization" => "Bearer ..." })
  #   res.status; res.headers["content-type"]; res.body
  #
  # What it does that a plain Net::HTTP call does not:
  # - every URL (and every redirect hop) goes through the EgressPolicy; the connection goes
  #   to the checked, pinned addresses (`Net::HTTP#ipaddr=`), so DNS cannot be rebound
  #   between the check and the connect;
  # - the environment's proxy settings are ignored (a proxy would resolve the name again);
  # - TLS 1.2 or newer, VERIFY_PEER, hostname verification and SNI on the URL's host name;
  #   optional client certificate, optional SHA-256 pin of the upstream certificate or key;
  # - open/read/write timeouts and one total deadline per request (redirects included), a
  #   response size cap enforced while streaming, caps on response header bytes and count;
  # - the request target is the Destination's canonical path and query, never re-parsed;
  # - redirects followed by hand (max 5 by default), credential headers dropped when the
  #   origin changes (the list is configurable: add your own, such as x-api-key).
  #
  # Refusals raise Portcullis::EgressDenied with #code: the policy's codes plus
  # "egress.too_many_redirects", "egress.pin_mismatch", "egress.response_too_large",
  # "egress.response_headers_too_large" and "egress.deadline_exceeded".
  # Network and TLS failures raise what Net::HTTP raises (SystemCallError, Net::OpenTimeout,
  # Net::ReadTimeout, OpenSSL::SSL::SSLError, ...). Requests are never retried silently.
  class HTTP
    REDIRECT_STATUSES = [301, 302, 303, 307, 308].freeze
    # Dropped from a redirected request when scheme, host or port changes (the default of
    # cross_origin_drop_headers:).
    CREDENTIAL_HEADERS = %w[authorization cookie proxy-authorization].freeze
    # RFC 9110 field-name (token) characters.
    HEADER_NAME = /\A[!\#$%&'*+\-.^_`|~0-9A-Za-z]+\z/.freeze
    METHODS = {
      "GET" => Net::HTTP::Get, "HEAD" => Net::HTTP::Head, "POST" => Net::HTTP::Post,
      "PUT" => Net::HTTP::Put, "PATCH" => Net::HTTP::Patch, "DELETE" => Net::HTTP::Delete,
      "OPTIONS" => Net::HTTP::Options
    }.freeze

    # The outcome of a request: #status (Integer), #headers (lowercase names; repeated
    # headers joined with ", "), #body (String), #url (the final URL after redirects) and
    # #destination (the Portcullis::Destination that was connected to).
    Response = Struct.new(:status, :headers, :body, :url, :destination, keyword_init: true) do
      def [](name)
        headers[name.to_s.downcase]
      end

      def success?
        (200..299).cover?(status)
      end
    end

    attr_reader :policy

    # policy:          a Portcullis::EgressPolicy (required)
    # resolver:        optional ->(host) { ["addr", ...] }, passed to the policy
    # ca_file/ca_path: trust anchors for the upstream; default: the system store
    # cert, key:       client certificate and key for mTLS (OpenSSL objects or PEM strings)
    # pin_sha256:      SHA-256 pins; the upstream's certificate or its SubjectPublicKeyInfo
    #                  must match one. Hex (colons allowed) or "sha256/<base64>".
    # open_timeout, read_timeout, write_timeout: seconds, per connect attempt / per read /
    #                  per write, as in Net::HTTP (each capped by what is left of total_timeout)
    # total_timeout:   seconds for the whole request, redirects included: connecting to every
    #                  pinned address, TLS, sending, headers and body of every hop; past it,
    #                  egress.deadline_exceeded. Name resolution (in the policy check) is not
    #                  under it: the resolver's own timeouts apply.
    # max_body_bytes:  response bodies larger than this raise egress.response_too_large
    # max_header_bytes, max_headers: caps on the response's status line and header fields
    #                  (bytes, including 1xx interim responses; number of fields); past them,
    #                  egress.response_headers_too_large. A chunk-size or trailer line longer
    #                  than max_header_bytes is refused the same way.
    # cross_origin_drop_headers: request headers removed when a redirect changes scheme, host
    #                  or port; default CREDENTIAL_HEADERS. Add custom credential headers
    #                  ("x-api-key"), or pass :all to send none of the caller's headers cross-origin.
    def initialize(policy:, resolver: nil, ca_file: nil, ca_path: nil, cert: nil, key: nil,
                   pin_sha256: nil, open_timeout: 5, read_timeout: 10, write_timeout: 10,
                   total_timeout: 60, max_body_bytes: 10 * 1024 * 1024, max_header_bytes: 256 * 1024,
                   max_headers: 200, max_redirects: 5, cross_origin_drop_headers: CREDENTIAL_HEADERS)
      raise ArgumentError, "policy must be a Portcullis::EgressPolicy" unless policy.is_a?(EgressPolicy)

      @policy = policy
      @resolver = resolver
      @ca_file = ca_file
      @ca_path = ca_path
      @cert = cert.is_a?(String) ? OpenSSL::X509::Certificate.new(cert) : cert
      @key = key.is_a?(String) ? OpenSSL::PKey.read(key) : key
      @pins = pin_sha256.nil? ? nil : Array(pin_sha256).map { |p| self.class.decode_pin(p) }
      @open_timeout = open_timeout
      @read_timeout = read_timeout
      @write_timeout = write_timeout
      @total_timeout = positive(total_timeout, "total_timeout")
      @max_body_bytes = Integer(max_body_bytes)
      @max_header_bytes = positive(Integer(max_header_bytes), "max_header_bytes")
      @max_headers = positive(Integer(max_headers), "max_headers")
      @max_redirects = Integer(max_redirects)
      @drop_headers = drop_list(cross_origin_drop_headers)
    end

    def get(url, headers: {})
      request(:get, url, headers: headers)
    end

    def post(url, body: nil, headers: {})
      request(:post, url, body: body, headers: headers)
    end

    # Sends `method` to `url`, following redirects (each hop re-checked by the policy).
    def request(method, url, body: nil, headers: {})
      verb = method.to_s.upcase
      raise ArgumentError, "unsupported HTTP method #{method.inspect}" unless METHODS.key?(verb)

      headers = headers.to_h { |k, v| [k.to_s.downcase, v.to_s] }
      deadline = self.class.monotonic + @total_timeout
      destination = @policy.check!(url, resolver: @resolver)
      redirects = 0
      loop do
        response = perform(verb, destination, body, headers, deadline)
        location = response["location"]
        return response unless REDIRECT_STATUSES.include?(response.status) && location

        redirects += 1
        if redirects > @max_redirects
          raise EgressDenied.new("more than #{@max_redirects} redirects starting at #{url}",
                                 code: "egress.too_many_redirects")
        end
        following = @policy.check_redirect!(destination, location, resolver: @resolver)
        headers = cross_origin(headers) unless same_origin?(destination, following)
        if response.status == 303 || ([301, 302].include?(response.status) && verb == "POST")
          verb = "GET" unless verb == "HEAD"
          body = nil
        end
        destination = following
      end
    end

    # Decodes a pin written as hex (optionally with colons) or "sha256/<base64>".
    def self.decode_pin(pin)
      text = pin.to_s.strip
      raw = if text.start_with?("sha256/")
              Base64.strict_decode64(text.delete_prefix("sha256/"))
            elsif text.delete(":").match?(/\A\h{64}\z/)
              [text.delete(":")].pack("H*")
            else
              raise ArgumentError, "pin #{pin.inspect} is neither 64 hex digits nor sha256/<base64>"
            end
      raise ArgumentError, "pin #{pin.inspect} is not a SHA-256 digest" unless raw.bytesize == 32

      raw
    end

    def self.monotonic
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end

    private

    def positive(value, name)
      raise ArgumentError, "#{name} must be a positive number, not #{value.inspect}" unless value.is_a?(Numeric) && value.positive?

      value
    end

    def drop_list(names)
      return :all if names == :all

      Array(names).map do |name|
        text = name.to_s.downcase
        raise ArgumentError, "cross_origin_drop_headers: #{name.inspect} is not a header name" unless text.match?(HEADER_NAME)

        text
      end.freeze
    end

    def cross_origin(headers)
      return {} if @drop_headers == :all

      headers.reject { |k, _| @drop_headers.include?(k) }
    end

    def same_origin?(a, b)
      a.scheme == b.scheme && a.host == b.host && a.port == b.port
    end

    def perform(verb, destination, body, headers, deadline)
      limits = Limits.new(@max_header_bytes, @max_headers, deadline, @total_timeout, destination.url)
      http = connection(destination, %w[https wss].include?(destination.scheme), limits)
      # The core's canonical path and query, sent as they are: URI() would refuse some of
      # what the policy accepted ("/a|b", "/%zz") or re-encode it differently.
      request = METHODS.fetch(verb).new(destination.request_target)
      headers.each { |name, value| request[name] = value }
      request.body = body if body
      address = connect(http, destination, limits)
      begin
        check_pin(http, destination, address) if http.use_ssl? && @pins
        exchange(http, request, destination)
      ensure
        http.finish if http.started?
      end
    end

    def connection(destination, tls, limits)
      # p_addr = nil: no proxy, whatever http_proxy/HTTPS_PROXY say; a proxy would resolve
      # the name itself and undo the pinning.
      http = Connection.new(destination.host, destination.port, nil)
      http.limits = limits
      http.open_timeout = @open_timeout
      http.read_timeout = @read_timeout
      http.write_timeout = @write_timeout
      # A silent retry would send the request twice and restart the per-read timers.
      http.max_retries = 0
      return http unless tls

      http.use_ssl = true
      http.min_version = OpenSSL::SSL::TLS1_2_VERSION
      http.verify_mode = OpenSSL::SSL::VERIFY_PEER
      http.verify_hostname = true
      http.ca_file = @ca_file if @ca_file
      http.ca_path = @ca_path if @ca_path
      http.cert = @cert if @cert
      http.key = @key if @key
      http
    end

    # Tries each checked address in turn; SNI and certificate verification stay on the
    # host name because Net::HTTP keeps `address` for those and uses `ipaddr` for the socket.
    # Each attempt's open timeout is capped by what is left of the deadline, so many pinned
    # addresses cannot add up to more than total_timeout.
    def connect(http, destination, limits)
      last_error = nil
      destination.addresses.each do |address|
        http.open_timeout = limits.cap(@open_timeout)
        http.ipaddr = address
        begin
          http.start
          return address
        rescue SystemCallError, Net::OpenTimeout, SocketError => e
          raise limits.deadline_error if limits.expired?

          last_error = e
        end
      end
      raise last_error || SocketError.new("no addresses for #{destination.host}")
    end

    def check_pin(http, destination, address)
      cert = http.peer_cert
      der_key = cert&.public_key&.then { |k| k.respond_to?(:public_to_der) ? k.public_to_der : k.to_der }
      digests = [cert&.to_der, der_key].compact.map { |der| OpenSSL::Digest::SHA256.digest(der) }
      return if digests.any? { |d| @pins.any? { |pin| OpenSSL.fixed_length_secure_compare(d, pin) } }

      raise EgressDenied.new("the certificate presented by #{destination.host} (#{address}) matches none of " \
                             "the configured SHA-256 pins", code: "egress.pin_mismatch")
    end

    def exchange(http, request, destination)
      result = nil
      http.request(request) do |response|
        http.headers_read!
        declared = response["content-length"]
        too_large!(destination) if declared && declared.to_i > @max_body_bytes
        body = +""
        response.read_body do |chunk|
          too_large!(destination) if body.bytesize + chunk.bytesize > @max_body_bytes
          body << chunk
        end
        result = Response.new(status: response.code.to_i, headers: headers_of(response), body: body,
                              url: destination.url, destination: destination)
      end
      result
    end

    def too_large!(destination)
      raise EgressDenied.new("response from #{destination.url} exceeds #{@max_body_bytes} bytes",
                             code: "egress.response_too_large")
    end

    def headers_of(response)
      response.each_header.to_h { |name, value| [name.downcase, value] }
    end

    # What one hop may spend: header bytes and fields, and the request's deadline (a
    # CLOCK_MONOTONIC time); builds the errors that name the URL.
    Limits = Struct.new(:max_header_bytes, :max_headers, :deadline, :total_timeout, :url) do
      def remaining
        deadline - HTTP.monotonic
      end

      def expired?
        remaining <= 0
      end

      # `timeout` (seconds or nil for none) capped by the time left; raises when none is.
      def cap(timeout)
        left = remaining
        raise deadline_error if left <= 0

        timeout.nil? ? left : [timeout, left].min
      end

      def deadline_error
        EgressDenied.new("request to #{url} did not finish within total_timeout (#{total_timeout} s, " \
                         "redirects included); raise total_timeout if the upstream is legitimately slow",
                         code: "egress.deadline_exceeded")
      end

      def header_bytes_error
        EgressDenied.new("response headers from #{url} exceed max_header_bytes (#{max_header_bytes} bytes)",
                         code: "egress.response_headers_too_large")
      end

      def header_count_error
        EgressDenied.new("response from #{url} has more than max_headers (#{max_headers}) header fields",
                         code: "egress.response_headers_too_large")
      end

      def line_error
        EgressDenied.new("a chunk-size or trailer line from #{url} exceeds max_header_bytes " \
                         "(#{max_header_bytes} bytes)", code: "egress.response_headers_too_large")
      end
    end

    # Net::HTTP with a bounded socket: `on_connect` is Net::HTTP's hook after it made its
    # BufferedIO, so the swap happens before anything is written or read.
    class Connection < Net::HTTP
      attr_accessor :limits

      # Called once the response's header block is parsed: later lines are body framing.
      def headers_read!
        @socket.headers_read! if @socket.is_a?(BoundedIO)
      end

      private

      def on_connect
        @socket = BoundedIO.adopt(@socket, limits) if limits
        super
      end
    end

    # Net::BufferedIO that refuses oversized header blocks while they arrive (not after a
    # 400 MiB line sits in memory) and checks the request deadline before every read and
    # every 16 KiB written, so a trickling peer cannot stretch one request forever.
    class BoundedIO < Net::BufferedIO
      WRITE_SLICE = 16 * 1024

      def self.adopt(io, limits)
        bounded = new(io.io, read_timeout: io.read_timeout, write_timeout: io.write_timeout,
                             continue_timeout: io.continue_timeout, debug_output: io.debug_output)
        bounded.limits = limits
        bounded
      end

      attr_reader :limits

      def limits=(limits)
        @limits = limits
        @in_headers = true
        @expect_status = true
        @header_bytes = 0
        @header_count = 0
      end

      def headers_read!
        @in_headers = false
      end

      def readuntil(terminator, ignore_eof = false)
        @reading_line = true
        line = begin
          super
        ensure
          @reading_line = false
        end
        count_header_line(line) if @in_headers
        line
      end

      private

      def rbuf_fill
        check_line_budget if @reading_line
        within_deadline(:read) { super }
      end

      def write0(*strs)
        written = 0
        strs.each do |str|
          offset = 0
          loop do
            piece = str.bytesize <= WRITE_SLICE ? str : str.byteslice(offset, WRITE_SLICE)
            written += within_deadline(:write) { super(piece) }.to_i
            offset += piece.bytesize
            break if offset >= str.bytesize
          end
        end
        written
      end

      # Bytes read but not consumed: the line being assembled (no terminator in it yet).
      # net-protocol 0.2 keeps an offset into @rbuf; 0.1 slices consumed bytes off.
      def pending_bytes
        respond_to?(:rbuf_size, true) ? rbuf_size : @rbuf.bytesize
      end

      def check_line_budget
        pending = pending_bytes
        if @in_headers
          raise @limits.header_bytes_error if @header_bytes + pending > @limits.max_header_bytes
        elsif pending > @limits.max_header_bytes
          raise @limits.line_error
        end
      end

      def count_header_line(line)
        @header_bytes += line.bytesize
        raise @limits.header_bytes_error if @header_bytes > @limits.max_header_bytes

        if @expect_status
          @expect_status = false
        elsif line.match?(/\A\s*\z/)
          @expect_status = true # end of a block; a 1xx response is followed by another
        else
          @header_count += 1
          raise @limits.header_count_error if @header_count > @limits.max_headers
        end
      end

      def within_deadline(kind)
        timeout = @limits.cap(kind == :read ? read_timeout : write_timeout)
        saved_read = read_timeout
        saved_write = write_timeout
        kind == :read ? self.read_timeout = timeout : self.write_timeout = timeout
        begin
          yield
        rescue Net::ReadTimeout, Net::WriteTimeout
          raise @limits.deadline_error if @limits.expired?

          raise
        ensure
          self.read_timeout = saved_read
          self.write_timeout = saved_write
        end
      end
    end

    private_constant :Limits, :Connection, :BoundedIO
  end
end

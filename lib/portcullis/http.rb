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
  # - open/read/write timeouts, a response size cap enforced while streaming;
  # - redirects followed by hand (max 5 by default), Authorization/Cookie dropped when the
  #   origin changes.
  #
  # Refusals raise Portcullis::EgressDenied with #code: the policy's codes plus
  # "egress.too_many_redirects", "egress.pin_mismatch" and "egress.response_too_large".
  # Network and TLS failures raise what Net::HTTP raises (SystemCallError, Net::OpenTimeout,
  # Net::ReadTimeout, OpenSSL::SSL::SSLError, ...).
  class HTTP
    REDIRECT_STATUSES = [301, 302, 303, 307, 308].freeze
    # Dropped from a redirected request when scheme, host or port changes.
    CREDENTIAL_HEADERS = %w[authorization cookie proxy-authorization].freeze
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
    # max_body_bytes:  response bodies larger than this raise egress.response_too_large
    def initialize(policy:, resolver: nil, ca_file: nil, ca_path: nil, cert: nil, key: nil,
                   pin_sha256: nil, open_timeout: 5, read_timeout: 10, write_timeout: 10,
                   max_body_bytes: 10 * 1024 * 1024, max_redirects: 5)
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
      @max_body_bytes = Integer(max_body_bytes)
      @max_redirects = Integer(max_redirects)
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
      destination = @policy.check!(url, resolver: @resolver)
      redirects = 0
      loop do
        response = perform(verb, destination, body, headers)
        location = response["location"]
        return response unless REDIRECT_STATUSES.include?(response.status) && location

        redirects += 1
        if redirects > @max_redirects
          raise EgressDenied.new("more than #{@max_redirects} redirects starting at #{url}",
                                 code: "egress.too_many_redirects")
        end
        following = @policy.check_redirect!(destination, location, resolver: @resolver)
        headers = headers.reject { |k, _| CREDENTIAL_HEADERS.include?(k) } unless same_origin?(destination, following)
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

    private

    def same_origin?(a, b)
      URI(a.url).scheme == URI(b.url).scheme && a.host == b.host && a.port == b.port
    end

    def perform(verb, destination, body, headers)
      uri = URI(destination.url)
      http = connection(destination, uri.scheme == "https")
      request = METHODS.fetch(verb).new(uri.request_uri)
      headers.each { |name, value| request[name] = value }
      request.body = body if body
      address = connect(http, destination)
      begin
        check_pin(http, destination, address) if http.use_ssl? && @pins
        exchange(http, request, destination)
      ensure
        http.finish if http.started?
      end
    end

    def connection(destination, tls)
      # p_addr = nil: no proxy, whatever http_proxy/HTTPS_PROXY say; a proxy would resolve
      # the name itself and undo the pinning.
      http = Net::HTTP.new(destination.host, destination.port, nil)
      http.open_timeout = @open_timeout
      http.read_timeout = @read_timeout
      http.write_timeout = @write_timeout
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
    def connect(http, destination)
      last_error = nil
      destination.addresses.each do |address|
        http.ipaddr = address
        begin
          http.start
          return address
        rescue SystemCallError, Net::OpenTimeout, SocketError => e
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
  end
end

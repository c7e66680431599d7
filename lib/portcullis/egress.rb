# frozen_string_literal: true

module Portcullis
  # Which URLs and exact IP addresses the app may connect to. The rules live in the Rust
  # core (`portcullis::egress`); this class only adapts keyword arguments.
  #
  #   egress = Portcullis::EgressPolicy.new(allow_hosts: ["api.example.com", "*.internal.example"],
  #                                         allow_cidrs: ["10.20.0.0/16"])
  #   dest = egress.check!("https://api.example.com/v1")   # => Portcullis::Destination
  #   dest.url; dest.host; dest.port; dest.addresses        # connect only to dest.addresses
  #   egress.allowed?("http://169.254.169.254/")            # => false, never raises on bad input
  #
  # Refusals raise Portcullis::EgressDenied with a stable #code ("egress.metadata", ...).
  class EgressPolicy
    # schemes:     allowed schemes ("http", "https", "ws", "wss"); default ["https"]
    # ports:       allowed ports; default 443, plus 80 when http/ws is allowed
    # allow_hosts: exact names, "*.suffix" patterns or IP literals; empty allows any host
    # deny_hosts:  same syntax, checked first
    # allow_cidrs: internal ranges the app may reach despite the default denylist
    #              (metadata addresses only when the entry lies inside them, e.g. "169.254.169.254/32")
    # deny_cidrs:  ranges always refused, whatever else says
    # strict:      refuse userinfo, backslashes, control characters, encoded hosts (default true)
    # allow_nat64: judge NAT64 addresses as the IPv4 they carry (default true) or refuse them
    # allow_6to4:  judge 6to4 (2002::/16) as the IPv4 it carries, or refuse it (default false:
    #              "egress.ipv6_tunnel"; 6to4 is deprecated, RFC 7526)
    # allow_teredo: the same for Teredo (2001::/32), default false
    # A carrier that is off is re-opened by an allow_cidrs entry over its IPv6 prefix; the
    # IPv4 address inside is judged either way.
    #
    # Raises Portcullis::ConfigError (code "egress.invalid_policy") for a bad pattern or CIDR.
    def self.new(schemes: ["https"], ports: nil, allow_hosts: [], deny_hosts: [], allow_cidrs: [],
                 deny_cidrs: [], strict: true, allow_nat64: true, allow_6to4: false, allow_teredo: false)
      _build(strings(schemes), ports && Array(ports).map { |p| Integer(p) }, strings(allow_hosts),
             strings(deny_hosts), strings(allow_cidrs), strings(deny_cidrs), strict ? true : false,
             allow_nat64 ? true : false, allow_6to4 ? true : false, allow_teredo ? true : false)
    end

    def self.strings(list)
      Array(list).map(&:to_s)
    end
    private_class_method :strings

    # Checks `url` and resolves its host; returns a Portcullis::Destination whose
    # addresses are all allowed. `resolver` (optional) is called with the host name and
    # returns an Array of address Strings (or IPAddr); without it the system resolver runs
    # with the GVL released. Raises Portcullis::EgressDenied.
    def check!(url, resolver: nil)
      _check(utf8(url), resolver)
    end

    # true when check! would succeed; false for any refusal or unusable input.
    def allowed?(url, resolver: nil)
      _allowed(utf8(url), resolver)
    rescue StandardError
      false
    end

    # Checks a redirect's Location (absolute or relative) against the URL it came from
    # (a String, URI or Destination): same policy, and no https -> http downgrade.
    def check_redirect!(from, location, resolver: nil)
      from = from.url if from.is_a?(Destination)
      _check_redirect(utf8(from), utf8(location), resolver)
    end

    # Judges one IP address (String or IPAddr); raises Portcullis::EgressDenied.
    def check_ip!(address)
      _check_ip(address.to_s)
      true
    end

    private

    # URLs arrive as binary Strings from sockets (a Location header); read their bytes as
    # UTF-8 and refuse bytes that are not, rather than transcoding them into another URL.
    def utf8(value)
      text = value.to_s
      return text if text.encoding == Encoding::UTF_8 && text.valid_encoding?

      text = text.dup.force_encoding(Encoding::UTF_8)
      return text if text.valid_encoding?

      raise EgressDenied.new("URL is not valid UTF-8: #{text.scrub.inspect[0, 200]}", code: "egress.bad_url")
    end

    public

    # true when check_ip! would succeed; false for refusals and for non-addresses.
    def allowed_ip?(address)
      _ip_allowed(address.to_s)
    end
  end

  # A checked destination: request #url, present #host for SNI and the Host header, and
  # connect to one of #addresses (all checked) on #port. #request_target is the canonical
  # path and query to send (exactly as the core wrote them; do not re-parse #url with URI,
  # which refuses some of what the WHATWG parser accepts, such as "/a|b"); #scheme its scheme.
  class Destination
    def to_h
      { url: url, host: host, port: port, addresses: addresses }
    end

    def to_s
      url
    end
  end
end

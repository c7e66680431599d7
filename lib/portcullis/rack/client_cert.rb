# frozen_string_literal: true

require "ipaddr"
require "stringio"

module Portcullis
  module Rack
    # Verifies the caller's client certificate wherever TLS was terminated, turns it into a
    # Portcullis::Identity and (optionally) checks per-path permissions.
    #
    #   use Portcullis::Rack::ClientCert,
    #       trust_store: Portcullis::TrustStore.new(ca: "ca.pem", intermediates: ["ops.pem"]),
    #       source: :envoy, trusted_proxies: ["10.0.0.0/8"],
    #       policy: Portcullis::AccessPolicy.new(rules: [...]),
    #       require: { "/admin" => "admin", "POST /deploy" => "containers:deploy" },
    #       skip: ["/up"],
    #       on_reject: ->(rejection, env) { Rails.logger.warn(rejection.to_s) }
    #
    # Success: env["portcullis.identity"] (Portcullis::Identity),
    # env["portcullis.permissions"] (frozen Array of String), env["portcullis.policy"].
    # Failure: 401 (no or invalid certificate), 403 (not permitted, or a certificate header
    # from a peer that is not a trusted proxy) or 400 (a request method that is not an HTTP
    # token), a short text/plain body, no internal detail. The reason goes to `on_reject`
    # and to env["rack.logger"].
    #
    # A POST also needs what the method Rack::MethodOverride (Rails' default stack) would
    # dispatch it as needs: `method_override: false` only for apps without that layer.
    class ClientCert
      IDENTITY = "portcullis.identity"
      PERMISSIONS = "portcullis.permissions"
      POLICY = "portcullis.policy"
      # Set on every request the middleware saw (skipped ones too), so controllers can tell
      # "not mounted" from "skipped".
      CHECKED = "portcullis.checked"
      SOURCES = %i[tls nginx envoy alb traefik rfc9440].freeze

      # Why a request was turned away. `code` is stable (`cert.expired`, `authz.forbidden`,
      # `cert.untrusted_proxy`, …); `message` is for logs only, never for the client.
      Rejection = Struct.new(:status, :code, :message, keyword_init: true) do
        def to_s
          "portcullis: #{status} #{code}: #{message}"
        end
      end

      BODIES = { 400 => "bad request\n", 401 => "unauthorized\n", 403 => "forbidden\n" }.freeze
      EMPTY = [].freeze
      # The largest form body read to find a `_method` override (Rack's own form parser caps
      # url-encoded bodies at 4 MiB; multipart files go to tempfiles). A larger or unreadable
      # one counts as an unknown override: every method-specific entry for the path applies.
      MAX_OVERRIDE_BODY_BYTES = 8 * 1024 * 1024

      # rubocop:disable Metrics/ParameterLists
      def initialize(app, trust_store:, source: :tls, trusted_proxies: [], policy: nil, require: nil,
                     skip: nil, on_reject: nil, header: nil, chain_header: nil,
                     max_cert_bytes: nil, max_chain_bytes: nil,
                     method_override: true, max_override_body_bytes: MAX_OVERRIDE_BODY_BYTES)
        @app = app
        @method_override = method_override ? MethodOverride.new(max_override_body_bytes) : nil
        @trust_store = trust_store
        @policy = policy
        @on_reject = on_reject
        @source = build_source(source, trusted_proxies, header, chain_header, max_cert_bytes, max_chain_bytes)
        # Route matching and path normalization live in the core (authz::RouteRequirements).
        @requirements = Portcullis::RouteRequirements.new(require || {})
        @skip = Skip.new(skip)
        # Puma keeps one peer-certificate object per connection: remember its DER for the
        # connection's later requests (to_der costs microseconds every time).
        @der_by_cert = ObjectSpace::WeakMap.new
        # The policy is immutable, so a certificate's permissions never change; bounded.
        @permissions_by_fingerprint = {}
        raise ArgumentError, "portcullis: require: needs a policy:" if !@requirements.empty? && policy.nil?
      end
      # rubocop:enable Metrics/ParameterLists

      def call(env)
        env[CHECKED] = true
        return @app.call(env) if @skip.match?(env)

        begin
          identity = verify(env)
        rescue Portcullis::CertificateError => e
          # Only verification failures are ours to answer; the app's own errors pass through.
          # 401, or 403 for a header from a peer that is no trusted proxy (the core's table).
          return reject(env, e.code ? e.http_status : 401, e.code || "cert.invalid", e.message)
        end
        permissions = permissions_for(identity)
        begin
          missing, override = missing(env, permissions)
        rescue Portcullis::Forbidden => e
          raise unless e.code == "authz.bad_method"

          return reject(env, e.http_status, e.code, e.message) # 400
        end
        unless missing.empty?
          return reject(env, 403, "authz.forbidden",
                        "#{describe(identity)} lacks #{missing.join(', ')} for " \
                        "#{printable(env['REQUEST_METHOD'])} #{printable(path_of(env))}#{describe_override(override)}")
        end

        env[IDENTITY] = identity
        env[PERMISSIONS] = permissions
        env[POLICY] = @policy
        # A lapsed CRL with deny_unknown_revocation off: accepted, but never silently.
        warning = identity.revocation_warning
        env["rack.logger"]&.warn("portcullis: #{describe(identity)}: #{warning}") if warning
        if Portcullis::Instrumentation.listening?("verify")
          Portcullis::Instrumentation.instrument("verify", verified_payload(env, identity, permissions))
        end
        @app.call(env)
      end

      private

      def build_source(source, proxies, header, chain_header, max_cert, max_chain)
        return source if source.is_a?(Portcullis::CertSource)
        raise ArgumentError, "portcullis: source must be one of #{SOURCES.join(', ')}" unless SOURCES.include?(source&.to_sym)

        # IPAddr#to_s drops the prefix length ("10.0.0.0" for 10.0.0.0/8): keep it.
        cidrs = Array(proxies).map { |p| p.is_a?(IPAddr) ? "#{p}/#{p.prefix}" : p.to_s }
        opts = { trusted_proxies: cidrs }
        opts[:header] = header if header
        opts[:chain_header] = chain_header if chain_header
        opts[:max_cert_bytes] = max_cert if max_cert
        opts[:max_chain_bytes] = max_chain if max_chain
        Portcullis::CertSource.new(source.to_sym, **opts)
      end

      PERMISSIONS_CACHE_SIZE = 10_000

      def permissions_for(identity)
        return EMPTY unless @policy

        key = identity.fingerprint
        cached = @permissions_by_fingerprint[key]
        return cached if cached

        @permissions_by_fingerprint.clear if @permissions_by_fingerprint.size >= PERMISSIONS_CACHE_SIZE
        @permissions_by_fingerprint[key] = @policy.permissions(identity).freeze
      end

      # The verified Identity, or a raised CertificateError.
      def verify(env)
        leaf, chain =
          if !@source.forwarded? && (peer = env["puma.peercert"])
            # Puma hands over the leaf only; intermediates come from the trust store.
            [peer.respond_to?(:to_der) ? (@der_by_cert[peer] ||= peer.to_der.freeze) : peer, EMPTY]
          else
            @source.extract(env, env["REMOTE_ADDR"])
          end
        @trust_store.verify(leaf, chain: chain)
      end

      # [permissions the identity lacks, the override values read (nil if none were)]. The
      # core decides (RouteRequirements#required with the override); the body is read only
      # when an override could change the answer for this identity.
      def missing(env, permissions)
        return [EMPTY, nil] if @requirements.empty?

        method = env["REQUEST_METHOD"].to_s
        path = path_of(env)
        return [@requirements.required(method, path) - permissions, nil] unless @method_override

        worst = @requirements.required(method, path, :unknown) - permissions
        return [worst, nil] if worst.empty?

        plain = @requirements.required(method, path) - permissions
        return [plain, nil] if plain == worst

        override = @method_override.values(env)
        [@requirements.required(method, path, override) - permissions, override]
      end

      def verified_payload(env, identity, permissions)
        { identity: { subject: identity.subject, spiffe_id: identity.spiffe_id, fingerprint: identity.fingerprint },
          permissions: permissions, method: env["REQUEST_METHOD"], path: env["PATH_INFO"],
          revocation_warning: identity.revocation_warning }
      end

      def describe(identity)
        (identity.spiffe_id if identity.respond_to?(:spiffe_id)) || identity.subject.to_s
      end

      def describe_override(override)
        case override
        when :unknown then " (method override unreadable: every method's entries apply)"
        when Array then override.empty? ? "" : " (method override #{override.map { |v| printable(v) }.join(', ')})"
        else ""
        end
      end

      # SCRIPT_NAME + PATH_INFO as bytes: the two may carry different encodings (a UTF-8
      # mount point, a binary path), and the core compares bytes.
      def path_of(env)
        ClientCert.path_bytes(env)
      end

      def self.path_bytes(env)
        script = env["SCRIPT_NAME"].to_s
        info = env["PATH_INFO"].to_s
        script.empty? ? info.b : script.b << info.b
      end

      # For log messages: any bytes, shown escaped, never raising on an encoding clash.
      def printable(value)
        value.to_s.b.force_encoding(Encoding::UTF_8).scrub.inspect[1..-2]
      end

      def reject(env, status, code, message)
        rejection = Rejection.new(status: status, code: code, message: message)
        env["rack.logger"]&.warn(rejection.to_s)
        @on_reject&.call(rejection, env)
        Portcullis::Instrumentation.instrument("reject", { status: status, code: code, message: message,
                                                          method: env["REQUEST_METHOD"], path: env["PATH_INFO"] })
        body = BODIES.fetch(status)
        [status, { "content-type" => "text/plain", "content-length" => body.bytesize.to_s,
                   "cache-control" => "no-store" }, [body]]
      end

      # `skip:` — requests that bypass the check entirely. String prefixes go to the core's
      # skip table (Portcullis::SkipRoutes: under-matching is the safe direction, so only a
      # path already in canonical form, on a segment boundary, case-sensitively). Procs get
      # the env; Regexps match PATH_INFO.
      class Skip
        def initialize(skip)
          prefixes = []
          @rules = []
          Array(skip).each do |rule|
            case rule
            when String then prefixes << rule
            when Regexp, Proc, Method then @rules << rule
            else raise ArgumentError, "portcullis: skip: entries must be String, Regexp or Proc"
            end
          end
          @rules.freeze
          @prefixes = prefixes.empty? ? nil : Portcullis::SkipRoutes.new(prefixes)
          @empty = @rules.empty? && @prefixes.nil?
        end

        def match?(env)
          return false if @empty
          return true if @prefixes&.skips?(ClientCert.path_bytes(env))

          @rules.any? { |rule| rule.is_a?(Regexp) ? regexp_match?(rule, env["PATH_INFO"].to_s) : rule.call(env) }
        end

        private

        # A path the Regexp cannot be matched against (invalid bytes, an encoding clash) is
        # not skipped: under-matching is the safe direction for skip:.
        def regexp_match?(rule, path)
          rule.match?(path)
        rescue ArgumentError, EncodingError
          false
        end
      end

      # What Rack::MethodOverride would read to turn a POST into another method: the
      # `X-HTTP-Method-Override` header and the `_method` form field, parsed by Rack's own
      # Request#POST, so the value is the one it will see. Rack caches the parsed form in the
      # env, where Rack::MethodOverride and the app's Request#POST find it, and the input is
      # rewound for the app. A Rack 3 input need not rewind: that one is read once (within
      # the cap) and the app gets a rewindable copy in env["rack.input"]. Returns the values,
      # or :unknown when the form cannot be read within the cap (too large, no length and no
      # way to measure it, does not parse). Only adapts Rack; the core decides what values
      # mean.
      class MethodOverride
        HEADER = "HTTP_X_HTTP_METHOD_OVERRIDE"

        def initialize(max_bytes)
          raise ArgumentError, "portcullis: max_override_body_bytes must be a non-negative Integer" \
            unless max_bytes.is_a?(Integer) && max_bytes >= 0

          @max_bytes = max_bytes
        end

        def values(env)
          form = form_value(env)
          return :unknown if form == :unknown

          header = env[HEADER]
          [form, header].compact.map(&:to_s)
        end

        private

        def form_value(env)
          request = ::Rack::Request.new(env)
          return nil unless request.form_data? || request.parseable_data?

          input = env["rack.input"]
          return nil if input.nil?
          return :unknown unless within_cap?(env, input)

          input = buffer(env, input) unless input.respond_to?(:rewind)
          begin
            value = request.POST["_method"]
          rescue StandardError
            return :unknown
          ensure
            rewind(input) if input.respond_to?(:rewind)
          end
          value.nil? ? nil : value.to_s
        end

        def within_cap?(env, input)
          length = env["CONTENT_LENGTH"]
          return length.to_i <= @max_bytes if length.is_a?(String) && length.match?(/\A\d{1,19}\z/)
          return false unless length.nil? && input.respond_to?(:rewind)

          # No length: measure, boundedly, then put the input back.
          probe = input.read(@max_bytes + 1)
          rewind(input) && (probe.nil? || probe.bytesize <= @max_bytes)
        rescue StandardError
          false
        end

        # Reads a non-rewindable input (CONTENT_LENGTH bytes, within the cap: within_cap?
        # said so) and puts a rewindable copy in its place.
        def buffer(env, input)
          data = input.read(env["CONTENT_LENGTH"].to_i) || +""
          env["rack.input"] = StringIO.new(data.b)
        end

        def rewind(input)
          input.rewind
          true
        rescue StandardError
          false
        end
      end
    end
  end
end

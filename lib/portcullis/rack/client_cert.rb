# frozen_string_literal: true

require "ipaddr"

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
    # Failure: 401 (no or invalid certificate) or 403 (not permitted, or a certificate header
    # from a peer that is not a trusted proxy), a short text/plain body, no internal detail.
    # The reason goes to `on_reject` and to env["rack.logger"].
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

      BODIES = { 401 => "unauthorized\n", 403 => "forbidden\n" }.freeze
      EMPTY = [].freeze

      # rubocop:disable Metrics/ParameterLists
      def initialize(app, trust_store:, source: :tls, trusted_proxies: [], policy: nil, require: nil,
                     skip: nil, on_reject: nil, header: nil, chain_header: nil,
                     max_cert_bytes: nil, max_chain_bytes: nil)
        @app = app
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
          return reject(env, e.code == "cert.untrusted_proxy" ? 403 : 401, e.code || "cert.invalid", e.message)
        end
        permissions = permissions_for(identity)
        missing = required(env).reject { |perm| permissions.include?(perm) }
        unless missing.empty?
          return reject(env, 403, "authz.forbidden",
                        "#{describe(identity)} lacks #{missing.join(', ')} for #{env['REQUEST_METHOD']} #{path_of(env)}")
        end

        env[IDENTITY] = identity
        env[PERMISSIONS] = permissions
        env[POLICY] = @policy
        Portcullis::Instrumentation.instrument("verify", -> { verified_payload(env, identity, permissions) })
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

      def required(env)
        return EMPTY if @requirements.empty?

        @requirements.required(env["REQUEST_METHOD"].to_s, path_of(env))
      end

      def verified_payload(env, identity, permissions)
        { identity: { subject: identity.subject, spiffe_id: identity.spiffe_id, fingerprint: identity.fingerprint },
          permissions: permissions, method: env["REQUEST_METHOD"], path: env["PATH_INFO"] }
      end

      def describe(identity)
        (identity.spiffe_id if identity.respond_to?(:spiffe_id)) || identity.subject.to_s
      end

      def path_of(env)
        "#{env['SCRIPT_NAME']}#{env['PATH_INFO']}"
      end

      def reject(env, status, code, message)
        rejection = Rejection.new(status: status, code: code, message: message)
        env["rack.logger"]&.warn(rejection.to_s)
        @on_reject&.call(rejection, env)
        Portcullis::Instrumentation.instrument("reject", lambda {
          { status: status, code: code, message: message, method: env["REQUEST_METHOD"], path: env["PATH_INFO"] }
        })
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
          return true if @prefixes&.skips?("#{env['SCRIPT_NAME']}#{env['PATH_INFO']}")

          @rules.any? do |rule|
            rule.is_a?(Regexp) ? rule.match?(env["PATH_INFO"].to_s) : rule.call(env)
          end
        end
      end
    end
  end
end

# frozen_string_literal: true

require_relative "rack/client_cert"

module Portcullis
  module Hanami
    # Helpers for Hanami actions behind Portcullis::Rack::ClientCert.
    #
    #   class Deploy < Hanami::Action        # Hanami 2
    #     include Portcullis::Hanami::Action
    #     def handle(request, response)
    #       authorize_client!(request, "containers:deploy")   # halts 403 when not granted
    #       response.body = "deploying as #{client_identity(request).spiffe_id}"
    #     end
    #   end
    #
    # In Hanami 1 actions (which have `#request`) the request argument can be left out:
    # `authorize_client!("containers:deploy")`, `client_identity`.
    module Action
      FORBIDDEN = "forbidden\n"
      UNAUTHORIZED = "unauthorized\n"

      # The verified Portcullis::Identity, or nil.
      def client_identity(req = nil)
        portcullis_env(req)[Portcullis::Rack::ClientCert::IDENTITY]
      end

      # Permissions granted to the client (frozen Array, possibly empty).
      def client_permissions(req = nil)
        portcullis_env(req)[Portcullis::Rack::ClientCert::PERMISSIONS] || []
      end

      # Returns the identity when the policy grants `permission`; otherwise halts with 401
      # (no verified certificate) or 403 (not granted).
      def authorize_client!(req_or_permission, permission = nil)
        req, permission = permission.nil? ? [nil, req_or_permission] : [req_or_permission, permission]
        env = portcullis_env(req)
        identity = env[Portcullis::Rack::ClientCert::IDENTITY]
        policy = env[Portcullis::Rack::ClientCert::POLICY]
        # Not mounted at all is a deployment mistake, not the client's: say which.
        portcullis_halt(env, 403, FORBIDDEN, "authz.no_middleware") unless identity || env[Portcullis::Rack::ClientCert::CHECKED]
        portcullis_halt(env, 401, UNAUTHORIZED, "authz.no_identity") unless identity
        portcullis_halt(env, 403, FORBIDDEN, "authz.no_policy") unless policy
        portcullis_halt(env, 403, FORBIDDEN, "authz.forbidden") unless policy.allowed?(identity, permission.to_s)
        identity
      end

      private

      def portcullis_env(req)
        req ||= request if respond_to?(:request, true)
        env = req.respond_to?(:env) ? req.env : req
        raise ArgumentError, "portcullis: pass the Hanami request (or its env)" unless env.is_a?(Hash)

        env
      end

      # Hanami's own `halt` throws :halt with [status, body]; do the same without it.
      def portcullis_halt(env, status, body, code)
        env["rack.logger"]&.warn("portcullis: #{status} #{code}")
        respond_to?(:halt, true) ? halt(status, body) : throw(:halt, [status, body])
      end
    end
  end
end

# frozen_string_literal: true

require "active_support/concern"

module Portcullis
  module Rails
    # Controller helpers over what Portcullis::Rack::ClientCert put in the env.
    #
    #   class DeploysController < ApplicationController
    #     include Portcullis::Rails::ClientIdentity
    #     def create
    #       authorize_client!(:"containers:deploy")
    #       render plain: "deploying as #{client_identity.spiffe_id}"
    #     end
    #   end
    #
    # Including it answers Portcullis refusals with detail-free plain-text bodies (the code
    # and message go to the log, never to the client): Forbidden, EgressDenied, PathError and
    # CommandError get the status of their code (`Portcullis::Error#http_status`, the core's
    # one table): 403 for a refusal, 400 for a malformed value, 404 for nothing there, 409
    # for a file that exists, 500 for the server's own failure, 502/504 for an upstream.
    # Define your own `rescue_from` after the include to change it.
    module ClientIdentity
      extend ActiveSupport::Concern

      included do
        if respond_to?(:rescue_from)
          rescue_from(Portcullis::Forbidden, Portcullis::EgressDenied, Portcullis::PathError, Portcullis::CommandError,
                      with: :portcullis_refused)
        end
        helper_method(:client_identity, :client_permissions) if respond_to?(:helper_method)
      end

      # The verified Portcullis::Identity, or nil when the middleware skipped this request.
      def client_identity
        request.env[Portcullis::Rack::ClientCert::IDENTITY]
      end

      # The permissions the policy grants the client (frozen Array, possibly empty).
      def client_permissions
        request.env[Portcullis::Rack::ClientCert::PERMISSIONS] || []
      end

      # Returns the identity when the policy grants it `permission` (a String or Symbol);
      # raises Forbidden otherwise.
      def authorize_client!(permission)
        identity = client_identity
        unless identity
          unless request.env[Portcullis::Rack::ClientCert::CHECKED]
            raise Portcullis::Forbidden.new(
              "Portcullis::Rack::ClientCert is not mounted in front of this controller, so no request has an " \
              "identity: mount it (config/portcullis.toml [rack], or config.portcullis.trust_store)",
              code: "authz.no_middleware"
            )
          end
          raise Portcullis::Forbidden.new("no verified client certificate on this request (#{request.path} is " \
                                          "skipped by the middleware's skip: rules)", code: "authz.no_identity")
        end

        policy = request.env[Portcullis::Rack::ClientCert::POLICY]
        raise Portcullis::Forbidden.new("no AccessPolicy configured (config.portcullis.policy)", code: "authz.no_policy") unless policy

        policy.authorize!(identity, permission.to_s)
        identity
      end

      private

      def portcullis_refused(error)
        status = error.http_status
        logger&.warn("portcullis: #{status} #{error.code}: #{error.message}")
        render plain: "#{::Rack::Utils::HTTP_STATUS_CODES.fetch(status, 'error').downcase}\n", status: status
      end
    end
  end
end

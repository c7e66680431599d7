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
    # CommandError are 403, except the refusals that only say the input was malformed
    # (BAD_INPUT), which are 400, and `path.not_found`, which is 404. Define your own `rescue_from` after the include to change it.
    module ClientIdentity
      extend ActiveSupport::Concern

      # Codes that mean "this value is not well-formed", not "this is not allowed".
      BAD_INPUT = %w[
        path.absolute path.backslash path.control path.drive path.empty path.nul path.too_long
        command.control_char command.invalid_value command.missing_param command.too_long command.unknown_param
        egress.bad_url egress.backslash egress.control_char
      ].freeze

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
        status, body = if BAD_INPUT.include?(error.code) then [400, "bad request\n"]
                       elsif error.code == "path.not_found" then [404, "not found\n"]
                       else [403, "forbidden\n"]
                       end
        logger&.warn("portcullis: #{status} #{error.code}: #{error.message}")
        render plain: body, status: status
      end
    end
  end
end

# frozen_string_literal: true

require "active_support/concern"

module Portcullis
  module Rails
    # Controller helpers over what Portcullis::Rack::ClientCert put in the env.
    #
    #   class DeploysController < ApplicationController
    #     include Portcullis::Rails::ClientIdentity
    #     def create
    #       authorize_client!("containers:deploy")
    #       render plain: "deploying as #{client_identity.spiffe_id}"
    #     end
    #   end
    #
    # `authorize_client!` raises Portcullis::Forbidden, which the concern answers with a
    # plain 403 (the reason is logged, never sent to the client).
    module ClientIdentity
      extend ActiveSupport::Concern

      included do
        rescue_from(Portcullis::Forbidden, with: :portcullis_forbidden) if respond_to?(:rescue_from)
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

      # Returns the identity when the policy grants it `permission`; raises Forbidden otherwise.
      def authorize_client!(permission)
        identity = client_identity
        raise Portcullis::Forbidden.new("no verified client certificate on this request", code: "authz.no_identity") unless identity

        policy = request.env[Portcullis::Rack::ClientCert::POLICY]
        raise Portcullis::Forbidden.new("no AccessPolicy configured (config.portcullis.policy)", code: "authz.no_policy") unless policy

        policy.authorize!(identity, permission.to_s)
        identity
      end

      private

      def portcullis_forbidden(error)
        logger&.warn("portcullis: 403 #{error.code}: #{error.message}")
        render plain: "forbidden\n", status: :forbidden
      end
    end
  end
end

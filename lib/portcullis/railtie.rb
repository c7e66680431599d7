# frozen_string_literal: true

require_relative "rack/client_cert"
require_relative "rails/client_identity"

module Portcullis
  # Mounts Portcullis::Rack::ClientCert in a Rails app from `config.portcullis`:
  #
  #   # config/application.rb (or an initializer)
  #   config.portcullis.trust_store = Portcullis::TrustStore.new(ca: Rails.root.join("config/ca.pem").read)
  #   config.portcullis.source = :nginx
  #   config.portcullis.trusted_proxies = ["10.0.0.0/8"]
  #   config.portcullis.policy = Portcullis::AccessPolicy.new(rules: [...])
  #   config.portcullis.require = { "/admin" => "admin" }
  #   config.portcullis.skip = ["/up"]
  #
  # Nothing is inserted until `trust_store` is set (or `enabled` is false).
  class Railtie < ::Rails::Railtie
    OPTIONS = %i[trust_store source trusted_proxies policy require skip on_reject header chain_header
                 max_cert_bytes max_chain_bytes].freeze

    config.portcullis = ActiveSupport::OrderedOptions.new

    initializer "portcullis.middleware", after: :load_config_initializers do |app|
      settings = app.config.portcullis
      next if settings.enabled == false || settings.trust_store.nil?

      unknown = settings.keys.map(&:to_sym) - OPTIONS - %i[enabled insert_before]
      raise ArgumentError, "portcullis: unknown config.portcullis option(s): #{unknown.join(', ')}" unless unknown.empty?

      options = OPTIONS.each_with_object({}) { |k, h| h[k] = settings[k] unless settings[k].nil? }
      if settings.insert_before
        app.middleware.insert_before settings.insert_before, Portcullis::Rack::ClientCert, **options
      else
        app.middleware.use Portcullis::Rack::ClientCert, **options
      end
    end
  end
end

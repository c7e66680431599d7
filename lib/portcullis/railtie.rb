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
  #
  # Without `trust_store`, `config/portcullis.toml` (or `config.portcullis.file`) is loaded
  # when present into `Portcullis.config`; if it has a `[rack]` table, the middleware is
  # mounted from it (Portcullis::Rack::ConfiguredClientCert) and follows edits of the file
  # and its CRLs. A bad file stops the boot with Portcullis::ConfigError (file:line:column).
  class Railtie < ::Rails::Railtie
    OPTIONS = %i[trust_store source trusted_proxies policy require skip on_reject header chain_header
                 max_cert_bytes max_chain_bytes].freeze

    config.portcullis = ActiveSupport::OrderedOptions.new

    initializer "portcullis.middleware", after: :load_config_initializers do |app|
      settings = app.config.portcullis
      next if settings.enabled == false

      unknown = settings.keys.map(&:to_sym) - OPTIONS - %i[enabled insert_before file]
      raise ArgumentError, "portcullis: unknown config.portcullis option(s): #{unknown.join(', ')}" unless unknown.empty?
      next Portcullis::Railtie.mount_from_file(app, settings) if settings.trust_store.nil?

      options = OPTIONS.each_with_object({}) { |k, h| h[k] = settings[k] unless settings[k].nil? }
      if settings.insert_before
        app.middleware.insert_before settings.insert_before, Portcullis::Rack::ClientCert, **options
      else
        app.middleware.use Portcullis::Rack::ClientCert, **options
      end
    end

    # `[guard]` in config/portcullis.toml: the runtime guard, installed once the app is
    # initialized (boot itself may connect and spawn freely); events go to Rails.logger.
    config.after_initialize do
      settings = Portcullis.config.respond_to?(:guard_settings) ? Portcullis.config.guard_settings : nil
      if settings
        Portcullis::Guard.logger = ::Rails.logger
        Portcullis.guard!(**settings)
      end
    end

    # Loads the policy file into Portcullis.config and mounts the middleware from its
    # `[rack]` table, if it has one.
    def self.mount_from_file(app, settings)
      path = File.expand_path((settings.file || "config/portcullis.toml").to_s, app.root.to_s)
      unless File.file?(path)
        raise Portcullis::ConfigError.new("config.portcullis.file: #{path} does not exist", code: "config.io") if settings.file

        return
      end

      # The middleware throttles its own checks (the file's `reload_interval`).
      Portcullis.config = Portcullis.load(path, check_interval: 0)
      return unless Portcullis.config.rack_settings

      options = { config: Portcullis.config }
      options[:on_reject] = settings.on_reject if settings.on_reject
      if settings.insert_before
        app.middleware.insert_before settings.insert_before, Portcullis::Rack::ConfiguredClientCert, **options
      else
        app.middleware.use Portcullis::Rack::ConfiguredClientCert, **options
      end
    end
  end
end

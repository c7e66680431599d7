# frozen_string_literal: true

require "rails/generators/base"

module Portcullis
  module Generators
    # `bin/rails generate portcullis:install [--puma]`: writes a commented
    # config/portcullis.toml (and, with --puma, config/puma/portcullis_ssl.rb, an mTLS
    # `ssl_bind` for Puma). The file refers to CA files that do not exist yet, so the app
    # refuses to boot until they are in place: nothing runs unprotected by accident.
    class InstallGenerator < ::Rails::Generators::Base
      source_root File.expand_path("templates", __dir__)

      class_option :puma, type: :boolean, default: false,
                          desc: "Also write config/puma/portcullis_ssl.rb (Puma terminates mutual TLS)"
      class_option :source, type: :string, default: "tls",
                            desc: "Where client certificates come from: tls, nginx, envoy, alb, traefik, rfc9440"

      SOURCES = %w[tls nginx envoy alb traefik rfc9440].freeze

      def check_source
        return if SOURCES.include?(options[:source])

        raise ::Thor::Error, "portcullis: --source must be one of #{SOURCES.join(', ')}"
      end

      def write_policy_file
        template "portcullis.toml.tt", "config/portcullis.toml"
      end

      def write_puma_snippet
        template "portcullis_ssl.rb.tt", "config/puma/portcullis_ssl.rb" if options[:puma]
      end

      def next_steps
        say <<~TEXT
          Portcullis: wrote config/portcullis.toml.
            1. Put your client CA bundle at config/pki/client-ca.pem (and CRLs if you have them).
            2. Grant permissions in [[access]] and require them per route in [rack].
            3. bin/rails portcullis:check   # validates the file, as `portcullis check` does
          Until the CA file exists the app refuses to boot.
        TEXT
      end

      private

      def source_kind = options[:source]

      def proxied? = source_kind != "tls"
    end
  end
end

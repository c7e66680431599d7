# frozen_string_literal: true

require_relative "rack/client_cert"
require_relative "rails/client_identity"
require_relative "instrumentation"

module Portcullis
  # Mounts Portcullis::Rack::ClientCert in a Rails app, from `config/portcullis.toml` (its
  # `[rack]` table) or from `config.portcullis`:
  #
  #   # config/application.rb (or an initializer)
  #   config.portcullis.trust_store = Portcullis::TrustStore.new(ca: Rails.root.join("config/ca.pem").read)
  #   config.portcullis.source = :nginx
  #   config.portcullis.trusted_proxies = ["10.0.0.0/8"]
  #   config.portcullis.policy = Portcullis::AccessPolicy.new(rules: [...])
  #   config.portcullis.require = { "/admin" => "admin" }
  #   config.portcullis.skip = ["/up"]
  #
  # It never fails open silently: in production, no file and no `trust_store` is a boot
  # error (a warning in development and test); middleware settings next to a `[rack]` table
  # are refused; mounting the middleware twice is refused; and one boot line in the log
  # says what was mounted where. `config.portcullis.enabled = false` turns it all off.
  class Railtie < ::Rails::Railtie
    # Options passed through to Portcullis::Rack::ClientCert.
    MIDDLEWARE_OPTIONS = %i[trust_store source trusted_proxies policy require skip on_reject header chain_header
                            max_cert_bytes max_chain_bytes].freeze
    # Those that describe the middleware itself, so they conflict with a `[rack]` table.
    FILE_CONFLICTS = (MIDDLEWARE_OPTIONS - %i[on_reject]).freeze
    # Options of the Railtie itself.
    RAILTIE_OPTIONS = %i[enabled insert_before insert_after file on_reload_error log_events].freeze
    MIDDLEWARE_CLASSES = %w[Portcullis::Rack::ClientCert Portcullis::Rack::ConfiguredClientCert].freeze

    config.portcullis = ActiveSupport::OrderedOptions.new

    initializer "portcullis.middleware", after: :load_config_initializers do |app|
      Portcullis::Railtie.mount(app)
    end

    initializer "portcullis.log_subscriber" do |app|
      Portcullis::Railtie.subscribe_logger unless app.config.portcullis.log_events == false
    end

    config.after_initialize do |app|
      Portcullis::Railtie.check_stack!(app)
      Portcullis::Railtie.log_boot(app)
    end

    rake_tasks do
      load File.expand_path("tasks/portcullis.rake", __dir__)
    end

    class << self
      # What the boot line reports (also useful in a console).
      attr_reader :mounted

      def mount(app)
        settings = app.config.portcullis
        @mounted = nil
        validate_keys!(settings)
        return @mounted = { state: "disabled by config.portcullis.enabled = false" } if settings.enabled == false

        path = toml_path(app, settings)
        explicit = FILE_CONFLICTS.reject { |key| settings[key].nil? }
        if File.file?(path) && File.readable?(path)
          mount_with_file(app, settings, path, explicit)
        elsif settings.file
          raise Portcullis::ConfigError.new("config.portcullis.file: #{path} does not exist or cannot be read; " \
                                            "create it or point config.portcullis.file at the right file",
                                            code: "config.io")
        elsif settings.trust_store
          insert(app, Portcullis::Rack::ClientCert, middleware_options(settings), "config.portcullis")
        elsif explicit.any?
          raise Portcullis::ConfigError.new(
            "config.portcullis.#{explicit.join(', config.portcullis.')} set without config.portcullis.trust_store " \
            "and no #{path}: the middleware cannot be mounted; set trust_store too, or create the file",
            code: "config.conflict"
          )
        else
          nothing_to_mount(path)
        end
      end

      # Refuses a stack that runs the Portcullis middleware more than once (a manual
      # `config.middleware.use` next to the Railtie's own, say).
      def check_stack!(app)
        names = middleware_names(app)
        return unless names

        count = names.count { |name| MIDDLEWARE_CLASSES.include?(name) }
        return if count <= 1

        raise Portcullis::ConfigError.new(
          "the Portcullis middleware is mounted #{count} times (#{names.select { |n| MIDDLEWARE_CLASSES.include?(n) }.join(', ')}); " \
          "the Railtie mounts it from config/portcullis.toml or config.portcullis: remove the manual " \
          "`config.middleware.use`, or set config.portcullis.enabled = false to mount it yourself",
          code: "config.conflict"
        )
      end

      # One line: what was mounted, where, from what, and the guard and lockdown state.
      def log_boot(_app)
        line = "portcullis: #{describe_mount}; guard: #{guard_state}; lockdown: #{lockdown_state}"
        ::Rails.logger&.info(line)
        @boot_line = line
      end

      attr_reader :boot_line

      # Refusals and reload failures into Rails.logger, one line each with code and message.
      def subscribe_logger
        return if @subscribed

        @subscribed = true
        Portcullis::Instrumentation::REFUSALS.each do |event|
          ::ActiveSupport::Notifications.subscribe("#{event}.portcullis") do |*, payload|
            log_event(event, payload)
          end
        end
      end

      private

      def validate_keys!(settings)
        unknown = settings.keys.map(&:to_sym) - MIDDLEWARE_OPTIONS - RAILTIE_OPTIONS
        return if unknown.empty?

        raise Portcullis::ConfigError.new(
          "unknown config.portcullis option(s): #{unknown.join(', ')}; " \
          "expected one of: #{(MIDDLEWARE_OPTIONS + RAILTIE_OPTIONS).join(', ')}",
          code: "config.unknown_key"
        )
      end

      def toml_path(app, settings)
        File.expand_path((settings.file || "config/portcullis.toml").to_s, app.root.to_s)
      end

      # The file is loaded into Portcullis.config either way; its `[rack]` table, when
      # present, is the only place the middleware may be configured.
      def mount_with_file(app, settings, path, explicit)
        # The middleware throttles its own checks (the file's `reload_interval`).
        Portcullis.config = Portcullis.load(path, check_interval: 0)
        rack = Portcullis.config.rack_settings
        if rack && explicit.any?
          raise Portcullis::ConfigError.new(
            "config.portcullis.#{explicit.join(', config.portcullis.')} conflict(s) with the [rack] table of #{path}: " \
            "configure the middleware in one place (remove those settings, or remove [rack] from the file)",
            code: "config.conflict"
          )
        end

        if rack
          options = { config: Portcullis.config }
          options[:on_reject] = settings.on_reject if settings.on_reject
          options[:on_reload_error] = settings.on_reload_error if settings.on_reload_error
          insert(app, Portcullis::Rack::ConfiguredClientCert, options, relative(app, path),
                 source: rack[:source] || :tls, trust_store: rack[:trust_store],
                 required: rack[:require].size, skipped: rack[:skip].size)
        elsif settings.trust_store
          insert(app, Portcullis::Rack::ClientCert, middleware_options(settings), "config.portcullis")
        else
          @mounted = { state: "no middleware: #{relative(app, path)} has no [rack] table and config.portcullis " \
                              "has no trust_store (Portcullis.config is loaded for egress, roots and commands)" }
        end
      end

      def nothing_to_mount(path)
        message = "#{path} is missing and config.portcullis has no trust_store, so no client certificate is " \
                  "checked: create the file (`bin/rails generate portcullis:install`), set " \
                  "config.portcullis.trust_store, or set config.portcullis.enabled = false to run without Portcullis"
        raise Portcullis::ConfigError.new(message, code: "config.missing") if ::Rails.env.production?

        warn "portcullis: warning: #{message}"
        @mounted = { state: "not mounted (#{path} missing; a boot error in production)" }
      end

      def middleware_options(settings)
        MIDDLEWARE_OPTIONS.each_with_object({}) { |k, h| h[k] = settings[k] unless settings[k].nil? }
      end

      # Before ActionDispatch::Static by default, so files in public/ are not served to
      # clients without a certificate; `insert_before` / `insert_after` move it.
      def insert(app, klass, options, from, **facts)
        settings = app.config.portcullis
        position =
          if settings.insert_before && settings.insert_after
            raise Portcullis::ConfigError.new("config.portcullis.insert_before and insert_after are both set; choose one",
                                              code: "config.conflict")
          elsif settings.insert_before
            app.middleware.insert_before(settings.insert_before, klass, **options)
            "before #{settings.insert_before}"
          elsif settings.insert_after
            app.middleware.insert_after(settings.insert_after, klass, **options)
            "after #{settings.insert_after}"
          elsif app.config.public_file_server.enabled
            app.middleware.insert_before(::ActionDispatch::Static, klass, **options)
            "before ActionDispatch::Static"
          else
            app.middleware.insert_before(::ActionDispatch::Executor, klass, **options)
            "before ActionDispatch::Executor"
          end
        facts = explicit_facts(settings) if facts.empty?
        @mounted = { state: "mounted", middleware: klass.name, position: position, from: from, **facts }
      end

      def explicit_facts(settings)
        source = settings.source.is_a?(Portcullis::CertSource) ? "CertSource" : (settings.source || :tls)
        { source: source, trust_store: "config.portcullis.trust_store",
          required: settings.require.respond_to?(:size) ? settings.require.size : 0,
          skipped: Array(settings.skip).size }
      end

      def describe_mount
        m = @mounted || { state: "not mounted" }
        return m[:state] unless m[:state] == "mounted"

        "#{m[:middleware]} mounted #{m[:position]} from #{m[:from]} (source: #{m[:source]}, trust store: " \
          "#{m[:trust_store]}, #{m[:required]} route rule(s) required, #{m[:skipped]} skipped)"
      end

      def guard_state
        return "off" unless Portcullis.respond_to?(:guard_status)

        status = Portcullis.guard_status
        status && status[:installed] ? "on (#{status[:mode]})" : "off"
      rescue StandardError => e
        "unknown (#{e.class})"
      end

      def lockdown_state
        return "off" unless defined?(Portcullis::Lockdown) && Portcullis::Lockdown.respond_to?(:status)

        Portcullis::Lockdown.status.to_s
      rescue StandardError => e
        "unknown (#{e.class})"
      end

      # The built stack: once the app is built (before after_initialize), Rails replaces
      # config.middleware (a recorder of operations) with the real ActionDispatch stack.
      def middleware_names(app)
        app.app unless app.config.middleware.respond_to?(:middlewares)
        stack = app.config.middleware
        stack.middlewares.map { |m| m.respond_to?(:name) ? m.name : m.klass.to_s } if stack.respond_to?(:middlewares)
      end

      def relative(app, path)
        root = "#{app.root}/"
        path.start_with?(root) ? path.delete_prefix(root) : path
      end

      def log_event(event, payload)
        logger = ::Rails.logger
        code = payload[:code]
        return unless logger && code

        if event == "reload"
          logger.error("portcullis: reload of #{payload[:path]} failed #{code}: #{payload[:message]}")
        else
          logger.warn("portcullis: #{event} refused #{code}: #{payload[:message]}")
        end
      end
    end
  end
end

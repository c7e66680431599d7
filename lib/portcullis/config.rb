# frozen_string_literal: true

module Portcullis
  # A configuration file was refused, or a name is not in it. `#code` is "config.*";
  # `#file`, `#line` and `#column` say where the mistake is (nil for lookups by name).
  class ConfigError < Error
    attr_reader :file, :line, :column
  end

  # Loads `portcullis.toml` (see examples/portcullis.toml): named trust stores, egress
  # policies, roots and command templates, checked at load time with file:line:column
  # errors. Relative paths in the file resolve against its directory.
  #
  #   config = Portcullis.load("config/portcullis.toml")
  #   config.egress(:partners).check!(url)
  #   config.command(:deploy).run(image: params[:image])
  #
  # `check_interval:` is how often #reload_if_changed! looks at the file's mtime (seconds).
  def self.load(path, check_interval: 2.0)
    Config.send(:_load, File.path(path), Float(check_interval))
  end

  class << self
    # The application's configuration, when something loaded one (the Railtie loads
    # config/portcullis.toml into it).
    attr_accessor :config
  end

  # A loaded configuration. Thread-safe; #reload! swaps in a new file atomically, and a bad
  # file raises Portcullis::ConfigError while the old configuration stays in force. The
  # objects it returns are the usual classes (Portcullis::TrustStore, EgressPolicy,
  # SafeRoot, Command) built from the configuration in force when they were asked for.
  class Config
    class << self
      private :_load
      undef_method :new
    end

    # The Portcullis::TrustStore `[trust_store.NAME]`.
    def trust_store(name) = _trust_store(name.to_s)

    # The Portcullis::EgressPolicy `[egress.NAME]`.
    def egress(name) = _egress(name.to_s)

    # The Portcullis::SafeRoot `[root.NAME]`.
    def root(name) = _root(name.to_s)

    # The Portcullis::Command `[command.NAME]`.
    def command(name) = _command(name.to_s)

    # Names (Symbols) defined in a section: :trust_store, :egress, :root, :command, :source.
    def names(kind) = _names(kind.to_s)

    # Parses the file anew and swaps it in. Raises Portcullis::ConfigError (old config kept).
    def reload!
      _reload
      self
    end

    # Reloads when the file (or a CRL file) changed, looking at most once per
    # check_interval (`throttle: false` looks now). Returns true when something was
    # reloaded. Raises ConfigError for a bad new file (once per change; the old
    # configuration stays).
    def reload_if_changed!(throttle: true) = _reload_if_changed(throttle ? true : false)

    # Re-reads the CRL files into the live trust stores (their caches are cleared).
    def reload_crls!
      _reload_crls
      self
    end

    # What the file allows: [{kind:, name:, details: [String]}].
    def summary
      _summary.map { |kind, name, details| { kind: kind, name: name, details: details } }
    end

    def inspect = "#<#{self.class.name} #{path}>"

    # The Portcullis::CertSource `[source.NAME]`.
    def source(name) = _source(name.to_s)

    # The Portcullis::AccessPolicy of the `[[access]]` rules: without `store:`, the rules
    # that name no store; with `store:`, those plus the rules limited to that store.
    def access_policy(store: nil) = _access_policy(store&.to_s)

    # The `[rack]` table as a Hash (nil when the file has none).
    def rack_settings
      trust_store, source, require, skip, interval = _rack
      return nil unless trust_store

      { trust_store: trust_store.to_sym, source: source&.to_sym, require: require.to_h, skip: skip,
        reload_interval: interval }
    end

    # Keyword options for Portcullis::Rack::ClientCert from the `[rack]` table.
    def middleware_options
      settings = rack_settings or raise ConfigError.new("#{path} has no [rack] table", code: "config.missing_key")

      options = { trust_store: trust_store(settings[:trust_store]),
                  policy: access_policy(store: settings[:trust_store]) }
      options[:source] = source(settings[:source]) if settings[:source]
      options[:require] = settings[:require] unless settings[:require].empty?
      options[:skip] = settings[:skip] unless settings[:skip].empty?
      options
    end

    private :_trust_store, :_egress, :_root, :_command, :_names, :_reload, :_reload_if_changed,
            :_reload_crls, :_summary, :_source, :_access_policy, :_rack
  end

  module Rack
    # Portcullis::Rack::ClientCert configured by a Portcullis::Config's `[rack]` table, and
    # rebuilt when the file (or a CRL file) changes: the modification times are looked at
    # most once per `reload_interval` (from the file, default 2 seconds). A bad new file is
    # logged (and passed to `on_reload_error`) and the running configuration stays.
    #
    #   use Portcullis::Rack::ConfiguredClientCert, config: Portcullis.load("config/portcullis.toml")
    class ConfiguredClientCert
      DEFAULT_INTERVAL = 2.0

      def initialize(app, config:, on_reject: nil, on_reload_error: nil)
        @app = app
        @config = config
        @on_reject = on_reject
        @on_reload_error = on_reload_error
        @lock = Mutex.new
        @inner = build
        @interval = Float(config.rack_settings&.fetch(:reload_interval) || DEFAULT_INTERVAL)
        @next_check = now + @interval
      end

      attr_reader :config

      def call(env)
        refresh(env) if now >= @next_check
        @inner.call(env)
      end

      private

      def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)

      def refresh(env)
        @lock.synchronize do
          return if now < @next_check

          @next_check = now + @interval
          if @config.reload_if_changed!(throttle: false)
            @inner = build
            Portcullis::Instrumentation.instrument("reload", { path: @config.path, reloaded: true })
          end
        end
      rescue Portcullis::Error, ArgumentError => e
        report(env, e)
      end

      def report(env, error)
        message = "portcullis: #{@config.path}: reload failed, the previous configuration stays: #{error.message}"
        logger = env["rack.logger"]
        logger ? logger.error(message) : warn(message)
        code = error.respond_to?(:code) ? error.code : "config.invalid"
        Portcullis::Instrumentation.instrument("reload", { path: @config.path, reloaded: false, code: code,
                                                           message: error.message, error: error.class.name })
        @on_reload_error&.call(error)
      end

      def build
        options = @config.middleware_options
        options[:on_reject] = @on_reject if @on_reject
        Portcullis::Rack::ClientCert.new(@app, **options)
      end
    end
  end
end

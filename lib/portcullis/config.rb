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

    # Names (Symbols) defined in a section: :trust_store, :egress, :root, :command.
    def names(kind) = _names(kind.to_s)

    # Parses the file anew and swaps it in. Raises Portcullis::ConfigError (old config kept).
    def reload!
      _reload
      self
    end

    # Reloads when the file (or a CRL file) changed, looking at most once per
    # check_interval. Returns true when something was reloaded. Raises ConfigError for a
    # bad new file (once per change; the old configuration stays).
    def reload_if_changed! = _reload_if_changed

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

    private :_trust_store, :_egress, :_root, :_command, :_names, :_reload, :_reload_if_changed,
            :_reload_crls, :_summary
  end
end

# frozen_string_literal: true

require "rbconfig"

module Portcullis
  # A lockdown was refused or could not be applied. Codes: "lockdown.*"
  # ("lockdown.threads", "lockdown.unsupported", "lockdown.bad_path", …).
  class LockdownError < Error; end

  # The kernel lockdown of this process (Linux: Landlock, a seccomp floor, no_new_privs,
  # capabilities). Once applied, this process and everything it starts can read, write and
  # execute only beneath the named paths and connect/bind only the named TCP ports.
  # Irreversible.
  #
  # Apply it in a single-threaded process: a script, a job, or a preforking master before
  # it forks. On Landlock ABI 7 (Linux < 7.0) the kernel restricts only the calling thread,
  # so #apply! raises LockdownError "lockdown.threads" when other threads exist (Ruby keeps
  # finished threads cached, so "other threads" includes threads that already ended). For
  # servers, `portcullis exec --config config/portcullis.toml -- bundle exec puma` locks
  # down before Ruby starts, which covers every thread.
  #
  #   Portcullis::Lockdown.apply!(read: ["/srv/data"], connect_tcp: [5432], preset: :ruby)
  #   Portcullis.config.lockdown(:web).apply!
  class Lockdown
    FLAGS = %i[best_effort dry_run calling_thread_only].freeze
    private_constant :FLAGS

    class << self
      private :_build
      undef_method :new

      # Builds a policy. `preset: :ruby` adds what a Ruby/Rails process needs (see the
      # README); `app:` is its app directory (default: Dir.pwd).
      def build(read: [], write: [], exec: [], connect_tcp: [], bind_tcp: [], keep_caps: [],
                user: nil, group: nil, preset: nil, app: nil, best_effort: false,
                scope_signals: true, scope_abstract_unix: true, syscall_floor: true,
                dry_run: false, calling_thread_only: false)
        flags = []
        flags << "best_effort" if best_effort
        flags << "dry_run" if dry_run
        flags << "calling_thread_only" if calling_thread_only
        flags << "no_scope_signals" unless scope_signals
        flags << "no_scope_abstract_unix" unless scope_abstract_unix
        flags << "no_syscall_floor" unless syscall_floor
        preset_app =
          case preset&.to_s
          when nil then nil
          when "ruby" then File.expand_path(app || Dir.pwd)
          else raise ArgumentError, "unknown lockdown preset #{preset.inspect}; the presets are: :ruby"
          end
        _build([paths(read), paths(write), paths(exec)], [ports(connect_tcp), ports(bind_tcp)],
               Array(keep_caps).map(&:to_s), user&.to_s, group&.to_s, flags, preset_app,
               RbConfig.ruby, Gem.path)
      end

      # Builds and applies in one step; returns the status Hash (see #apply!).
      def apply!(logger: nil, **policy) = build(**policy).apply!(logger: logger)

      private

      def paths(list) = Array(list).map { |p| File.expand_path(File.path(p)) }

      def ports(list)
        Array(list).map do |p|
          Integer(p).tap { |n| raise ArgumentError, "#{p.inspect} is not a TCP port 1-65535" unless (1..65_535).cover?(n) }
        end
      end
    end

    # Puts the lockdown in force. Returns the status Hash (:landlock, :seccomp as :full,
    # :partial, :log_only or :off; :missing, :capabilities, :log_line, …) and writes its
    # one-line summary to `logger` (#info) or $stderr. Raises LockdownError.
    def apply!(logger: nil)
      status = _apply
      Lockdown.instance_variable_set(:@applied, status[:log_line])
      logger ? logger.info(status[:log_line]) : warn(status[:log_line])
      status
    end

    # What the kernel says about this process (for the Rails boot line): "off", or the
    # seccomp filter, no_new_privs and effective capabilities it shows in /proc/self/status,
    # and whether this process applied a lockdown itself or inherited one (portcullis exec).
    # Landlock leaves no trace there, so only an in-process apply! can vouch for it.
    def self.status
      applied = Lockdown.instance_variable_get(:@applied)
      return "applied in this process (#{applied})" if applied

      # Read by the core (Portcullis::Lockdown::Observed in Rust): seccomp, no_new_privs
      # and capabilities from /proc/self/status, with what `portcullis exec` said.
      _observed(ENV["PORTCULLIS_LOCKDOWN"])
    end

    # The path rules: [[:read | :write | :exec, path, origin]].
    def rules = _rules

    def inspect = "#<#{self.class.name} #{rules.size} paths>"
  end

  class Config
    # The Portcullis::Lockdown `[lockdown.NAME]` (with the `ruby` preset, this Ruby's
    # interpreter and Gem.path are added).
    def lockdown(name) = _lockdown(name.to_s, RbConfig.ruby, Gem.path)
  end

  # Puma cluster mode: lock the master down in `before_fork`, so every worker it forks
  # starts locked (a forked worker inherits only the forking thread, which is the one
  # restricted). In config/puma.rb:
  #
  #   require "portcullis/lockdown"
  #   before_fork { Portcullis::Lockdown.puma_before_fork(:web) }
  #
  # Covers: every worker and everything they start; the master's own forking thread.
  # Does not cover: other threads the master already has (Puma 5/6 has none at
  # before_fork; a gem may start one). By default that refuses with "lockdown.threads";
  # `calling_thread_only: true` accepts it, and the status says how many threads stay
  # unrestricted by Landlock (seccomp, no_new_privs and capabilities still cover them).
  # The listening sockets are already bound, so `bind_tcp` need not name them.
  # `portcullis exec` covers the master's threads too and is the recommended way.
  # A refused lockdown stops the master (SystemExit): Puma would otherwise log the hook's
  # error and serve unprotected. Ruby 3.3 keeps a native timer thread in every process, so
  # there this needs `calling_thread_only: true` (and says so in its status).
  def Lockdown.puma_before_fork(name, config: Portcullis.config, logger: nil, calling_thread_only: false)
    raise LockdownError.new("no configuration loaded; set Portcullis.config = Portcullis.load(path)", code: "lockdown.no_config") unless config

    lockdown = config.lockdown(name)
    lockdown = lockdown.send(:_with_calling_thread_only) if calling_thread_only
    begin
      lockdown.apply!(logger: logger)
    rescue LockdownError => e
      # Puma logs a StandardError raised by a hook and boots the workers anyway: that would
      # serve unprotected. SystemExit is not rescued there, so the master stops instead.
      abort "portcullis: lockdown #{name} refused (#{e.code}): #{e.message}; not serving unprotected"
    end
  end
end

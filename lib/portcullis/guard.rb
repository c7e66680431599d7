# frozen_string_literal: true

require "socket"

module Portcullis
  # Marks the exceptions the runtime guard raises; `#code` is the stable reason
  # ("egress.metadata", "command.shell_string", ...) and `#event` the reported event.
  module GuardRefusal
    attr_reader :code, :event
  end

  # A connect (or a send with a destination) refused by the guard. It is an
  # Errno::EACCES, so code that handles failed connections (Socket.tcp trying the next
  # address, clients wrapping it as their own connection error) keeps working.
  class EgressRefused < Errno::EACCES
    include GuardRefusal

    def initialize(message = nil, code: nil, event: nil)
      super(message)
      @code = code
      @event = event
    end
  end

  # A spawn refused by the guard (a shell string, a program outside the allowlist).
  class SpawnRefused < CommandError
    include GuardRefusal

    def initialize(message = nil, code: nil, event: nil)
      super(message, code: code)
      @event = event
    end
  end

  # Makes the egress policy and the no-shell rule hold for the whole Ruby process.
  #
  #   Portcullis.guard!(egress: Portcullis::EgressPolicy.new(allow_cidrs: ["10.20.0.0/16"]),
  #                     spawn: :no_shell, mode: :enforce,
  #                     on_violation: ->(event) { Rails.logger.warn(event) })
  #
  # egress:       a Portcullis::EgressPolicy, or the name of an [egress.NAME] table of
  #               Portcullis.config; default: the default policy (public addresses only)
  # spawn:        :no_shell (refuse strings Ruby would run through /bin/sh) or :off
  # programs:     optional allowlist of programs ("git", "/usr/bin/convert") for every spawn
  # mode:         :enforce or :report (report and let through, except metadata, 0.0.0.0/8, ::)
  # on_violation: called with each new event Hash
  # resolver:     optional ->(host) { [address, ...] } used by TCPSocket.new/UDPSocket hooks
  # nameservers:  DNS servers reachable on port 53; default: those of /etc/resolv.conf
  #
  # Process-wide and idempotent: calling it again replaces the policy and options.
  def self.guard!(egress: nil, spawn: :no_shell, programs: nil, mode: :enforce, on_violation: nil,
                  resolver: nil, nameservers: nil)
    Guard.install!(egress: egress, spawn: spawn, programs: programs, mode: mode,
                   on_violation: on_violation, resolver: resolver, nameservers: nameservers)
  end

  # What the guard hooks, its mode and counts; `{ active: false }` before guard!.
  def self.guard_status
    Guard.status
  end

  # The runtime guard's Ruby side: hooks that collect what a call names and ask the core
  # (Portcullis::Guard._judge_*); the decisions are the core's. State lives in the
  # extension so hooks work in every thread, fiber and Ractor.
  module Guard
    LIB_DIR = File.expand_path("..", __dir__).freeze
    RUBY_LIB_DIR = RbConfig::CONFIG["rubylibdir"].dup.freeze
    MAIN_RACTOR = Ractor.current
    NUMERIC = /\A[0-9.]+\z/.freeze
    # Addrinfo.getaddrinfo takes timeout: from Ruby 3.2 on (for TCPSocket's resolv_timeout:).
    GETADDRINFO_TIMEOUT = (RUBY_VERSION.split(".").map(&:to_i) <=> [3, 2]) >= 0
    DISPATCHING = :__portcullis_guard_dispatching
    HOOKED = {
      egress: %w[TCPSocket#initialize Socket#connect Socket#connect_nonblock BasicSocket#send
                 BasicSocket#sendmsg BasicSocket#sendmsg_nonblock UDPSocket#connect UDPSocket#send
                 Ethon::Easy(CURLOPT_OPENSOCKETFUNCTION)].freeze,
      names: %w[Addrinfo.getaddrinfo Addrinfo.tcp Addrinfo.udp Addrinfo.ip Socket.getaddrinfo
                IPSocket.getaddress Resolv#each_address Resolv::DNS#each_address].freeze,
      spawn: %w[Kernel#system Kernel#spawn Kernel#exec Kernel#` Kernel#open("|...") Process.spawn
                Process.exec IO.popen IO.read/write/binread/binwrite/readlines/foreach("|...")
                PTY.spawn].freeze
    }.freeze
    NOT_COVERED = ["native code that connects or spawns itself (libpq, libmysqlclient, hiredis, grpc, " \
                   "libcurl outside Ethon)", "child processes", "see the lockdown for both"].freeze

    class << self
      def install!(egress:, spawn:, programs:, mode:, on_violation:, resolver:, nameservers:)
        # Frozen, the policy is Ractor-shareable (it holds no Ruby state; the core's policy
        # is immutable and Sync).
        policy = egress_policy(egress).freeze
        spawn = spawn.to_s
        mode = mode.to_s
        raise ArgumentError, "guard!: on_violation must respond to #call" if on_violation && !on_violation.respond_to?(:call)
        raise ArgumentError, "guard!: resolver must respond to #call" if resolver && !resolver.respond_to?(:call)

        programs = programs&.map { |p| p.respond_to?(:to_path) ? p.to_path : String(p) }
        _install(policy, mode, spawn, programs, nameservers&.map(&:to_s))
        @on_violation = on_violation
        @resolver = resolver
        @policy = policy
        Hooks.install
        status
      end

      attr_accessor :logger

      # Hooks read the resolver; in a non-main Ractor only a shareable one can be read.
      def resolver
        @resolver
      rescue Ractor::IsolationError
        nil
      end

      def status
        mode, spawn, programs, nameservers, egress_counts, spawn_counts, names = _state
        return { active: false } unless mode

        { active: true, mode: mode.to_sym, spawn: spawn.to_sym, programs: programs,
          nameservers: nameservers, egress: @policy, hooked: HOOKED,
          ethon: Hooks.ethon_hooked?, not_covered: NOT_COVERED,
          counts: { egress: counts_hash(egress_counts), spawn: counts_hash(spawn_counts) }, names_known: names }
      end

      # --- called by the hooks ------------------------------------------------------

      # A connect/send to `addr` (packed sockaddr String or Addrinfo).
      def check_sockaddr!(addr, via, host = nil)
        raw = addr.is_a?(Addrinfo) ? addr.to_sockaddr : String.try_convert(addr)
        return unless raw # let Ruby raise its own TypeError

        info = _judge_sockaddr(raw, host)
        violation!(info, :egress, via) if info
      end

      # Resolves `host` once (the guard's resolver, or getaddrinfo), judges every answer and
      # returns the allowed ones as address Strings, in order; raises when none is allowed.
      def pin!(host, port, socktype, via, timeout = nil)
        answers = resolve(host, port, socktype, timeout)
        allowed = []
        first = nil
        answers.each do |ip, num_port|
          info = _judge_ip(ip, num_port, name_of(host))
          if info.nil? || info[0] == "reported"
            allowed << ip
            violation!(info, :egress, via) if info
          else
            first ||= info
          end
        end
        violation!(first, :egress, via) if allowed.empty? && first
        allowed
      end

      def check_command!(args, via)
        command = command_of(args)
        check_parsed_command!(command, via) if command
      end

      # A pipe path ("|cmd") of open/IO.read and friends; "|-" forks Ruby itself.
      def check_pipe_path!(path, via)
        text = path.is_a?(String) ? path : nil
        return unless text&.start_with?("|")

        cmd = text[1..]
        check_parsed_command!([:shell, cmd], via) unless cmd == "-"
      end

      def check_popen!(args, via)
        cmd = args.first.is_a?(Hash) ? args[1] : args[0]
        if cmd.is_a?(Array)
          check_command!(cmd, via)
        elsif (text = String.try_convert(cmd)) && text != "-"
          check_parsed_command!([:shell, text], via)
        end
      end

      # Remembers that `host` resolved to the addresses `list` yields through `address`
      # (only for real names: IP spellings are skipped before any address is formatted).
      def record(host, list, &address)
        return unless host.is_a?(String)
        # Dotted digits and anything with a colon are IP spellings: skip the call.
        return if host.include?(":") || NUMERIC.match?(host) || !_name?(host)

        addrs = list.map(&address)
        _record_names(host, addrs) unless addrs.empty?
      rescue StandardError
        nil
      end

      private

      def counts_hash(list)
        { allowed: list[0], refused: list[1], reported: list[2] }
      end

      def egress_policy(egress)
        case egress
        when nil then EgressPolicy.new
        when EgressPolicy then egress
        when String, Symbol
          config = Portcullis.respond_to?(:config) ? Portcullis.config : nil
          raise ConfigError.new("guard!: egress: #{egress.inspect} names a policy, but Portcullis.config is not loaded",
                                code: "config.missing_key") unless config

          config.egress(egress.to_s)
        else
          raise ArgumentError, "guard!: egress: must be a Portcullis::EgressPolicy or a policy name, got #{egress.class}"
        end
      end

      def name_of(host)
        host.is_a?(String) ? host : nil
      end

      def resolve(host, port, socktype, timeout = nil)
        custom = resolver
        if custom && host.is_a?(String) && !numeric?(host, socktype)
          num_port = port.is_a?(Integer) ? port : Addrinfo.getaddrinfo(nil, port, nil, socktype).first&.ip_port
          Array(custom.call(host)).map { |a| [a.to_s, num_port.to_i] }
        else
          kw = timeout && GETADDRINFO_TIMEOUT ? { timeout: timeout } : {}
          Addrinfo.getaddrinfo(host, port, nil, socktype, **kw).map { |ai| [ai.ip_address, ai.ip_port] }
        end
      end

      def numeric?(host, socktype)
        Addrinfo.getaddrinfo(host, nil, nil, socktype, nil, Socket::AI_NUMERICHOST)
        true
      rescue SocketError
        false
      end

      # [:shell, string] | [:argv, program, argc] | nil (nothing Ruby would run)
      def command_of(args)
        args = args.dup
        args.shift if args.first.is_a?(Hash)
        args.pop if args.size > 1 && args.last.is_a?(Hash)
        return nil if args.empty?

        first = args.first
        if args.size == 1 && !first.is_a?(Array)
          text = first.respond_to?(:to_path) ? first.to_path : String.try_convert(first)
          text && [:shell, text]
        else
          program = first.is_a?(Array) ? first.first : first
          program = program.respond_to?(:to_path) ? program.to_path : String.try_convert(program)
          program && [:argv, program, args.size - 1]
        end
      end

      def check_parsed_command!(command, via)
        info = if command[0] == :shell
                 _judge_shell(command[1])
               else
                 _judge_argv(command[1], command[2])
               end
        violation!(info, :spawn, via) if info
      end

      # Builds the event, dispatches it once, raises when refused.
      def violation!(info, kind, via)
        action, code, message, address, port, host = info
        event = { kind: kind, action: action.to_sym, code: code, host: host, address: address,
                  port: port, via: via, callsite: callsite, message: message }.freeze
        dispatch(event)
        return if action == "reported"

        raise EgressRefused.new(message, code: code, event: event) if kind == :egress

        raise SpawnRefused.new(message, code: code, event: event)
      end

      # The first frame outside Portcullis and outside Ruby's standard library (so a
      # Net::HTTP call is attributed to the app or gem line that made it), else the first
      # frame outside Portcullis.
      def callsite
        frames = caller_locations(3, 64) || []
        outside = frames.reject { |l| (l.absolute_path || l.path).start_with?(LIB_DIR) }
        loc = outside.find do |l|
          path = l.absolute_path || l.path
          !path.start_with?(RUBY_LIB_DIR) && !path.start_with?("<internal:")
        end || outside.first
        loc && "#{loc.path}:#{loc.lineno}"
      end

      # on_violation, ActiveSupport::Notifications and the logger, once per distinct
      # event, never re-entered from a subscriber (its own connects are still judged).
      def dispatch(event)
        return if Thread.current[DISPATCHING]
        return unless Ractor.current.equal?(MAIN_RACTOR)

        key = event.values_at(:kind, :action, :code, :host, :address, :port, :via, :callsite).join("\0")
        return unless _first_seen(key)

        Thread.current[DISPATCHING] = true
        begin
          deliver(event)
        ensure
          Thread.current[DISPATCHING] = nil
        end
      end

      def deliver(event)
        @on_violation&.call(event)
        Portcullis::Instrumentation.instrument(event[:kind].to_s, event)
        logger&.warn("[portcullis] #{event[:kind]} #{event[:action]} #{event[:code]} via #{event[:via]} " \
                     "at #{event[:callsite]}: #{event[:message]}")
      rescue StandardError => e
        warn "portcullis: guard event subscriber raised #{e.class}: #{e.message}"
      end
    end
  end
end

require_relative "guard/hooks"

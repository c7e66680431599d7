# frozen_string_literal: true

module Portcullis
  # A program with fixed arguments and typed placeholders; requests only fill the
  # placeholders. Built once (the program is checked then), immutable, thread-safe.
  #
  #   DEPLOY = Portcullis::Command.new("/usr/bin/docker", ["run", "--rm", "--", :image],
  #     params: { image: { one_of: { "worker" => "worker:latest" } } }, timeout: 30)
  #   DEPLOY.argv(image: "worker") # => ["/usr/bin/docker", "run", "--rm", "--", "worker:latest"]
  #   DEPLOY.run(image: "worker")  # => Portcullis::Command::Result
  #
  # Arguments: a Symbol is a placeholder filling one whole element; a String is fixed, or
  # holds one `{name}` placeholder inside it (`"--name={name}"`; `{{`/`}}` are literal braces).
  # Parameter types: `one_of:` (Hash request value => argument, or Array), `pattern:`
  # (a Regexp, or a String in Rust regex syntax read with Ruby's meaning; whole value),
  # `integer:` (Range), `literal: true` (any text), `path:` (a Portcullis::SafeRoot or a
  # directory: the value is a name beneath it, passed as the absolute path it resolves
  # to; refusals have code "command.path"); options `allow_leading_dash: true`,
  # `max_length:`. Everything refused raises Portcullis::CommandError with a `#code`.
  class Command
    # @param program [String] absolute path of an executable; shells/interpreters refused
    # @param args [Array<String, Symbol>] fixed arguments and placeholders
    # @param params [Hash{Symbol => Hash}] one type per placeholder
    # @param env [Hash{String => String}] the child's whole environment besides PATH
    # @param timeout [Numeric, nil] seconds before the process group is killed (default 30)
    # @param max_output [Integer, nil] bytes kept per stream (default 1 MiB); the rest is discarded
    # @param allow_interpreter [Boolean] allow sh, python, …, launchers (env, nice, xargs, …) as the program
    # @param chdir [String, Pathname, Portcullis::SafeRoot, nil] working directory (default "/")
    # @param rlimits [Hash{Symbol => Integer}] cpu:, address_space:, file_size:, nproc:
    def self.new(program, args = [], params: {}, env: {}, timeout: nil, max_output: nil,
                 allow_interpreter: false, chdir: nil, rlimits: {})
      _build(program, args, params, env, timeout, max_output, allow_interpreter ? true : false,
             chdir, rlimits)
    end

    private_class_method :_build

    # argv(**values): the argv (program first) the values produce, as an Array of Strings.
    # Raises Portcullis::CommandError. Defined natively (no extra copy of the keywords).

    # Runs the program (argv only, empty environment plus `env:`, stdin closed, timeout,
    # output cap) and returns a Result, also when it fails or times out. The GVL is
    # released while the child runs. Raises Portcullis::CommandError for refused values.
    def run(**values)
      Result.new(*_run(values, false))
    end

    # Like #run, but raises Portcullis::CommandError ("command.failed",
    # "command.timeout") unless the program succeeded.
    def run!(**values)
      Result.new(*_run(values, true))
    end

    def inspect
      "#<#{self.class.name} #{program} params=#{param_names.inspect}>"
    end

    private :_run

    # What a run produced.
    class Result
      # @return [Integer, nil] exit status; nil when killed by a signal
      attr_reader :status
      # @return [Integer, nil] the signal that killed the program (9 after a timeout)
      attr_reader :signal
      # @return [String] captured output (UTF-8 when valid, binary otherwise), capped
      attr_reader :stdout, :stderr

      def initialize(status, signal, stdout, stderr, success, timed_out, stdout_truncated, stderr_truncated)
        @status = status
        @signal = signal
        @stdout = stdout.freeze
        @stderr = stderr.freeze
        @success = success
        @timed_out = timed_out
        @stdout_truncated = stdout_truncated
        @stderr_truncated = stderr_truncated
        freeze
      end

      # Exit status 0 and no timeout.
      def success?
        @success
      end

      # The program ran past the timeout; its process group was killed.
      def timed_out?
        @timed_out
      end

      # Either stream went past max_output.
      def truncated?
        @stdout_truncated || @stderr_truncated
      end

      def stdout_truncated?
        @stdout_truncated
      end

      def stderr_truncated?
        @stderr_truncated
      end

      def inspect
        "#<#{self.class.name} status=#{status.inspect} signal=#{signal.inspect} " \
          "timed_out=#{timed_out?} truncated=#{truncated?} stdout=#{stdout.bytesize}B stderr=#{stderr.bytesize}B>"
      end
    end
  end
end

# frozen_string_literal: true

require "tmpdir"
require "fileutils"
require "socket"
require "rbconfig"

module Demo
  # Starts and stops the demo server (server.rb), under `portcullis exec` or plain. Used by
  # run.rb (`make demo`) and benches/ruby/lockdown.rb. Each launcher has its own run
  # directory beneath the repository's tmp/ (which the server's lockdown lets it write),
  # with the PEM files, the lockdown written for its ports, the server's TMPDIR and log.
  class Launcher
    REPO = File.expand_path("../..", __dir__)
    DEFAULT_CLI = File.join(REPO, "target", "release", "portcullis")

    attr_reader :port, :upstream_port, :run_dir, :log, :pid

    def self.free_port(host) = TCPServer.open(host, 0) { |s| s.addr[1] }

    # `pki`: a Demo::Pki. `env`: more environment for the server (the escape fixtures).
    # `prefix`: a command to run it under (e.g. `taskset -c 1`).
    def initialize(pki, locked:, upstream_port: Launcher.free_port("127.0.0.2"), env: {}, prefix: [],
                   cli: ENV.fetch("PORTCULLIS_CLI", DEFAULT_CLI))
      @locked = locked
      @cli = cli
      @port = Launcher.free_port("127.0.0.1")
      @upstream_port = Integer(upstream_port)
      @env = env
      @prefix = prefix
      raise ArgumentError, "#{cli} is missing; build it with `make cli`, or set PORTCULLIS_CLI" if locked && !File.executable?(cli)

      FileUtils.mkdir_p(File.join(REPO, "tmp"))
      @run_dir = Dir.mktmpdir("demo-", File.join(REPO, "tmp"))
      write_files(pki)
    end

    def locked? = @locked

    def toml_path = File.join(@run_dir, "portcullis.toml")

    # The server's lockdown, for this launcher's ports.
    def toml
      <<~TOML
        # The demo server's lockdown (examples/demo/launcher.rb writes it for each run).
        [lockdown.demo]
        preset = "ruby"      # /usr, the gem paths, this Ruby; the app read-only, its tmp/ and log/ writable
        app = "#{REPO}"
        exec = ["#{File.realpath('/bin/echo')}"]  # the /deploy template's program
        bind_tcp = [#{@port}, #{@upstream_port}]  # Puma, and the 127.0.0.2 upstream /fetch calls
        connect_tcp = ["demo"]  # the ports of [egress.demo]: the upstream's, no other
        egress = "demo"         # the connect supervisor judges every address by [egress.demo]

        [egress.demo]
        allow_cidrs = ["127.0.0.2/32"]  # the upstream; other loopback, private and metadata addresses stay refused
        ports = [#{@upstream_port}]
      TOML
    end

    # The command line, as a reader would type it.
    def describe
      if @locked
        "portcullis exec --config #{toml_path.delete_prefix("#{REPO}/")} --lockdown demo -- ruby examples/demo/server.rb"
      else
        "ruby examples/demo/server.rb (no lockdown)"
      end
    end

    # Spawns the server and waits for its "serving" line (returned); raises with the log if
    # it exits or stays silent.
    def start(timeout: 60)
      ruby = [RbConfig.ruby, "-I#{File.join(REPO, 'lib')}", File.join(__dir__, "server.rb")]
      command = @locked ? [@cli, "exec", "--config", toml_path, "--lockdown", "demo", "--", *ruby] : ruby
      env = @env.merge("PORTCULLIS_DEMO_DIR" => @run_dir, "PORTCULLIS_DEMO_PORT" => @port.to_s,
                       "PORTCULLIS_DEMO_UPSTREAM_PORT" => @upstream_port.to_s,
                       "PORTCULLIS_DEMO_LOCKDOWN" => @locked ? "on" : "off",
                       "TMPDIR" => File.join(@run_dir, "tmp"))
      @log = File.join(@run_dir, "server.log")
      @pid = Process.spawn(env, *@prefix, *command, in: File::NULL, out: @log, err: %i[child out], chdir: REPO)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
      while Process.clock_gettime(Process::CLOCK_MONOTONIC) < deadline
        line = File.readlines(@log).find { |l| l.start_with?("demo server: serving") }
        return line if line
        break if Process.waitpid(@pid, Process::WNOHANG)

        sleep 0.05
      end
      stop
      raise "the demo server did not start:\n#{File.read(@log)}"
    end

    # The server's processes: under `portcullis exec`, the supervisor (the spawned pid)
    # and the Ruby server, its child.
    def pids
      children = File.read("/proc/#{@pid}/task/#{@pid}/children").split.map { |p| Integer(p) }
      [@pid, *children]
    rescue SystemCallError
      [@pid]
    end

    # SIGTERM (forwarded by `portcullis exec`), then SIGKILL after 5 s: the exit status.
    def stop
      return @status if @status || !@pid

      Process.kill("TERM", @pid)
      50.times do
        _, status = Process.waitpid2(@pid, Process::WNOHANG)
        return @status = status if status

        sleep 0.1
      end
      Process.kill("KILL", @pid)
      @status = Process.waitpid2(@pid).last
    rescue Errno::ESRCH, Errno::ECHILD
      @status = nil
    end

    def log_text = File.read(@log)

    def cleanup
      stop
      FileUtils.remove_entry(@run_dir) if File.exist?(@run_dir)
    end

    private

    def write_files(pki)
      {
        "root.pem" => pki.root[0], "ops_ca.pem" => pki.ops_ca[0], "dev_ca.pem" => pki.dev_ca[0],
        "ops_crl.pem" => pki.ops_crl, "server.pem" => pki.server[0], "server.key" => pki.server[1]
      }.each { |name, object| File.write(File.join(@run_dir, name), object.to_pem) }
      File.write(File.join(@run_dir, "tls_ca.pem"), pki.tls_ca_pem)
      File.write(toml_path, toml)
      Dir.mkdir(File.join(@run_dir, "tmp"))
    end
  end
end

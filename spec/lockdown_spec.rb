# frozen_string_literal: true

require "tmpdir"
require "socket"
require "net/http"
require "rbconfig"

# Real lockdowns, each in a forked child (a fork has one thread: the forking one). The
# child reports through a pipe; the parent asserts.
RSpec.describe Portcullis::Lockdown do
  # Ruby 3.3 runs a native timer thread from boot (and again in every fork), so an in-process
  # lockdown can never be the only thread there: it refuses (lockdown.threads) unless told
  # `calling_thread_only: true`, which these specs then use and check. Ruby 3.1 has none.
  VM_THREAD = IO.popen([RbConfig.ruby, "-e", "print Dir.children('/proc/self/task').size"], &:read).to_i > 1

  def in_fork
    reader, writer = IO.pipe
    pid = fork do
      reader.close
      result = begin
        yield
      rescue Exception => e # rubocop:disable Lint/RescueException
        { error: e.class.name, code: (e.respond_to?(:code) ? e.code : nil), message: e.message }
      end
      writer.write(Marshal.dump(result))
      writer.close
      exit!(0)
    end
    writer.close
    data = reader.read
    Process.wait(pid)
    Marshal.load(data) # rubocop:disable Security/MarshalLoad
  end

  def refusal
    yield
    :allowed
  rescue SystemCallError => e
    e.class
  end

  let(:dir) { Dir.mktmpdir("portcullis-lockdown") }
  after { FileUtils.remove_entry(dir) }

  it "refuses, on a Ruby with its own native thread, unless calling_thread_only says so", if: VM_THREAD do
    result = in_fork { described_class.apply!(read: [dir]) }
    expect(result[:code]).to eq("lockdown.threads")
    expect(result[:message]).to include("portcullis exec")
  end

  it "restricts files and syscalls, keeps threads working, and reports its status" do
    File.write(File.join(dir, "ok.txt"), "yes")
    result = in_fork do
      status = described_class.apply!(read: [dir], calling_thread_only: VM_THREAD, logger: Struct.new(:lines) { def info(l) = (self.lines ||= []) << l }.new)
      {
        status: status,
        allowed: File.read(File.join(dir, "ok.txt")),
        passwd: refusal { File.read("/etc/passwd") },
        write: refusal { File.write(File.join(dir, "new"), "x") },
        thread: Thread.new { 6 * 7 }.value,
        said: described_class.status,
        unshare: refusal { syscall(272, 0x10000000) },
        tcp: refusal { TCPSocket.new("127.0.0.1", 9) }
      }
    end
    expect(result[:error]).to be_nil, result.inspect
    expect(result[:allowed]).to eq("yes")
    expect(result.values_at(:passwd, :write, :tcp)).to eq([Errno::EACCES, Errno::EACCES, Errno::EACCES])
    expect(result[:unshare]).to eq(Errno::EPERM)
    expect(result[:thread]).to eq(42)
    expect(result[:said]).to start_with("applied in this process (portcullis lockdown: landlock ABI")
    status = result[:status]
    expect(status[:landlock]).to eq(:full)
    expect(status[:unrestricted_threads]).to eq(VM_THREAD ? 1 : 0)
    expect(status[:log_line]).to include("calling thread only") if VM_THREAD
    expect(status[:seccomp]).to eq(:full)
    expect(status[:no_new_privs]).to be(true)
    expect(status[:capabilities]).to eq([])
    expect(status[:log_line]).to start_with("portcullis lockdown: landlock ABI")
  end

  it "refuses a process that has (or had, cached) another thread, and changes nothing" do
    result = in_fork do
      Thread.new { 1 }.join # finished, but Ruby keeps the native thread cached
      begin
        described_class.apply!(read: [dir])
        :applied
      rescue Portcullis::LockdownError => e
        { code: e.code, message: e.message, passwd: File.read("/etc/passwd").size.positive? }
      end
    end
    expect(result[:code]).to eq("lockdown.threads")
    expect(result[:message]).to include("portcullis exec")
    expect(result[:passwd]).to be(true)
  end

  it "refuses bad input with typed errors" do
    expect { described_class.build(connect_tcp: [0]) }.to raise_error(ArgumentError, /TCP port/)
    expect { described_class.build(connect_tcp: ["http"]) }.to raise_error(ArgumentError)
    expect { described_class.build(reed: ["/"]) }.to raise_error(ArgumentError, /reed/)
    expect { described_class.build(preset: :rails) }.to raise_error(ArgumentError, /presets are: :ruby/)
    expect { described_class.build(read: ["/proc/self"]) }
      .to raise_error(Portcullis::LockdownError) { |e| expect(e.code).to eq("lockdown.bad_path") }
    expect { described_class.build(read: ["/no/such/dir"]) }
      .to raise_error(Portcullis::LockdownError) { |e| expect(e.code).to eq("lockdown.bad_path") }
    expect { described_class.build(keep_caps: ["ROOT"]) }
      .to raise_error(Portcullis::LockdownError) { |e| expect(e.code).to eq("lockdown.bad_capability") }
    expect { described_class.new }.to raise_error(NoMethodError)
  end

  it "says a second lockdown in the same process is refused" do
    result = in_fork do
      described_class.apply!(read: [dir], calling_thread_only: VM_THREAD, logger: Object.new.tap { |o| def o.info(_) = nil })
      described_class.apply!(read: [dir], calling_thread_only: VM_THREAD)
    rescue Portcullis::LockdownError => e
      e.code
    end
    expect(result).to eq("lockdown.already_applied")
  end

  describe "from portcullis.toml" do
    before do
      FileUtils.mkdir_p(File.join(dir, "config"))
      FileUtils.mkdir_p(File.join(dir, "tmp"))
      File.write(File.join(dir, "config", "portcullis.toml"), <<~TOML)
        [lockdown.web]
        preset = "ruby"
        connect_tcp = [5432]
      TOML
    end

    let(:config) { Portcullis.load(File.join(dir, "config", "portcullis.toml")) }

    it "adds this Ruby's interpreter and Gem.path to the ruby preset" do
      rules = config.lockdown(:web).rules
      ruby = File.realpath(RbConfig.ruby)
      expect(rules).to include([:exec, ruby, "RbConfig.ruby"]).or include([:exec, ruby, "ruby preset"])
      existing = Gem.path.select { |p| File.directory?(p) }.map { |p| File.realpath(p) }
      expect(rules.map { |r| r[1] }).to include(*existing)
      expect(config.names(:lockdown)).to eq([:web])
      expect(config.lockdown(:web).explain).to include("connect_tcp: 5432")
      expect { config.lockdown(:nope) }.to raise_error(Portcullis::ConfigError) { |e| expect(e.code).to eq("config.unknown_name") }
    end

    it "boots Ruby libraries under the lockdown and keeps the rest out" do
      result = in_fork do
        lockdown = config.lockdown(:web)
        lockdown = lockdown.send(:_with_calling_thread_only) if VM_THREAD
        lockdown.apply!(logger: Object.new.tap { |o| def o.info(_) = nil })
        require "erb"
        require "set"
        {
          erb: ERB.new("<%= 1 + 1 %>").result,
          tmp: File.write(File.join(dir, "tmp", "x"), "ok"),
          config_write: refusal { File.write(File.join(dir, "config", "x"), "no") },
          shadow: refusal { File.read("/etc/shadow") },
          sh: system("/bin/sh", "-c", "exit 0").inspect
        }
      end
      expect(result[:error]).to be_nil, result.inspect
      expect(result[:erb]).to eq("2")
      expect(result[:tmp]).to eq(2)
      expect(result[:config_write]).to eq(Errno::EACCES)
      expect(result[:shadow]).to eq(Errno::EACCES)
      expect(result[:sh]).to eq("nil") # could not be executed
    end
  end

  describe ".puma_before_fork" do
    it "locks the master before it forks, so every worker serves locked down", if: system("which puma > /dev/null 2>&1") do
      FileUtils.mkdir_p(File.join(dir, "config"))
      port = TCPServer.open("127.0.0.1", 0) { |s| s.addr[1] }
      File.write(File.join(dir, "config", "portcullis.toml"), "[lockdown.web]\npreset = \"ruby\"\n")
      File.write(File.join(dir, "config", "puma.rb"), <<~RUBY)
        $LOAD_PATH.unshift #{File.expand_path('../lib', __dir__).inspect}
        require "portcullis"
        Portcullis.config = Portcullis.load(#{File.join(dir, 'config', 'portcullis.toml').inspect})
        workers 2
        bind "tcp://127.0.0.1:#{port}"
        before_fork { Portcullis::Lockdown.puma_before_fork(:web, calling_thread_only: #{VM_THREAD}) }
      RUBY
      File.write(File.join(dir, "config.ru"), <<~RUBY)
        run lambda { |_env|
          passwd = begin; File.read("/etc/passwd"); "read"; rescue SystemCallError => e; e.class.name; end
          [200, {"content-type" => "text/plain"}, ["\#{Process.pid} \#{passwd}"]]
        }
      RUBY
      log = File.join(dir, "puma.log")
      pid = Process.spawn("puma", "-C", "config/puma.rb", "config.ru", chdir: dir, out: log, err: log)
      begin
        bodies = []
        deadline = Time.now + 20
        while bodies.size < 6 && Time.now < deadline
          begin
            bodies << Net::HTTP.get(URI("http://127.0.0.1:#{port}/"))
          rescue SystemCallError, EOFError
            sleep 0.2
          end
        end
        expect(bodies.size).to eq(6), File.read(log)
        expect(bodies.map { |b| b.split.last }.uniq).to eq(["Errno::EACCES"])
        expect(File.read(log)).to include("portcullis lockdown: landlock ABI")
      ensure
        Process.kill("TERM", pid)
        Process.wait(pid)
      end
    end

    it "stops the master instead of serving unprotected when the lockdown is refused", if: system("which puma > /dev/null 2>&1") do
      FileUtils.mkdir_p(File.join(dir, "config"))
      port = TCPServer.open("127.0.0.1", 0) { |s| s.addr[1] }
      File.write(File.join(dir, "config", "portcullis.toml"), "[lockdown.web]\npreset = \"ruby\"\n")
      File.write(File.join(dir, "config", "puma.rb"), <<~RUBY)
        $LOAD_PATH.unshift #{File.expand_path('../lib', __dir__).inspect}
        require "portcullis"
        Portcullis.config = Portcullis.load(#{File.join(dir, 'config', 'portcullis.toml').inspect})
        workers 2
        bind "tcp://127.0.0.1:#{port}"
        Thread.new { sleep } # a gem's thread in the master: the lockdown must refuse
        before_fork { Portcullis::Lockdown.puma_before_fork(:web) }
      RUBY
      File.write(File.join(dir, "config.ru"), "run ->(_env) { [200, {}, [\"served\"]] }\n")
      log = File.join(dir, "puma.log")
      pid = Process.spawn("puma", "-C", "config/puma.rb", "config.ru", chdir: dir, out: log, err: log)
      status = nil
      deadline = Time.now + 20
      while status.nil? && Time.now < deadline
        status = Process.wait2(pid, Process::WNOHANG)&.last
        sleep 0.1
      end
      Process.kill("KILL", pid) && Process.wait(pid) unless status
      expect(status).not_to be_nil, "puma kept running: #{File.read(log)}"
      expect(status.success?).to be(false)
      expect(File.read(log)).to include("lockdown.threads").and include("not serving unprotected")
      expect { Net::HTTP.get(URI("http://127.0.0.1:#{port}/")) }.to raise_error(SystemCallError)
    end
  end
end

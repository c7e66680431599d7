# frozen_string_literal: true

require "tmpdir"
require "fileutils"
require "pathname"

RSpec.describe Portcullis::Command do
  def error_code
    yield
    raise "expected Portcullis::CommandError"
  rescue Portcullis::CommandError => e
    expect(e).to be_a(Portcullis::Error)
    expect(e.message).not_to be_empty
    e.code
  end

  let(:deploy) do
    # docker is not installed here: /bin/echo stands in, with docker's argv shape.
    described_class.new("/bin/echo", ["run", "--rm", "--", :image],
                        params: { image: { one_of: { "worker" => "worker:latest", "api" => "api:stable" } } },
                        env: { "DOCKER_HOST" => "unix:///run/docker.sock" }, timeout: 30)
  end

  describe ".new" do
    it "builds a template and exposes program, param_names, timeout and inspect" do
      expect(deploy.program).to eq("/bin/echo")
      expect(deploy.param_names).to eq([:image])
      expect(deploy.timeout).to eq(30.0)
      expect(deploy.inspect).to include("/bin/echo", ":image")
    end

    it "cannot be allocated without a template" do
      expect { described_class.allocate }.to raise_error(TypeError)
    end

    it "refuses relative, missing, non-executable programs (command.program)" do
      expect(error_code { described_class.new("echo") }).to eq("command.program")
      expect(error_code { described_class.new("/nonexistent/x") }).to eq("command.program")
      expect(error_code { described_class.new("/usr/bin") }).to eq("command.program")
      Dir.mktmpdir do |dir|
        path = File.join(dir, "plain")
        FileUtils.cp("/bin/true", path)
        File.chmod(0o644, path)
        expect(error_code { described_class.new(path) }).to eq("command.program")
      end
    end

    it "refuses shells and interpreters unless allowed (command.interpreter)" do
      %w[/bin/sh /bin/bash /usr/bin/ruby /usr/bin/python3 /usr/bin/perl /usr/bin/make].each do |program|
        next unless File.exist?(program)

        expect(error_code { described_class.new(program) }).to eq("command.interpreter"), program
        expect(described_class.new(program, allow_interpreter: true).program).to eq(program)
      end
      expect(error_code { described_class.new("/usr/bin/sed", ["-e", :script], params: { script: { literal: true } }) })
        .to eq("command.interpreter")
      expect(described_class.new("/usr/bin/sed", ["--sandbox", "-e", :script], params: { script: { literal: true } })
        .run(script: "1e id").success?).to be(false)
    end

    it "refuses launchers, which run an argument as a program (command.launcher)" do
      launchers = %w[/usr/bin/env /usr/bin/nice /bin/nice /usr/bin/timeout /usr/bin/nohup /usr/bin/setsid
                     /usr/bin/stdbuf /usr/bin/xargs /usr/bin/flock /usr/sbin/chroot /usr/bin/unshare
                     /usr/bin/nsenter /usr/bin/sudo /usr/bin/doas /lib64/ld-linux-x86-64.so.2].select { |p| File.exist?(p) }
      expect(launchers.size).to be >= 8
      launchers.each do |program|
        expect(error_code { described_class.new(program, ["/bin/sh", "-c", "echo {m}"], params: { m: { literal: true } }) })
          .to eq("command.launcher"), program
        expect(described_class.new(program, allow_interpreter: true).program).to eq(program)
      end
      expect(error_code { described_class.new("/usr/bin/find", [".", "-exec", "/bin/sh", "-c", "echo {}", ";"]) })
        .to eq("command.launcher")
      Dir.mktmpdir do |dir|
        File.symlink("/usr/bin/nice", File.join(dir, "report"))
        expect(error_code { described_class.new(File.join(dir, "report")) }).to eq("command.launcher")
      end
    end

    it "runs #! scripts, whose arguments are data, and refuses interpreter lines that make them code" do
      Dir.mktmpdir do |dir|
        write = lambda do |shebang|
          path = File.join(dir, "script-#{shebang.hash.abs}")
          File.write(path, "#{shebang}\nprintf '%s|' \"$@\"\n")
          File.chmod(0o755, path)
          path
        end
        ["#!/bin/sh", "#!/bin/bash -e", "#!/usr/bin/env sh", "#!/usr/bin/env -S sh -eu"].each do |shebang|
          cmd = described_class.new(write.(shebang), [:v], params: { v: { literal: true } })
          expect(cmd.run(v: "$(id); `id`").stdout).to eq("$(id); `id`|"), shebang
        end
        { "#!/bin/sh -c" => "command.interpreter", "#!/usr/bin/perl -e" => "command.interpreter",
          "#!/usr/bin/env -S bash -c" => "command.interpreter", "#!/usr/bin/env bash -c" => "command.launcher",
          "#!/usr/bin/env -S 'sh' -c" => "command.launcher", "#!/usr/bin/nice /bin/sh" => "command.launcher" }
          .each do |shebang, code|
            expect(error_code { described_class.new(write.(shebang)) }).to eq(code), shebang
            expect(described_class.new(write.(shebang), allow_interpreter: true)).to be_a(described_class)
          end
      end
    end

    it "refuses inconsistent templates (command.bad_template)" do
      [
        -> { described_class.new("/bin/echo", [:x]) },
        -> { described_class.new("/bin/echo", [], params: { x: { literal: true } }) },
        -> { described_class.new("/bin/echo", ["{a}{b}"], params: { a: { literal: true }, b: { literal: true } }) },
        -> { described_class.new("/bin/echo", [:x], params: { x: {} }) },
        -> { described_class.new("/bin/echo", [:x], params: { x: "literal" }) },
        -> { described_class.new("/bin/echo", [:x], params: { x: { literal: true, integer: 1..2 } }) },
        -> { described_class.new("/bin/echo", [:x], params: { x: { literal: true, bogus: 1 } }) },
        -> { described_class.new("/bin/echo", [:x], params: { x: { pattern: "(" } }) },
        -> { described_class.new("/bin/echo", [:x], params: { x: { integer: "1..2" } }) },
        -> { described_class.new("/bin/echo", [:x], params: { x: { integer: 1.0..2.0 } }) },
        -> { described_class.new("/bin/echo", [:x], params: { x: { one_of: "worker" } }) },
        -> { described_class.new("/bin/echo", [:x], params: { x: { one_of: { "w" => "--privileged" } } }) },
        -> { described_class.new("/bin/echo", [:x], params: { x: { literal: true, max_length: -1 } }) },
        -> { described_class.new("/bin/echo", [1]) },
        -> { described_class.new("/bin/echo", env: { "PATH" => "/tmp" }) },
        -> { described_class.new("/bin/echo", env: { "A" => 1.5 }) },
        -> { described_class.new("/bin/echo", timeout: 0) },
        -> { described_class.new("/bin/echo", timeout: -1) },
        -> { described_class.new("/bin/echo", timeout: "30") },
        -> { described_class.new("/bin/echo", timeout: 10**12) },
        -> { described_class.new("/bin/echo", timeout: Float::INFINITY) },
        -> { described_class.new("/bin/echo", timeout: Float::NAN) },
        -> { described_class.new("/bin/echo", max_output: -1) },
        -> { described_class.new("/bin/echo", chdir: "relative") },
        -> { described_class.new("/bin/echo", rlimits: { cpu: -1 }) },
        -> { described_class.new("/bin/echo", rlimits: { bogus: 1 }) },
        -> { described_class.new("/bin/echo", rlimits: 5) }
      ].each_with_index do |build, i|
        expect(error_code(&build)).to eq("command.bad_template"), "case #{i}"
      end
    end

    it "accepts every parameter type and option" do
      cmd = described_class.new(
        "/bin/echo", ["--name={name}", :n, :fmt, :text, :image],
        params: {
          name: { pattern: "[a-z]+", max_length: 8 },
          n: { integer: -5...5, allow_leading_dash: true },
          fmt: { one_of: %w[json text] },
          text: { literal: true },
          image: { one_of: { worker: "worker:latest" } }
        },
        env: { LANG: "C" }, timeout: 2.5, max_output: 100, chdir: Pathname.new("/tmp"),
        rlimits: { cpu: 5, address_space: 1 << 32, file_size: 1 << 20, nproc: 100 }
      )
      expect(cmd.argv(name: "abc", n: -5, fmt: :json, text: "a b", image: "worker"))
        .to eq(["/bin/echo", "--name=abc", "-5", "json", "a b", "worker:latest"])
      expect(cmd.timeout).to eq(2.5)
      expect(cmd.run(name: "abc", n: 4, fmt: "text", text: "x", image: "worker").stdout)
        .to eq("--name=abc 4 text x worker:latest\n")
    end

    it "takes Regexp patterns with their flags, anchored to the whole value" do
      cmd = described_class.new("/bin/echo", [:v], params: { v: { pattern: /[a-z]+/i } })
      expect(cmd.argv(v: "AbC")).to eq(%w[/bin/echo AbC])
      expect(error_code { cmd.argv(v: "abc;id") }).to eq("command.invalid_value")
    end

    it "takes endless and beginless integer ranges" do
      cmd = described_class.new("/bin/echo", [:v], params: { v: { integer: 10.. } })
      expect(cmd.argv(v: 10**12)).to eq(["/bin/echo", (10**12).to_s])
      expect(error_code { cmd.argv(v: 9) }).to eq("command.invalid_value")
      cmd = described_class.new("/bin/echo", [:v], params: { v: { integer: ..3 } })
      expect(cmd.argv(v: "3")).to eq(%w[/bin/echo 3])
    end
  end

  describe "#argv" do
    it "maps request values to the arguments actually used" do
      expect(deploy.argv(image: "worker")).to eq(["/bin/echo", "run", "--rm", "--", "worker:latest"])
      expect(deploy.argv("image" => "api")).to eq(["/bin/echo", "run", "--rm", "--", "api:stable"])
    end

    it "refuses the seed's attack values" do
      %w[--privileged -v/:/host --pid=host -v].each do |hostile|
        expect(error_code { deploy.argv(image: hostile) }).to eq("command.option_injection"), hostile
      end
      ["worker;id", "worker latest", "alpine", ""].each do |hostile|
        expect(error_code { deploy.argv(image: hostile) }).to eq("command.invalid_value"), hostile
      end
    end

    it "refuses missing, unknown and duplicate parameters" do
      expect(error_code { deploy.argv }).to eq("command.missing_param")
      expect(error_code { deploy.argv(image: nil) }).to eq("command.missing_param")
      expect(error_code { deploy.argv(image: "worker", tag: "x") }).to eq("command.unknown_param")
      expect(error_code { deploy.argv(:image => "worker", "image" => "api") }).to eq("command.duplicate_param")
      expect(error_code { deploy.argv(1 => "x") }).to eq("command.unknown_param")
    end

    it "takes keywords (or one Hash), nothing else" do
      expect(deploy.argv({ image: "worker" })).to eq(["/bin/echo", "run", "--rm", "--", "worker:latest"])
      expect { deploy.argv("worker") }.to raise_error(ArgumentError)
      expect { deploy.argv({ image: "worker" }, 1) }.to raise_error(ArgumentError)
    end

    it "refuses values of the wrong Ruby type, as a request could send them (?image[]=worker)" do
      [["worker"], { "a" => "worker" }, 1.5, true, Object.new].each do |value|
        expect(error_code { deploy.argv(image: value) }).to eq("command.invalid_value"), value.inspect
      end
      expect(error_code { deploy.argv(image: "\xff".b) }).to eq("command.invalid_value")
    end

    it "refuses control characters and overlong values" do
      cmd = described_class.new("/bin/echo", [:v], params: { v: { literal: true, max_length: 5 } })
      ["a\nb", "a\rb", "a\0b"].each do |bad|
        expect(error_code { cmd.argv(v: bad) }).to eq("command.control_char"), bad.inspect
      end
      expect(error_code { cmd.argv(v: "123456") }).to eq("command.too_long")
      expect(cmd.argv(v: "12345")).to eq(%w[/bin/echo 12345])
    end

    it "refuses option-shaped payloads for real programs" do
      git = described_class.new("/usr/bin/git", ["-C", "/srv/repo", "fetch", :remote], params: { remote: { literal: true } })
      tar = described_class.new("/bin/tar", ["-xf", :archive], params: { archive: { literal: true } })
      # ssh runs its trailing arguments as a remote shell command (a launcher): allowed here,
      # where that command is fixed.
      ssh = described_class.new("/usr/bin/ssh", [:host, "uptime"], params: { host: { pattern: "[A-Za-z0-9.=-]+" } },
                                                                   allow_interpreter: true)
      curl = described_class.new("/usr/bin/curl", ["-sS", :url], params: { url: { literal: true } })
      find = described_class.new("/usr/bin/find", ["/srv", "-name", :name], params: { name: { literal: true } })
      {
        [git, :remote] => ["--upload-pack=touch /tmp/pwned", "-c core.sshCommand=touch /tmp/pwned"],
        [tar, :archive] => ["--checkpoint-action=exec=sh -c id"],
        [ssh, :host] => ["-oProxyCommand=touch /tmp/pwned"],
        [curl, :url] => ["-o", "-o/etc/passwd"],
        [find, :name] => ["-exec", "-delete"]
      }.each do |(cmd, param), payloads|
        payloads.each do |payload|
          expect(error_code { cmd.argv(param => payload) }).to eq("command.option_injection"), payload
        end
      end
    end
  end

  describe "#run" do
    it "returns a Result with status, signal, stdout, stderr and predicates" do
      result = deploy.run(image: "worker")
      expect(result).to be_a(Portcullis::Command::Result)
      expect(result).to be_success
      expect(result.status).to eq(0)
      expect(result.signal).to be_nil
      expect(result.stdout).to eq("run --rm -- worker:latest\n")
      expect(result.stdout.encoding).to eq(Encoding::UTF_8)
      expect(result.stderr).to eq("")
      expect(result).not_to be_timed_out
      expect(result).not_to be_truncated
      expect(result).not_to be_stdout_truncated
      expect(result).not_to be_stderr_truncated
      expect(result).to be_frozen
      expect(result.inspect).to include("status=0")
    end

    it "passes shell metacharacters literally" do
      printf = described_class.new("/usr/bin/printf", ["%s", :text], params: { text: { literal: true } })
      ["; id", "| cat /etc/passwd", "$(id)", "`id`", "a && b", "$HOME", "*"].each do |text|
        expect(printf.run(text: text).stdout).to eq(text)
      end
    end

    it "reports exit codes and signals" do
      result = described_class.new("/bin/false").run
      expect(result).not_to be_success
      expect(result.status).to eq(1)
      result = described_class.new("/bin/sh", ["-c", "kill -TERM $$"], allow_interpreter: true).run
      expect(result.status).to be_nil
      expect(result.signal).to eq(15)
    end

    it "kills the process group on timeout" do
      cmd = described_class.new("/bin/sh", ["-c", 'trap "" TERM; sleep 100 & echo $!; sleep 100'],
                                allow_interpreter: true, timeout: 0.3)
      result = cmd.run
      expect(result).to be_timed_out
      expect(result).not_to be_success
      expect(result.signal).to eq(9)
      pid = Integer(result.stdout)
      deadline = Time.now + 5
      state = nil
      loop do
        state = (File.read("/proc/#{pid}/stat")[/\) (\S)/, 1] rescue nil)
        break if state.nil? || state == "Z" || Time.now > deadline

        sleep 0.02
      end
      expect([nil, "Z"]).to include(state)
    end

    it "caps output and reports truncation" do
      cmd = described_class.new("/usr/bin/head", ["-c", "100000", "/dev/zero"], max_output: 10)
      result = cmd.run
      expect(result.stdout.bytesize).to eq(10)
      expect(result).to be_truncated
      expect(result).to be_stdout_truncated
      expect(result).to be_success
      expect(result.stdout.encoding).to eq(Encoding::UTF_8)
      binary = described_class.new("/usr/bin/printf", ["\\377"]).run
      expect(binary.stdout).to eq("\xff".b)
      expect(binary.stdout.encoding).to eq(Encoding::BINARY)
    end

    it "gives the child only PATH and the env: allowlist, no stdin, the chdir" do
      ENV["PORTCULLIS_SPEC_SECRET"] = "leak"
      env = described_class.new("/usr/bin/printenv", env: { "GREETING" => "hi" }).run
      expect(env.stdout.lines.map(&:chomp).sort).to eq(["GREETING=hi", "PATH=/usr/local/bin:/usr/bin:/bin"])
      expect(described_class.new("/bin/cat", timeout: 10).run.stdout).to eq("")
      Dir.mktmpdir do |dir|
        real = File.realpath(dir)
        expect(described_class.new("/bin/pwd", chdir: real).run.stdout).to eq("#{real}\n")
      end
    end

    it "applies rlimits" do
      limits = described_class.new("/bin/cat", ["/proc/self/limits"], rlimits: { cpu: 3, nproc: 50 }).run.stdout
      expect(limits).to match(/^Max cpu time\s+3\s+3\s/)
      expect(limits).to match(/^Max processes\s+50\s+50\s/)
    end

    it "raises command.spawn_failed when the program vanished" do
      Dir.mktmpdir do |dir|
        path = File.join(dir, "vanishing")
        FileUtils.cp("/bin/true", path)
        File.chmod(0o755, path)
        cmd = described_class.new(path)
        File.delete(path)
        expect(error_code { cmd.run }).to eq("command.spawn_failed")
      end
    end

    it "refuses values before running anything" do
      expect(error_code { deploy.run(image: "--privileged") }).to eq("command.option_injection")
    end

    it "releases the GVL while the child runs" do
      cmd = described_class.new("/bin/sleep", ["0.5"])
      ticks = 0
      ticker = Thread.new { loop { ticks += 1; sleep 0.01 } }
      cmd.run
      ticker.kill
      expect(ticks).to be > 10
    end

    def dead?(pid)
      deadline = Time.now + 5
      loop do
        state = (File.read("/proc/#{pid}/stat")[/\) (\S)/, 1] rescue nil)
        return true if state.nil? || state == "Z"
        return false if Time.now > deadline

        sleep 0.02
      end
    end

    it "is stopped by Timeout (and Thread#raise), killing the whole process group" do
      require "timeout"
      Dir.mktmpdir do |dir|
        pid_file = File.join(dir, "pid")
        cmd = described_class.new("/bin/sh", ["-c", %(trap "" TERM; sleep 100 & echo $! > #{pid_file}; sleep 100)],
                                  allow_interpreter: true, timeout: 60)
        started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
        expect { Timeout.timeout(0.5) { cmd.run } }.to raise_error(Timeout::Error)
        # Long before the command's own 60 s timeout: the interrupt stopped it.
        expect(Process.clock_gettime(Process::CLOCK_MONOTONIC) - started).to be < 30
        expect(dead?(Integer(File.read(pid_file)))).to be(true)

        File.delete(pid_file)
        runner = Thread.new { cmd.run! }
        runner.report_on_exception = false
        sleep 0.05 until File.exist?(pid_file) && !File.read(pid_file).empty?
        runner.raise(ArgumentError, "stop")
        expect { runner.join }.to raise_error(ArgumentError, "stop")
        expect(dead?(Integer(File.read(pid_file)))).to be(true)
      end
    end
  end

  describe "pattern parameters" do
    PATTERNS = [/\A\d+\z/, /\w+/, /\s/, /\h+/, /[\w.-]+/, /[\w.]+/i, /\w+/i, /[^\W_]+/, /k/i, /[a-z]+/i,
                /(?i)[\d]/, /[[:alpha:]]/, /[[:digit:]]/, /[[:alnum:]]/, /[[:upper:]]/, /[[:lower:]]/,
                /[[:space:]]/, /[[:blank:]]/, /[[:cntrl:]]/, /[[:punct:]]/, /[[:graph:]]/, /[[:print:]]/,
                /[[:xdigit:]]/, /[[:word:]]/, /[[:^alpha:]]/, /a\b./, /.\B./, /a(?i)b|c/, /x{ 3}/, /\d{,2}/,
                /[a b]/x, /\p{L}+/, /\<a\>/].freeze
    HOSTILE = ["１２３", "٣", "১২", "ａｄｍｉｎ", "\u212A", "\u017F", "é", "\u00a0", "\v", "\u2028", "ab", "aé",
               "a1", "AB", "c", "aC", "x{ 3}", "xxx", "12", "", " ", "K", "k", "_", "a_b", "\u2160", "ß", "ss",
               "$", "+", "€", "\u200b", "<a>"].freeze

    # Code points whose Alphabetic or Lowercase property changed after Unicode 13.0 (Ruby
    # 3.1's tables); the core's newer tables follow Unicode. Checked over every code point.
    UNICODE_CHANGED = [0x363..0x36F, 0xC04..0xC04, 0xF82..0xF83, 0x10FC..0x10FC, 0x1DD3..0x1DE6,
                       0xAB69..0xAB69, 0x11080..0x11081].freeze

    # The hostile spellings, and every 97th code point below U+30000 assigned in Ruby's
    # Unicode version (characters assigned later are unknown to Ruby's tables).
    def samples
      sampled = (0...0x30000).step(97).filter_map do |cp|
        next if (0xD800..0xDFFF).cover?(cp) || UNICODE_CHANGED.any? { |r| r.cover?(cp) }

        s = [cp].pack("U")
        s if s.match?(/\p{Assigned}/)
      end
      (HOSTILE + sampled + sampled.each_slice(7).map(&:join)).reject { |s| s.start_with?("-") || s.match?(/[\0\r\n]/) }
    end

    def accepts?(cmd, value)
      cmd.argv(v: value)
      true
    rescue Portcullis::CommandError => e
      raise unless e.code == "command.invalid_value"

      false
    end

    it "accepts exactly what Ruby's Regexp accepts, as a Regexp and as the same source in portcullis.toml" do
      Dir.mktmpdir do |dir|
        toml = PATTERNS.each_with_index.map do |re, i|
          flags = "#{"i" if re.options.anybits?(Regexp::IGNORECASE)}#{"x" if re.options.anybits?(Regexp::EXTENDED)}"
          source = flags.empty? ? re.source : "(?#{flags})#{re.source}"
          %([command.p#{i}]\nprogram = "/bin/echo"\nargs = ["{v}"]\nparams.v = { type = "pattern", pattern = #{source.dump} }\n)
        end.join("\n")
        File.write(File.join(dir, "portcullis.toml"), toml)
        config = Portcullis.load(File.join(dir, "portcullis.toml"))
        values = samples
        mismatches = PATTERNS.each_with_index.flat_map do |re, i|
          whole = Regexp.new("\\A(?:#{re.source})\\z", re.options)
          from_regexp = described_class.new("/bin/echo", [:v], params: { v: { pattern: re } })
          from_toml = config.command(:"p#{i}")
          values.filter_map do |s|
            ruby = whole.match?(s)
            ours = [accepts?(from_regexp, s), accepts?(from_toml, s)]
            "#{re.inspect} #{s.inspect}: Ruby #{ruby}, Regexp/toml #{ours}" if ours != [ruby, ruby]
          end
        end
        expect(mismatches).to eq([])
        expect(values.size).to be > 1500
      end
    end

    it "refuses \\d, \\w and \\s spellings outside ASCII (command.invalid_value)" do
      digits = described_class.new("/bin/echo", [:v], params: { v: { pattern: /\A\d+\z/ } })
      %w[１２３ ٣ ১২].each { |v| expect(error_code { digits.argv(v: v) }).to eq("command.invalid_value") }
      expect(digits.argv(v: "123").last).to eq("123")
      word = described_class.new("/bin/echo", [:v], params: { v: { pattern: /\A\w+\z/i } })
      ["ａｄｍｉｎ", "\u212A", "é"].each { |v| expect(error_code { word.argv(v: v) }).to eq("command.invalid_value") }
    end

    it "refuses patterns that Ruby and Rust read differently (command.bad_template)" do
      [/a++/, /a{2}?/, /[a-z&&[^\w]]/i, "[a--b]"].each do |re|
        expect(error_code { described_class.new("/bin/echo", [:v], params: { v: { pattern: re } }) })
          .to eq("command.bad_template"), re.inspect
      end
    end
  end

  describe "path parameters" do
    around do |example|
      Dir.mktmpdir do |dir|
        @dir = File.realpath(dir)
        FileUtils.mkdir_p(File.join(@dir, "files/sub"))
        File.write(File.join(@dir, "files/report.txt"), "report")
        File.write(File.join(@dir, "secret.txt"), "secret")
        File.symlink("../secret.txt", File.join(@dir, "files/escape"))
        File.symlink("report.txt", File.join(@dir, "files/link"))
        example.run
      end
    end

    let(:files) { File.join(@dir, "files") }

    it "passes a name beneath a SafeRoot as the absolute path it resolves to" do
      root = Portcullis::SafeRoot.new(files)
      cat = described_class.new("/bin/cat", ["--", :file], params: { file: { path: root } }, chdir: root)
      expect(cat.argv(file: "report.txt")).to eq(["/bin/cat", "--", File.join(files, "report.txt")])
      expect(cat.run(file: "sub/../report.txt").stdout).to eq("report")
      expect(described_class.new("/bin/pwd", chdir: root).run.stdout).to eq("#{files}\n")
    end

    it "takes a directory as a String or Pathname" do
      [files, Pathname.new(files)].each do |dir|
        cat = described_class.new("/bin/cat", [:file], params: { file: { path: dir } })
        expect(cat.run(file: "link").stdout).to eq("report")
      end
    end

    it "refuses names that leave the root (command.path)" do
      cat = described_class.new("/bin/cat", [:file], params: { file: { path: Portcullis::SafeRoot.new(files) } })
      ["../secret.txt", "/etc/passwd", "escape", "missing"].each do |name|
        expect(error_code { cat.argv(file: name) }).to eq("command.path"), name
      end
      expect(error_code { cat.argv(file: "-rf") }).to eq("command.option_injection")
    end

    it "keeps the SafeRoot's symlink policy" do
      strict = described_class.new("/bin/cat", [:file],
                                   params: { file: { path: Portcullis::SafeRoot.new(files, symlinks: :deny) } })
      expect(error_code { strict.argv(file: "link") }).to eq("command.path")
      expect(strict.argv(file: "report.txt").last).to eq(File.join(files, "report.txt"))
    end

    it "refuses a root that is not a directory (command.bad_template)" do
      expect(error_code { described_class.new("/bin/cat", [:f], params: { f: { path: "/nonexistent" } }) })
        .to eq("command.bad_template")
      expect(error_code { described_class.new("/bin/cat", [:f], params: { f: { path: 42 } }) })
        .to eq("command.bad_template")
    end
  end

  describe "#run!" do
    it "returns the Result on success" do
      expect(deploy.run!(image: "api").stdout).to eq("run --rm -- api:stable\n")
    end

    it "raises command.failed and command.timeout" do
      expect(error_code { described_class.new("/bin/false").run! }).to eq("command.failed")
      expect(error_code { described_class.new("/bin/sleep", ["5"], timeout: 0.2).run! }).to eq("command.timeout")
    end
  end

  # On the main thread of a single-threaded process, each attempt to release the GVL with an
  # unblocking function makes Ruby start a helper thread, and under GC.stress that always
  # left an interrupt pending: #run spun at 100% CPU and never started the program. Run in
  # a child Ruby with a deadline, so a regression fails instead of hanging the suite.
  it "runs under GC.stress on the main thread of a single-threaded process" do
    script = <<~RUBY
      require "portcullis"
      cmd = Portcullis::Command.new("/bin/echo", ["--n={n}"], params: { n: { integer: 1..9 } })
      GC.stress = true
      out = cmd.run(n: 7).stdout
      GC.stress = false
      raise "threads: \#{Thread.list.size}" unless Thread.list.size == 1
      print out
    RUBY
    lib = File.expand_path("../lib", __dir__)
    reader, writer = IO.pipe
    pid = Process.spawn(RbConfig.ruby, "-I#{lib}", "-e", script, out: writer, err: writer, pgroup: true)
    writer.close
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 60
    status = nil
    until (status = Process.wait2(pid, Process::WNOHANG)&.last)
      if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
        Process.kill(:KILL, -pid)
        Process.wait(pid)
        raise "Command#run under GC.stress did not finish within 60 s"
      end
      sleep 0.05
    end
    output = reader.read
    expect(status).to be_success, output
    expect(output).to eq("--n=7\n")
  end

  it "survives GC.stress with 8 threads" do
    cmd = described_class.new("/bin/echo", ["--n={n}", :image],
                              params: { n: { integer: 1..100 }, image: { one_of: { "worker" => "worker:latest" } } })
    errors = Queue.new
    GC.stress = true
    begin
      threads = Array.new(8) do |t|
        Thread.new do
          3.times do |i|
            n = (t * 3) + i + 1
            errors << :argv unless cmd.argv(n: n, image: "worker") == ["/bin/echo", "--n=#{n}", "worker:latest"]
            begin
              cmd.argv(n: "x", image: "worker")
              errors << :accepted
            rescue Portcullis::CommandError => e
              errors << :code unless e.code == "command.invalid_value"
            end
          end
          errors << :run unless cmd.run(n: t + 1, image: "worker").stdout == "--n=#{t + 1} worker:latest\n"
        end
      end
      threads.each(&:join)
    ensure
      GC.stress = false
    end
    expect(errors.size).to eq(0)
  end
end

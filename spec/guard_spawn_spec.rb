# frozen_string_literal: true

require_relative "spec_helper"
require "tmpdir"

RSpec.describe "Portcullis.guard! spawn rule" do
  # Ruby's own behaviour decides: a single string whose first word does not exist raises
  # ENOENT when Ruby execs it directly, and runs (sh prints "not found") when Ruby uses
  # /bin/sh. The guard's rule must agree on every string.
  it "matches Ruby's own shell decision on a corpus of hostile strings" do
    rng = Random.new(RSpec.configuration.seed)
    alphabet = ["z", "q", " ", "\t", "=", "/", "."] + "*?{}[]<>()~&|\\$;'`\"\n#%!:,+-@^".chars
    prefixes = ["", "zzq", "zzq=1", "  zzq=1", "z/q=1", "./zzq", "/zzq", "exec", "if", "!", ".", ":", "done",
                "readonly", "whilez", "for", "in", "export", "zzq exec"]
    corpus = prefixes.flat_map { |p| [p, "#{p} zq"] } + ["\n", " \n", "\n\t ", " \r\n", "\v\n", "\nzq"]
    corpus += Array.new(300) { prefixes.sample(random: rng) + Array.new(rng.rand(0..6)) { alphabet.sample(random: rng) }.join }
    disagreements = []
    Dir.mktmpdir do |dir|
      corpus.uniq.each_with_index do |cmd, i|
        next if cmd.include?("\0")

        # Each command in an empty directory of its own: a shell command before it may have
        # created files ("zq > z"), which would turn a later direct exec of "z/q=1" into
        # ENOTDIR instead of ENOENT.
        cwd = File.join(dir, i.to_s)
        Dir.mkdir(cwd)
        ruby_shell = begin
          pid = Process.spawn({ "PATH" => cwd }, cmd, chdir: cwd, in: File::NULL, out: File::NULL, err: File::NULL,
                                                      unsetenv_others: true)
          Process.wait(pid)
          true
        rescue Errno::ENOENT, Errno::EACCES, Errno::ENOTDIR # Ruby exec'd it directly, and that failed
          false
        end
        guard_shell = !Portcullis::Guard.shell_reason(cmd).nil?
        disagreements << [cmd, ruby_shell, guard_shell] unless ruby_shell == guard_shell
      end
    end
    expect(disagreements).to be_empty, disagreements.inspect
    expect(corpus.uniq.size).to be > 200
  end

  it "refuses the shell form and allows the argv form through every hooked method" do
    results = GuardChild.run(<<~'RUBY', isolate: false)
      require "open3"
      require "open-uri"
      require "pty"
      Portcullis.guard!(spawn: :no_shell)
      shell = "echo guarded; echo $HOME"
      calls = {
        "system" => [-> { system(shell) }, -> { system("echo", "argv ok", out: File::NULL) }],
        "system env+opts" => [-> { system({ "A" => "1" }, "echo $A", out: File::NULL) },
                              -> { system({ "A" => "1" }, "echo", "x", out: File::NULL, chdir: "/") }],
        "system no meta" => [-> { system("echo plain", out: File::NULL) },
                             -> { system("echo plain words", out: File::NULL) }],
        "Kernel.system" => [-> { Kernel.system(shell) }, -> { Kernel.system("true") }],
        "spawn" => [-> { Process.wait(spawn(shell)) }, -> { Process.wait(spawn("true")) }],
        "Process.spawn" => [-> { Process.wait(Process.spawn(shell)) }, -> { Process.wait(Process.spawn(["true", "t"])) }],
        "exec" => [-> { exec(shell) }, -> { Process.wait(fork { exec("true") }); $?.success? }],
        "Process.exec" => [-> { Process.exec(shell) }, -> { Process.wait(fork { Process.exec("true") }); $?.success? }],
        "backtick" => [-> { `#{shell}` }, -> { `echo plain` }],
        "open pipe" => [-> { open("|#{shell}", &:read) }, -> { open("|echo plain", &:read) }],
        "URI.open pipe" => [-> { URI.open("|#{shell}", &:read) }, -> { URI.open("|echo plain", &:read) }],
        "IO.popen" => [-> { IO.popen(shell, &:read) }, -> { IO.popen(["echo", "x; y"], &:read) }],
        "IO.popen env" => [-> { IO.popen({ "A" => "1" }, "echo $A", &:read) }, -> { IO.popen({ "A" => "1" }, %w[echo a], &:read) }],
        "IO.read" => [-> { IO.read("|#{shell}") }, -> { IO.read("|echo plain") }],
        "IO.readlines" => [-> { IO.readlines("|#{shell}") }, -> { IO.readlines("|echo plain") }],
        "IO.foreach" => [-> { IO.foreach("|#{shell}").to_a }, -> { IO.foreach("|echo plain").to_a }],
        "IO.write" => [-> { IO.write("|cat > /dev/null; id", "x") }, -> { IO.write("|cat", "") }],
        "PTY.spawn" => [-> { PTY.spawn(shell) { |r, _w, pid| Process.wait(pid) } },
                        -> { PTY.spawn("true") { |_r, _w, pid| Process.wait(pid) } }],
        "Open3" => [-> { Open3.capture2(shell) }, -> { Open3.capture2("echo", "a; b")[0] }]
      }
      calls.each do |name, (bad, good)|
        result("#{name} shell", outcome(&bad))
        result("#{name} argv", outcome(&good))
      end
      result(:file_read, outcome { File.read("|nonexistent") }) # File.read never spawns
      result(:status, Portcullis.guard_status[:counts][:spawn])
    RUBY
    names = ["system", "system env+opts", "Kernel.system", "spawn", "Process.spawn", "exec", "Process.exec",
             "backtick", "open pipe", "URI.open pipe", "IO.popen", "IO.popen env", "IO.read", "IO.readlines", "IO.foreach", "IO.write",
             "PTY.spawn", "Open3"]
    names.each do |name|
      expect(results["#{name} shell"]).to match(["refused", a_string_including("/bin/sh"), "command.shell_string"]), name
      expect(results["#{name} argv"][0]).to eq("ok"), "#{name}: #{results["#{name} argv"]}"
    end
    expect(results["system no meta argv"]).to eq(["ok", true]) # bin/rails db:migrate style strings pass
    expect(results["system no meta shell"]).to eq(["ok", true])
    expect(results["file_read"][1]).to start_with("Errno::ENOENT")
    expect(results["IO.popen argv"]).to eq(["ok", "x; y\n"])
    # the refusal names the program and the argument count, never the rest of the string
    expect(results["system shell"][1]).to include('"echo"').and include("3 more words")
    expect(results["system shell"][1]).not_to include("$HOME")
    expect(results["status"]["refused"]).to eq(names.size)
  end

  it "applies a program allowlist to every form" do
    results = GuardChild.run(<<~'RUBY', isolate: false)
      Portcullis.guard!(programs: ["true", "/bin/echo"])
      result(:true, outcome { system("true") })
      result(:echo_path, outcome { system("/bin/echo", "x", out: File::NULL) })
      result(:echo_bare, outcome { system("echo", "x") })
      result(:array, outcome { system(["/usr/bin/id", "true"]) })
      result(:string, outcome { system("id -u") })
      Portcullis.guard!(spawn: :off)
      result(:off, outcome { system("true; true") })
    RUBY
    expect(results["true"]).to eq(["ok", true])
    expect(results["echo_path"]).to eq(["ok", true])
    %w[echo_bare array string].each do |k|
      expect(results[k]).to match(["refused", anything, "command.program_not_allowed"]), k
    end
    expect(results["off"]).to eq(["ok", true])
  end
end

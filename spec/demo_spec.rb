# frozen_string_literal: true

require "open3"
require "rbconfig"
require "digest"
require "tmpdir"
require "fileutils"

# `make demo`, end to end: run.rb in its own process, the way a reader runs it. It starts the
# demo server (Puma with mTLS, the 127.0.0.2 upstream, the fixture tree) under
# `portcullis exec` and calls it from outside. The demo itself exits 1 when a row shows
# anything but its expected outcome; these examples also read the key rows themselves, so a
# demo that silently dropped its checks would still fail here.
RSpec.describe "examples/demo (make demo)" do
  # rows by request: { "GET /files?name=../public2/secret" => [client, status, outcome] }
  before(:all) do
    root = File.expand_path("..", __dir__)
    # A private TMPDIR, so "cleans up after itself" is checked without racing other runs.
    @tmpdir = Dir.mktmpdir("demo-spec")
    @output, @stderr, @status = Open3.capture3({ "TMPDIR" => @tmpdir }, RbConfig.ruby, "-Ilib",
                                               "examples/demo/run.rb", chdir: root)
    @leftovers = Dir.children(@tmpdir)
    @run_dir = @output[%r{--config (tmp/demo-[^/ ]+)/portcullis\.toml}, 1]
    @root = root
    @rows = @output.lines.filter_map do |line|
      cols = line.split(" | ").map(&:strip)
      next unless cols.size >= 6 && cols[1].match?(/\A(GET|POST) /)

      [[cols[0].split.first, cols[1]], { status: cols[2], outcome: cols[3], check: cols[5] }]
    end.to_h
  end

  after(:all) { FileUtils.remove_entry(@tmpdir) if @tmpdir }

  def row(client, request)
    @rows.fetch([client, request]) { raise "no row for #{client} #{request} in:\n#{@output}\n#{@stderr}" }
  end

  it "exits 0 with every row as expected, and leaves no temp files behind" do
    expect(@status.exitstatus).to eq(0), "demo failed:\n#{@output}\n#{@stderr}"
    expect(@rows.size).to be >= 47
    expect(@rows.values.map { |r| r[:check] }).to all(eq("ok"))
    expect(@output).to include("All #{@rows.size} rows as expected.")
    expect(@leftovers).to be_empty
    expect(@run_dir).not_to be_nil, @output
    expect(File.exist?(File.join(@root, @run_dir))).to be(false)
  end

  it "serves from under portcullis exec, and the kernel refuses every escape a request tries" do
    expect(@output).to match(/^portcullis lockdown: landlock ABI \d+ enforced .*seccomp floor enforced/)
    expect(@output).to include("portcullis supervisor: judging connect/sendto/sendmsg/sendmmsg by [egress.demo]")
    expect(@output).to match(%r{^portcullis supervisor: /\S*ruby\S* ended \(exit 0\)})
    escapes = @rows.select { |(client, req), _| client == "viewer" && req.start_with?("GET /escape?try=") }
    expect(escapes.size).to eq(19)
    expect(escapes.values.map { |r| r[:status] }).to all(eq("200"))
    expect(escapes.values.map { |r| r[:outcome] }).to all(match(/\Arefused: Errno::E(ACCES|PERM)\z/))
    expect(row("viewer", "GET /escape?try=read+%2Fetc%2Fshadow")).to include(outcome: "refused: Errno::EACCES")
    expect(row("viewer", "GET /escape?try=exec+%2Fbin%2Fsh")).to include(outcome: "refused: Errno::EACCES")
    expect(row("viewer", "GET /escape?try=unshare%28CLONE_NEWUSER%29")).to include(outcome: "refused: Errno::EPERM")
    # and the app's own work went on under the same lockdown: /deploy ran its program,
    # /upload wrote beneath tmp/, /fetch reached the one allowed upstream
    expect(row("deployer", "GET /deploy?container=worker")).to include(status: "200")
    expect(row("workload", "POST /upload?name=report.txt")).to include(status: "201")
  end

  it "fetches the allowlisted upstream and refuses metadata, IP spellings and redirects inward" do
    hello = @rows.find { |(client, req), _| client == "workload" && req.match?(%r{/fetch\?url=http://127\.0\.0\.2:\d+/hello\z}) }
    expect(hello&.last).to include(status: "200", outcome: "upstream 200: hello from the upstream")
    expect(row("workload", "GET /fetch?url=http://169.254.169.254/latest/meta-data/"))
      .to include(status: "403", outcome: "refused: egress.metadata")
    expect(row("workload", "GET /fetch?url=http://2130706433/")).to include(outcome: "refused: egress.reserved_address")
    expect(row("workload", "GET /fetch?url=http://[::ffff:127.0.0.1]/")).to include(outcome: "refused: egress.reserved_address")
    redirect = @rows.find { |(_, req), _| req.end_with?("/to-metadata") }
    expect(redirect&.last).to include(status: "403", outcome: "refused: egress.metadata")
  end

  it "serves beneath the root only, and stores uploads under their SHA-256" do
    expect(row("viewer", "GET /files?name=hello.txt")).to include(status: "200", outcome: "hello from public/")
    expect(row("viewer", "GET /files?name=../public2/secret"))
      .to include(status: "403", outcome: "refused: path.escape (seed's start_with?: inside)")
    expect(row("viewer", "GET /files?name=%2e%2e/public2/secret")).to include(outcome: start_with("refused: path.escape"))
    expect(row("viewer", "GET /files?name=to_outside/secret.txt")).to include(outcome: start_with("refused: path.escape"))
    expect(row("workload", "POST /upload?name=evil.php")).to include(status: "403", outcome: "refused: path.extension")
    expect(row("workload", "POST /upload?name=report.txt"))
      .to include(status: "201", outcome: "stored as #{Digest::SHA256.hexdigest("quarterly report\n")}.txt")
  end

  it "deploys only mapped values, and only for identities granted containers:deploy" do
    expect(row("deployer", "GET /deploy?container=worker")).to include(status: "200", outcome: "ran: run --rm -- worker:latest")
    expect(row("deployer", "GET /deploy?container=--privileged"))
      .to include(status: "403", outcome: "refused: command.option_injection")
    expect(row("workload", "GET /deploy?container=worker%3Bid")).to include(status: "403", outcome: "refused: command.invalid_value")
    expect(row("viewer", "GET /deploy?container=worker")).to include(status: "403", outcome: "authz.forbidden")
  end
end

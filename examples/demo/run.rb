# frozen_string_literal: true

# `make demo`: mint a throwaway PKI, start the demo server (server.rb: Puma with mutual TLS on
# 127.0.0.1, Portcullis::Rack::ClientCert in front of the demo app) under
# `portcullis exec`, so the kernel locks it down before its first instruction; call it as
# each client with Net::HTTP from this process, which stays outside the sandbox; print what
# happened; stop the server. Each row says what it must show; the run exits 1 when any row
# shows something else. The last rows are a compromised request trying to break out.
#
# PORTCULLIS_DEMO_LOCKDOWN=off runs the server without `portcullis exec` (and without the
# escape rows); PORTCULLIS_CLI names the `portcullis` binary (default target/release).
require "openssl"
require "net/http"
require "tmpdir"
require "fileutils"
require "socket"
require "rbconfig"

REPO = File.expand_path("../..", __dir__)
LOCKED = ENV.fetch("PORTCULLIS_DEMO_LOCKDOWN", "on") != "off"
CLI = ENV.fetch("PORTCULLIS_CLI", File.join(REPO, "target", "release", "portcullis"))

def free_port(host) = TCPServer.open(host, 0) { |s| s.addr[1] }

# The ports are fixed before the server starts: its lockdown names them.
port = free_port("127.0.0.1")
ENV["PORTCULLIS_DEMO_UPSTREAM_PORT"] = upstream_port = free_port("127.0.0.2").to_s # the /fetch rows name it
require_relative "pki"
require_relative "app" # the routes' rows (Demo.calls); only the server starts their fixtures

if LOCKED && !File.executable?(CLI)
  abort "demo: #{CLI} is missing; `make demo` builds it (make cli), or set PORTCULLIS_CLI"
end

def call_app(port, pki, client, verb, path, body)
  http = Net::HTTP.new("127.0.0.1", port)
  http.use_ssl = true
  http.verify_mode = OpenSSL::SSL::VERIFY_PEER
  http.cert_store = OpenSSL::X509::Store.new.tap { |s| s.add_cert(pki.root[0]) }
  if client
    http.cert = client.cert
    http.key = client.key
  end
  http.open_timeout = http.read_timeout = 5
  request = Net::HTTPGenericRequest.new(verb, !body.nil?, true, path)
  if body
    request.body = body
    request["content-type"] = "application/octet-stream"
  end
  http.start { |h| h.request(request) }
end

# The lockdown of the server, written for this run (the ports are this run's).
def lockdown_toml(port, upstream_port)
  <<~TOML
    # The demo server's lockdown (examples/demo/run.rb writes it for each run).
    [lockdown.demo]
    preset = "ruby"      # /usr, the gem paths, this Ruby; the app read-only, its tmp/ and log/ writable
    app = "#{REPO}"
    exec = ["#{File.realpath('/bin/echo')}"]  # the /deploy template's program
    bind_tcp = [#{port}, #{upstream_port}]  # Puma, and the 127.0.0.2 upstream /fetch calls
    connect_tcp = ["demo"]  # the ports of [egress.demo]: the upstream's, no other
    egress = "demo"         # the connect supervisor judges every address by [egress.demo]

    [egress.demo]
    allow_cidrs = ["127.0.0.2/32"]  # the upstream; other loopback, private and metadata addresses stay refused
    ports = [#{upstream_port}]
  TOML
end

# Waits for the server's "serving" line; nil if it exited (or never said it) first.
def wait_serving(pid, log, seconds: 60)
  deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + seconds
  while Process.clock_gettime(Process::CLOCK_MONOTONIC) < deadline
    line = File.readlines(log).find { |l| l.start_with?("demo server: serving") }
    return line if line
    return nil if Process.waitpid(pid, Process::WNOHANG)

    sleep 0.05
  end
  nil
end

def stop_server(pid)
  Process.kill("TERM", pid)
  50.times do
    _, status = Process.waitpid2(pid, Process::WNOHANG)
    return status if status

    sleep 0.1
  end
  Process.kill("KILL", pid)
  Process.waitpid2(pid).last
end

pki = Demo::Pki.new
rows = []
failures = []
FileUtils.mkdir_p(File.join(REPO, "tmp"))
run_dir = Dir.mktmpdir("demo-", File.join(REPO, "tmp")) # beneath the app's tmp/: the server may write here
# What lies outside the sandbox: a directory beneath no lockdown path, a process (this
# one), a listening loopback port the lockdown does not name, an abstract UNIX socket.
outside_base = File.expand_path(Dir.tmpdir).start_with?("#{REPO}/") ? "/tmp" : Dir.tmpdir
outside = Dir.mktmpdir("portcullis-demo-outside", outside_base)
closed = TCPServer.new("127.0.0.1", 0)
abstract_name = "portcullis-demo-#{Process.pid}"
abstract = Socket.new(:UNIX, :STREAM)
abstract.bind(Socket.sockaddr_un("\0#{abstract_name}"))
abstract.listen(1)
server_log = File.join(run_dir, "server.log")
begin
  {
    "root.pem" => pki.root[0], "ops_ca.pem" => pki.ops_ca[0], "dev_ca.pem" => pki.dev_ca[0],
    "ops_crl.pem" => pki.ops_crl, "server.pem" => pki.server[0], "server.key" => pki.server[1]
  }.each { |name, object| File.write(File.join(run_dir, name), object.to_pem) }
  File.write(File.join(run_dir, "tls_ca.pem"), pki.tls_ca_pem)
  File.write(secret = File.join(outside, "secret.txt"), "outside the sandbox\n")
  File.write(toml = File.join(run_dir, "portcullis.toml"), lockdown_toml(port, upstream_port))
  Dir.mkdir(server_tmp = File.join(run_dir, "tmp"))

  server_rb = File.join(__dir__, "server.rb")
  ruby = [RbConfig.ruby, "-I#{File.join(REPO, 'lib')}", server_rb]
  command = LOCKED ? [CLI, "exec", "--config", toml, "--lockdown", "demo", "--", *ruby] : ruby
  env = {
    "PORTCULLIS_DEMO_DIR" => run_dir, "PORTCULLIS_DEMO_PORT" => port.to_s,
    "PORTCULLIS_DEMO_UPSTREAM_PORT" => upstream_port, "TMPDIR" => server_tmp,
    "OUTSIDE_FILE" => secret, "CLOSED_PORT" => closed.addr[1].to_s,
    "OUTSIDE_PID" => Process.pid.to_s, "ABSTRACT_NAME" => abstract_name
  }
  if LOCKED
    puts "Server: portcullis exec --config #{toml.delete_prefix("#{REPO}/")} --lockdown demo -- ruby examples/demo/server.rb"
    puts lockdown_toml(port, upstream_port).gsub(/^/, "  ")
  else
    puts "Server: ruby examples/demo/server.rb (PORTCULLIS_DEMO_LOCKDOWN=off: no lockdown, no escape rows)"
  end
  pid = Process.spawn(env, *command, in: File::NULL, out: server_log, err: %i[child out], chdir: REPO)
  serving = wait_serving(pid, server_log)
  unless serving
    warn "demo: the server did not start:\n#{File.read(server_log)}"
    Process.kill("KILL", pid) rescue nil # rubocop:disable Style/RescueModifier
    exit 1
  end
  File.readlines(server_log).grep(/^portcullis (lockdown|supervisor):/).each { |l| puts l }
  puts serving.sub(/; portcullis lockdown: .*/, "")
  puts
  begin
    Demo.calls.each do |c|
      client = c.client && pki.clients.fetch(c.client)
      label = client ? "#{c.client} (#{client.description})" : "(none)"
      begin
        response = call_app(port, pki, client, c.verb, c.path, c.body)
        outcome = if response.code.start_with?("2")
                    response.body.strip
                  else
                    response[Demo::REJECTION_HEADER] || response.body.strip
                  end
        status = response.code
      rescue OpenSSL::SSL::SSLError, EOFError, Errno::ECONNRESET => e
        status = "-"
        outcome = "TLS handshake refused by OpenSSL (#{e.class.name.split('::').last})"
      end
      as_expected = c.expected?(status, outcome)
      failures << "#{c.verb} #{c.path}" unless as_expected
      rows << [label, "#{c.verb} #{c.path}", status, outcome, c.note,
               as_expected ? "ok" : "UNEXPECTED (wanted #{c.status} #{c.outcome.inspect})"]
    end
  ensure
    exit_status = stop_server(pid)
  end
  failures << "the server exited with #{exit_status.inspect}" unless exit_status&.success?
  failures << "a file was written outside the sandbox" if File.exist?(File.join(outside, "evil"))
  log = File.read(server_log)
  failures << "the server did not remove its fixtures" unless log.include?("demo server: stopped, fixtures removed")
  # What the connect supervisor refused while the rows ran, and its summary.
  puts log.lines.grep(/^portcullis supervisor: (refused|.* ended)/).join
  puts
  warn "demo: server log:\n#{log}" unless failures.empty?
ensure
  [closed, abstract].each(&:close)
  FileUtils.remove_entry(outside)
  FileUtils.remove_entry(run_dir)
end

header = ["client", "request", "status", "identity or outcome", "note", "check"]
widths = header.each_index.map { |i| ([header] + rows).map { |r| r[i].to_s.size }.max }
line = ->(cols) { cols.each_with_index.map { |v, i| v.to_s.ljust(widths[i]) }.join(" | ").rstrip }
puts line.call(header)
puts widths.map { |w| "-" * w }.join("-+-")
rows.each { |r| puts line.call(r) }
puts
puts "Reasons are stable codes. The middleware's own 401/403 bodies say only \"unauthorized\" or"
puts "\"forbidden\"; the code shown is what on_reject received (the demo server copies it into a"
puts "response header). The demo endpoints print their own code."
puts "The escape rows ran inside the locked server: the kernel (Landlock, seccomp) and the connect" if LOCKED
puts "supervisor refused them, whichever Ruby code or C extension made the call." if LOCKED
puts "The server, the upstream and every certificate and file above were made for this run and are gone."
unless failures.empty?
  warn "demo: #{failures.size} problem(s): #{failures.join('; ')}"
  exit 1
end
puts "All #{rows.size} rows as expected."

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
require_relative "launcher"

LOCKED = ENV.fetch("PORTCULLIS_DEMO_LOCKDOWN", "on") != "off"

# The upstream's port is fixed before the rows are made (the /fetch rows name it) and
# before the server starts (its lockdown names it).
ENV["PORTCULLIS_DEMO_UPSTREAM_PORT"] = upstream_port = Demo::Launcher.free_port("127.0.0.2").to_s
require_relative "pki"
require_relative "app" # the routes' rows (Demo.calls); only the server starts their fixtures

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

pki = Demo::Pki.new
rows = []
failures = []
# What lies outside the sandbox: a directory beneath no lockdown path, a process (this
# one), a listening loopback port the lockdown does not name, an abstract UNIX socket.
outside_base = File.expand_path(Dir.tmpdir).start_with?("#{Demo::Launcher::REPO}/") ? "/tmp" : Dir.tmpdir
outside = Dir.mktmpdir("portcullis-demo-outside", outside_base)
File.write(secret = File.join(outside, "secret.txt"), "outside the sandbox\n")
closed = TCPServer.new("127.0.0.1", 0)
abstract_name = "portcullis-demo-#{Process.pid}"
abstract = Socket.new(:UNIX, :STREAM)
abstract.bind(Socket.sockaddr_un("\0#{abstract_name}"))
abstract.listen(1)
begin # the ensure below removes the outside fixtures whatever happens (abort included)
  begin
    server = Demo::Launcher.new(pki, locked: LOCKED, upstream_port: upstream_port,
                                     env: { "OUTSIDE_FILE" => secret, "CLOSED_PORT" => closed.addr[1].to_s,
                                            "OUTSIDE_PID" => Process.pid.to_s, "ABSTRACT_NAME" => abstract_name })
  rescue ArgumentError => e
    abort "demo: #{e.message} (or PORTCULLIS_DEMO_LOCKDOWN=off to run it without the lockdown)"
  end
  puts "Server: #{server.describe}"
  puts LOCKED ? server.toml.gsub(/^/, "  ") : "  PORTCULLIS_DEMO_LOCKDOWN=off: no lockdown, so no escape rows"
  begin
    serving = server.start
  rescue RuntimeError => e
    abort "demo: #{e.message}"
  end
  server.log_text.lines.grep(/^portcullis (lockdown|supervisor):/).each { |l| puts l }
  puts serving.sub(/; portcullis lockdown: .*/, "")
  puts
  begin
    Demo.calls.each do |c|
      client = c.client && pki.clients.fetch(c.client)
      label = client ? "#{c.client} (#{client.description})" : "(none)"
      begin
        response = call_app(server.port, pki, client, c.verb, c.path, c.body)
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
    exit_status = server.stop
  end
  failures << "the server exited with #{exit_status.inspect}" unless exit_status&.success?
  failures << "a file was written outside the sandbox" if File.exist?(File.join(outside, "evil"))
  log = server.log_text
  failures << "the server did not remove its fixtures" unless log.include?("demo server: stopped, fixtures removed")
  # What the connect supervisor refused while the rows ran, and its summary.
  puts log.lines.grep(/^portcullis supervisor: (refused|.* ended)/).join
  puts
  warn "demo: server log:\n#{log}" unless failures.empty?
ensure
  [closed, abstract].each(&:close)
  FileUtils.remove_entry(outside)
  server&.cleanup
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

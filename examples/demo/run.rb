# frozen_string_literal: true

# `make demo`: mint a throwaway PKI, start Puma with mutual TLS on 127.0.0.1, mount
# Portcullis::Rack::ClientCert in front of the demo app, call it as each client with
# Net::HTTP, print what happened, and shut Puma down. Each row says what it must show; the
# run exits 1 when any row shows something else.
require "openssl" # before Puma, so env["puma.peercert"] exists
require "net/http"
require "tmpdir"
require "stringio"
require "puma"
require "puma/server"
require_relative "pki"
require_relative "app"
require_relative "../../spec/support/puma_mtls" # one Puma 5.6 / 6.x server builder for the specs and the demo

pki = Demo::Pki.new
trust_store = Portcullis::TrustStore.new(
  ca: pki.root[0].to_pem,
  intermediates: [pki.ops_ca[0].to_pem, pki.dev_ca[0].to_pem],
  crls: [pki.ops_crl.to_pem]
)
policy = Portcullis::AccessPolicy.new(rules: Demo::POLICY_RULES)
rejections = Queue.new
app = Demo.app(trust_store: trust_store, policy: policy, on_reject: ->(rejection, _env) { rejections << rejection })

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

rows = []
failures = 0
Dir.mktmpdir("portcullis-demo") do |dir|
  File.write(key = File.join(dir, "server.key"), pki.server[1].to_pem)
  File.write(cert = File.join(dir, "server.pem"), pki.server[0].to_pem)
  File.write(ca = File.join(dir, "ca.pem"), pki.tls_ca_pem)
  server = PumaMtls.server(app, "ssl://127.0.0.1:0?key=#{key}&cert=#{cert}&ca=#{ca}&verify_mode=peer")
  port = server.connected_ports.first
  thread = server.run
  puts "Puma listening on https://127.0.0.1:#{port} (mTLS, verify_mode=peer)"
  puts
  begin
    Demo.calls.each do |c|
      client = c.client && pki.clients.fetch(c.client)
      rejections.clear
      label = client ? "#{c.client} (#{client.description})" : "(none)"
      begin
        response = call_app(port, pki, client, c.verb, c.path, c.body)
        outcome = if response.code.start_with?("2")
                    response.body.strip
                  else
                    r = rejections.empty? ? nil : rejections.pop
                    r ? r.code : response.body.strip
                  end
        status = response.code
      rescue OpenSSL::SSL::SSLError, EOFError, Errno::ECONNRESET => e
        status = "-"
        outcome = "TLS handshake refused by OpenSSL (#{e.class.name.split('::').last})"
      end
      as_expected = c.expected?(status, outcome)
      failures += 1 unless as_expected
      rows << [label, "#{c.verb} #{c.path}", status, outcome, c.note,
               as_expected ? "ok" : "UNEXPECTED (wanted #{c.status} #{c.outcome.inspect})"]
    end
  ensure
    server.stop(true)
    thread.join(5)
    Demo.stop!
  end
end

header = ["client", "request", "status", "identity or outcome", "note", "check"]
widths = header.each_index.map { |i| ([header] + rows).map { |r| r[i].to_s.size }.max }
line = ->(cols) { cols.each_with_index.map { |v, i| v.to_s.ljust(widths[i]) }.join(" | ").rstrip }
puts line.call(header)
puts widths.map { |w| "-" * w }.join("-+-")
rows.each { |r| puts line.call(r) }
puts
puts "Reasons are stable codes. The middleware's own 401/403 bodies say only \"unauthorized\" or"
puts "\"forbidden\" (the code shown comes from on_reject); the demo endpoints print their code."
puts "Puma and the upstream stopped. Every certificate and file above was made for this run and is gone."
if failures.positive?
  warn "demo: #{failures} of #{rows.size} rows did not show the expected outcome"
  exit 1
end
puts "All #{rows.size} rows as expected."

# frozen_string_literal: true

require "openssl"
require "net/http"
require "tmpdir"

# Starts Puma in-process with mutual TLS on 127.0.0.1 (ephemeral port).
module PumaMtls
  module_function

  # Yields the port; `ca_certs` are what Puma (OpenSSL) trusts for client certificates.
  def serve(app, server_cert:, server_key:, ca_certs:)
    require "puma"
    require "puma/server"
    Dir.mktmpdir("portcullis-puma") do |dir|
      File.write(key = File.join(dir, "server.key"), server_key.to_pem)
      File.write(cert = File.join(dir, "server.pem"), server_cert.to_pem)
      File.write(ca = File.join(dir, "ca.pem"), ca_certs.map(&:to_pem).join)
      server = server(app, "ssl://127.0.0.1:0?key=#{key}&cert=#{cert}&ca=#{ca}&verify_mode=peer")
      port = server.connected_ports.first
      thread = server.run
      begin
        yield port
      ensure
        server.stop(true)
        thread.join(5)
      end
    end
  end

  # A quiet in-process Puma::Server bound to `bind`: Puma 5.6 (Debian 12) takes an Events
  # that logs; Puma 6 (Debian 13) split logging into a LogWriter.
  def server(app, bind)
    require "puma"
    require "puma/server"
    if defined?(Puma::LogWriter)
      log_writer = Puma::LogWriter.new(StringIO.new, StringIO.new)
      server = Puma::Server.new(app, Puma::Events.new, log_writer: log_writer, min_threads: 1, max_threads: 4)
      server.binder.parse([bind], log_writer)
    else
      events = Puma::Events.new(StringIO.new, StringIO.new)
      server = Puma::Server.new(app, events, min_threads: 1, max_threads: 4)
      server.binder.parse([bind], events)
    end
    server
  end

  # GET https://127.0.0.1:port/path presenting `cert`/`key` (or no client certificate).
  def get(port, path, ca:, cert: nil, key: nil, extra_chain: nil)
    http = Net::HTTP.new("127.0.0.1", port)
    http.use_ssl = true
    http.verify_mode = OpenSSL::SSL::VERIFY_PEER
    http.cert_store = OpenSSL::X509::Store.new.tap { |s| s.add_cert(ca) }
    http.cert = cert
    http.key = key
    http.extra_chain_cert = extra_chain if extra_chain
    http.open_timeout = 5
    http.read_timeout = 5
    http.start { |h| h.request(Net::HTTP::Get.new(path)) }
  end
end

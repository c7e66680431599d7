# frozen_string_literal: true

require "erb"
require "rack"
require "socket"
require "stringio"

# The README's config.ru pattern over a real server: Puma hands the body over as a StringIO,
# or as a Tempfile (Puma 6: a File) past 112 KiB; the middleware reads `_method` from it and the app behind
# Rack::MethodOverride still gets the whole form. Plain HTTP on loopback; the client
# certificate arrives as an nginx header from a trusted proxy (127.0.0.1).
RSpec.describe "Method override through Puma" do
  let(:world) { MtlsClients.world }
  let(:good) { world[:good][0] } # holds status:read only
  let(:app) do
    echo = lambda do |env|
      form = Rack::Request.new(env).POST
      [200, { "content-type" => "text/plain" }, ["#{env['REQUEST_METHOD']} #{form.keys.join(',')} #{form['pad'].to_s.bytesize} #{env['rack.input'].class}"]]
    end
    Portcullis::Rack::ClientCert.new(Rack::MethodOverride.new(echo),
                                     trust_store: MtlsClients.trust_store, policy: MtlsClients.policy,
                                     source: :nginx, trusted_proxies: ["127.0.0.1/32"],
                                     require: { "DELETE /users" => "containers:deploy", "PATCH /users" => "status:read" })
  end

  def serve(&block)
    PumaMtls.serve_plain(app, &block)
  end

  # [status line, body]
  def post(port, form)
    cert = ERB::Util.url_encode(good.to_pem)
    TCPSocket.open("127.0.0.1", port) do |s|
      s.write("POST /users/7 HTTP/1.1\r\nHost: app\r\nConnection: close\r\nX-SSL-Client-Cert: #{cert}\r\n" \
              "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: #{form.bytesize}\r\n\r\n#{form}")
      head, body = s.read.split("\r\n\r\n", 2)
      [head.lines.first.strip, body]
    end
  end

  it "judges the override and leaves the form to the app, for small and Tempfile-sized bodies" do
    serve do |port|
      [10, 200 * 1024].each do |pad|
        status, body = post(port, "_method=patch&pad=#{'y' * pad}")
        expect(status).to eq("HTTP/1.1 200 OK")
        # Puma 5.6 buffers a large body in a Tempfile, Puma 6 in a plain (unlinked) File
        expect(body).to match(/\APATCH _method,pad #{pad} #{pad > 1024 ? '(Tempfile|File)' : 'StringIO'}\z/)
        status, = post(port, "pad=#{'y' * pad}&_method=delete")
        expect(status).to eq("HTTP/1.1 403 Forbidden")
      end
    end
  end
end

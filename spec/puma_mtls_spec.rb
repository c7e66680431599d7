# frozen_string_literal: true

require "openssl"
require "net/http"

RSpec.describe "Portcullis::Rack::ClientCert behind Puma with mutual TLS" do
  let(:world) { MtlsClients.world }
  let(:root) { world[:root] }
  let(:server) { world[:server] }
  let(:trust_store) { MtlsClients.trust_store }
  let(:policy) { MtlsClients.policy }
  let(:app) do
    inner = lambda do |env|
      id = env["portcullis.identity"]
      [200, { "content-type" => "text/plain" }, ["#{id.spiffe_id || id.subject} #{env['portcullis.permissions'].join(',')}"]]
    end
    Portcullis::Rack::ClientCert.new(inner, trust_store: trust_store, policy: policy,
                                            require: { "/deploy" => "containers:deploy" })
  end

  def call_as(port, client, path = "/")
    cert, key = client
    PumaMtls.get(port, path, ca: root[0], cert: cert, key: key)
  end

  it "identifies and authorizes real TLS clients" do
    PumaMtls.serve(app, server_cert: server[0], server_key: server[1],
                        ca_certs: [root[0], world[:intermediate][0]]) do |port|
      response = call_as(port, world[:spiffe], "/deploy")
      expect([response.code, response.body]).to eq(["200", "spiffe://example.org/ops/deployer containers:deploy,status:read"])

      response = call_as(port, world[:good], "/deploy")
      expect([response.code, response.body]).to eq(["403", "forbidden\n"])

      response = call_as(port, world[:good], "/")
      expect(response.code).to eq("200")

      # No client certificate: Puma (verify_mode=peer) lets the handshake through, we do not.
      response = PumaMtls.get(port, "/", ca: root[0])
      expect([response.code, response.body]).to eq(["401", "unauthorized\n"])

      # A certificate from a CA Puma does not know never reaches the app.
      # (TLS 1.3 reports the server's alert on the client's first read: SSLError or a reset.)
      expect { call_as(port, world[:stranger]) }
        .to raise_error { |e| expect(e).to be_a(OpenSSL::SSL::SSLError).or be_a(EOFError).or be_a(Errno::ECONNRESET) }
    end
  end
end

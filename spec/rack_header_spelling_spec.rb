# frozen_string_literal: true

require "erb"
require "openssl"
require "socket"
require "stringio"

# What the README's "What the proxy must do" rests on, measured against the Puma this suite
# runs: Puma gives `X_Forwarded_Client_Cert:` (underscores) the env key of the dashed header,
# so the middleware cannot tell the two apart; only the proxy can refuse the spelling. When
# both arrive, the dashed one (the proxy's) wins.
RSpec.describe "Forwarded certificate headers spelled with underscores, through Puma" do
  let(:world) { MtlsClients.world }
  let(:spiffe) { world[:spiffe][0] }
  let(:stranger) { world[:stranger][0] }
  let(:app) do
    inner = ->(env) { [200, { "content-type" => "text/plain" }, ["hello #{env['portcullis.identity'].spiffe_id}"]] }
    Portcullis::Rack::ClientCert.new(inner, trust_store: MtlsClients.trust_store, policy: MtlsClients.policy,
                                            source: :envoy, trusted_proxies: ["127.0.0.1/32"])
  end

  def xfcc(cert)
    %(By=spiffe://example.org/proxy;Hash=#{OpenSSL::Digest::SHA256.hexdigest(cert.to_der)};) +
      %(Cert="#{ERB::Util.url_encode(cert.to_pem)}")
  end

  # Plain HTTP on loopback (the proxy hop); returns the status line.
  def request(port, headers)
    TCPSocket.open("127.0.0.1", port) do |s|
      s.write("GET / HTTP/1.1\r\nHost: app\r\nConnection: close\r\n#{headers.map { |k, v| "#{k}: #{v}\r\n" }.join}\r\n")
      s.read.lines.first.to_s.strip
    end
  end

  def serve(&block)
    PumaMtls.serve_plain(app, &block)
  end

  it "reaches the middleware as the dashed header when only the underscore spelling is sent" do
    serve do |port|
      expect(request(port, "X_Forwarded_Client_Cert" => xfcc(spiffe))).to eq("HTTP/1.1 200 OK")
      expect(request(port, {})).to eq("HTTP/1.1 401 Unauthorized")
    end
  end

  it "lets the dashed header win when both arrive" do
    serve do |port|
      status = request(port, "X-Forwarded-Client-Cert" => xfcc(stranger), "X_Forwarded_Client_Cert" => xfcc(spiffe))
      expect(status).to eq("HTTP/1.1 401 Unauthorized")
      status = request(port, "X_Forwarded_Client_Cert" => xfcc(stranger), "X-Forwarded-Client-Cert" => xfcc(spiffe))
      expect(status).to eq("HTTP/1.1 200 OK")
    end
  end
end

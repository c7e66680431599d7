# frozen_string_literal: true

require "spec_helper"
require "socket"

# CRLs from a distribution point on 127.0.0.1, fetched through an EgressPolicy.
RSpec.describe "Portcullis::TrustStore crl_urls:" do
  let(:root) { TestPKI::CA.root }
  let(:inter) { root.intermediate("CRL URL Intermediate") }
  let(:leaf) { inter.issue(cn: "crl-url-client") }

  # Serves whatever @body holds (at most 20 requests), then stops.
  def serve
    server = TCPServer.new("127.0.0.1", 0)
    @hits = 0
    @thread = Thread.new do
      20.times do
        client = server.accept
        client.readpartial(4096)
        @hits += 1
        body = @body
        if body.nil?
          client.write("HTTP/1.1 503 Down\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        else
          client.write("HTTP/1.1 200 OK\r\nContent-Length: #{body.bytesize}\r\nConnection: close\r\n\r\n#{body}")
        end
        client.close
      rescue IOError, SystemCallError
        break
      end
    end
    @server = server
    server.addr[1]
  end

  after do
    @server&.close
    @thread&.kill
  end

  def policy(port)
    Portcullis::EgressPolicy.new(schemes: ["http"], ports: [port], allow_cidrs: ["127.0.0.0/8"])
  end

  it "fetches, rotates to a CRL that revokes, and keeps the last good CRL when the server is down" do
    @body = inter.crl(revoked: []).to_der
    port = serve
    url = "http://127.0.0.1:#{port}/inter.crl"
    store = Portcullis::TrustStore.new(ca: root.pem, intermediates: [inter.pem], crl_urls: [url],
                                       crl_egress: policy(port), crl_refresh: false)
    expect(store.crl_urls).to eq([url])
    expect(store.crl_refresher?).to be(false)
    expect(store.verify(leaf.cert).common_name).to eq("crl-url-client")

    @body = inter.crl(revoked: [leaf], number: 2).to_der
    events = store.refresh_crls
    expect(events.first[:error]).to be_nil
    expect(events.first[:message]).to include("ok")
    expect { store.verify(leaf.cert) }.to raise_error(Portcullis::CertificateError) { |e| expect(e.code).to eq("cert.revoked") }

    @body = nil
    events = store.refresh_crls
    expect(events.first[:error]).to include("HTTP status 503")
    expect(events.first[:kept_previous]).to be(true)
    expect { store.verify(leaf.cert) }.to raise_error(Portcullis::CertificateError) { |e| expect(e.code).to eq("cert.revoked") }
    expect(store.crl_refresh_log.size).to eq(3)
  end

  it "refuses URLs without an egress policy, or one that does not allow them" do
    expect { Portcullis::TrustStore.new(ca: root.pem, crl_urls: ["http://127.0.0.1:9/x.crl"]) }
      .to raise_error(Portcullis::CertificateError, /egress policy/)
    expect do
      Portcullis::TrustStore.new(ca: root.pem, crl_urls: ["http://127.0.0.1:9/x.crl"],
                                 crl_egress: Portcullis::EgressPolicy.new(schemes: ["http"], ports: [9]))
    end.to raise_error(Portcullis::CertificateError, /refused by the CRL egress policy/)
    expect { Portcullis::TrustStore.new(ca: root.pem, crl_urls: ["http://x/"], crl_egress: "no") }
      .to raise_error(TypeError)
  end
end

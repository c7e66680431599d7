# frozen_string_literal: true

require "rack"
require "rack/lint"
require "rack/test"
require "erb"
require "logger"
require "stringio"

RSpec.describe Portcullis::Rack::ClientCert do
  include Rack::Test::Methods

  let(:world) { MtlsClients.world }
  let(:good) { world[:good][0] }
  let(:spiffe) { world[:spiffe][0] }
  let(:stranger) { world[:stranger][0] }
  let(:inner) do
    lambda do |env|
      id = env["portcullis.identity"]
      body = id ? "hello #{id.spiffe_id || id.subject} #{env['portcullis.permissions'].join(',')}" : "anonymous"
      [200, { "content-type" => "text/plain" }, [body]]
    end
  end
  let(:trust_store) { MtlsClients.trust_store }
  let(:policy) { MtlsClients.policy }
  let(:rejections) { [] }
  let(:options) { {} }

  def app
    opts = { trust_store: trust_store, policy: policy, on_reject: ->(r, _env) { rejections << r } }.merge(options)
    Rack::Lint.new(described_class.new(Rack::Lint.new(inner), **opts))
  end

  def peer(cert, env = {})
    { "puma.peercert" => cert }.merge(env)
  end

  shared_examples "the door" do
    it "passes a verified client with its identity and permissions" do
      get "/", {}, peer(spiffe)
      expect(last_response.status).to eq(200)
      expect(last_response.body).to eq("hello spiffe://example.org/ops/deployer containers:deploy,status:read")
    end

    it "answers 401 without a certificate and tells only on_reject why" do
      get "/"
      expect(last_response.status).to eq(401)
      expect(last_response.headers["content-type"]).to eq("text/plain")
      expect(last_response.body).to eq("unauthorized\n")
      expect(rejections.map(&:code)).to eq(["cert.missing"])
    end

    it "answers 401 for a certificate from an untrusted issuer, without internal detail" do
      get "/", {}, peer(stranger)
      expect(last_response.status).to eq(401)
      expect(last_response.body).to eq("unauthorized\n")
      expect(rejections.first.code).to start_with("cert.")
      expect(rejections.first.status).to eq(401)
    end

    it "logs the reason to rack.logger" do
      log = StringIO.new
      get "/", {}, { "rack.logger" => Logger.new(log) }
      expect(log.string).to include("portcullis: 401 cert.missing")
    end

    context "with per-path requirements" do
      let(:options) { { require: { "/admin" => "admin", "POST /deploy" => "containers:deploy" } } }

      it "answers 403 when the identity lacks the permission" do
        get "/admin/users", {}, peer(spiffe)
        expect(last_response.status).to eq(403)
        expect(last_response.body).to eq("forbidden\n")
        expect(rejections.map(&:code)).to eq(["authz.forbidden"])
      end

      it "is not fooled by path spellings a router would fold" do
        ["//admin", "/./admin", "/x/../admin", "/%61dmin", "/ADMIN", "/admin;x", "/admin/", "/foo/..%2Fadmin",
         "/admin\\x", "/x/..\\admin"].each do |path|
          env = Rack::MockRequest.env_for("/").merge("PATH_INFO" => path, "puma.peercert" => spiffe)
          expect(app.call(env)[0]).to eq(403), path
        end
        get "/administrator", {}, peer(spiffe)
        expect(last_response.status).to eq(200)
      end

      it "applies method-specific entries (HEAD counts as GET)" do
        post "/deploy", {}, peer(good)
        expect(last_response.status).to eq(403)
        post "/deploy/x", {}, peer(spiffe)
        expect(last_response.status).to eq(200)
        get "/deploy", {}, peer(good)
        expect(last_response.status).to eq(200)
      end
    end

    context "with skip" do
      let(:options) { { skip: ["/up", %r{\A/assets/}] } }

      it "lets health checks through without a certificate" do
        get "/up"
        expect(last_response.status).to eq(200)
        expect(last_response.body).to eq("anonymous")
        get "/assets/app.css"
        expect(last_response.status).to eq(200)
      end

      it "does not skip look-alike or non-canonical paths" do
        ["/upload", "/up/../admin", "/up/%2e%2e/admin", "//up", "/up;x", "/UP", "/up/..", "/up\\..\\admin"].each do |path|
          env = Rack::MockRequest.env_for("/").merge("PATH_INFO" => path)
          expect(app.call(env)[0]).to eq(401), path
        end
      end
    end

    context "behind Envoy" do
      let(:options) { { source: :envoy, trusted_proxies: ["10.0.0.0/8"] } }

      def xfcc(cert, hash: OpenSSL::Digest::SHA256.hexdigest(cert.to_der))
        %(By=spiffe://example.org/app;Hash=#{hash};Cert="#{ERB::Util.url_encode(cert.to_pem)}")
      end

      it "uses the nearest element and rejects a Hash that does not match" do
        get "/", {}, { "HTTP_X_FORWARDED_CLIENT_CERT" => "#{xfcc(stranger)},#{xfcc(spiffe)}", "REMOTE_ADDR" => "10.0.0.9" }
        expect(last_response.status).to eq(200)
        get "/", {}, { "HTTP_X_FORWARDED_CLIENT_CERT" => xfcc(spiffe, hash: "00" * 32), "REMOTE_ADDR" => "10.0.0.9" }
        expect(last_response.status).to eq(401)
        expect(rejections.map(&:code)).to eq(["cert.xfcc_hash_mismatch"])
      end
    end

    context "behind a proxy" do
      let(:options) { { source: :nginx, trusted_proxies: ["10.0.0.0/8"] } }
      let(:header) { ERB::Util.url_encode(spiffe.to_pem) }

      it "takes IPAddr ranges with their prefix" do
        mw = described_class.new(inner, trust_store: trust_store, source: :nginx, trusted_proxies: [IPAddr.new("10.0.0.0/8")])
        env = Rack::MockRequest.env_for("/", "HTTP_X_SSL_CLIENT_CERT" => header, "REMOTE_ADDR" => "10.200.0.1")
        expect(mw.call(env)[0]).to eq(200)
      end

      it "accepts the forwarded certificate from a trusted proxy" do
        get "/", {}, { "HTTP_X_SSL_CLIENT_CERT" => header, "REMOTE_ADDR" => "10.1.2.3" }
        expect(last_response.status).to eq(200)
      end

      it "refuses the header from anyone else with 403, whatever X-Forwarded-For says" do
        get "/", {}, { "HTTP_X_SSL_CLIENT_CERT" => header, "REMOTE_ADDR" => "203.0.113.7",
                       "HTTP_X_FORWARDED_FOR" => "10.1.2.3" }
        expect(last_response.status).to eq(403)
        expect(rejections.map(&:code)).to eq(["cert.untrusted_proxy"])
      end

      it "ignores Puma's peer certificate when a proxy source is configured" do
        get "/", {}, peer(spiffe, "REMOTE_ADDR" => "10.1.2.3")
        expect(last_response.status).to eq(401)
      end

      it "still verifies what a trusted proxy forwards: a header proves nothing by itself" do
        forged = ERB::Util.url_encode(stranger.to_pem)
        get "/", {}, { "HTTP_X_SSL_CLIENT_CERT" => forged, "REMOTE_ADDR" => "10.1.2.3" }
        expect(last_response.status).to eq(401)
        expect(rejections.map(&:code)).to eq(["cert.unknown_issuer"])
      end

      it "answers 401 for a garbled header from the trusted proxy" do
        get "/", {}, { "HTTP_X_SSL_CLIENT_CERT" => "%ZZ", "REMOTE_ADDR" => "10.1.2.3" }
        expect(last_response.status).to eq(401)
        expect(rejections.map(&:code)).to eq(["cert.bad_encoding"])
      end
    end

    it "reads WEBrick-style SSL_CLIENT_CERT when there is no Puma peer certificate" do
      get "/", {}, { "SSL_CLIENT_CERT" => spiffe.to_pem }
      expect(last_response.status).to eq(200)
    end
  end

  it "does not turn the app's own CertificateError into a 401" do
    failing = ->(_env) { raise Portcullis::CertificateError.new("app bug", code: "cert.expired") }
    mw = described_class.new(failing, trust_store: trust_store, policy: policy)
    expect { mw.call(Rack::MockRequest.env_for("/", "puma.peercert" => spiffe)) }.to raise_error(Portcullis::CertificateError, "app bug")
  end

  describe "configuration errors" do
    it "refuses bad options at boot" do
      store = Object.new
      expect { described_class.new(inner, trust_store: store, source: :apache) }.to raise_error(ArgumentError)
      expect { described_class.new(inner, trust_store: store, source: :envoy) }.to raise_error(Portcullis::CertificateError)
      expect { described_class.new(inner, trust_store: store, require: { "/a" => "x" }) }.to raise_error(ArgumentError, /policy/)
      expect { described_class.new(inner, trust_store: store, policy: Object.new, require: { "a" => "x" }) }
        .to raise_error(Portcullis::ConfigError) { |e| expect(e.code).to eq("authz.bad_route") }
      expect { described_class.new(inner, trust_store: store, policy: Object.new, require: { "/a" => "two words" }) }
        .to raise_error(Portcullis::ConfigError) { |e| expect(e.code).to eq("authz.bad_permission") }
      expect { described_class.new(inner, trust_store: store, policy: Object.new, require: [["/a", "x"]]) }
        .to raise_error(TypeError)
      expect { described_class.new(inner, trust_store: store, skip: ["up"]) }
        .to raise_error(Portcullis::ConfigError) { |e| expect(e.code).to eq("authz.bad_route") }
      expect { described_class.new(inner, trust_store: store, skip: [:up]) }.to raise_error(ArgumentError)
    end
  end

  include_examples "the door"
end

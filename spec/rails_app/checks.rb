# frozen_string_literal: true

# Run by spec/rails_spec.rb in its own Ruby process: booting Rails loads ActiveSupport's
# core extensions (String#to_time, …), which must not leak into the other specs.
require_relative "../spec_helper"
require "logger"
require "rails"
require "action_controller/railtie"
require "rack/test"
require "portcullis/railtie"

# A minimal Rails 6.1 app, booted once for this file.
module PortcullisRailsSpec
  WORLD = MtlsClients.world
  REJECTIONS = []

  class App < ::Rails::Application
    config.root = __dir__
    config.eager_load = false
    config.logger = Logger.new(nil)
    config.secret_key_base = "portcullis" * 8
    config.hosts.clear
    config.portcullis.trust_store = MtlsClients.trust_store
    config.portcullis.policy = MtlsClients.policy
    config.portcullis.require = { "/admin" => "admin" }
    config.portcullis.skip = ["/up"]
    config.portcullis.on_reject = ->(rejection, _env) { REJECTIONS << rejection.code }
  end

  class ClientsController < ActionController::Base
    include Portcullis::Rails::ClientIdentity

    def show
      render plain: "#{client_identity.spiffe_id || client_identity.subject} #{client_permissions.join(',')}"
    end

    def deploy
      authorize_client!("containers:deploy")
      render plain: "deploying"
    end

    def up
      render plain: client_identity.nil? ? "up" : "identified"
    end

    def up_deploy
      authorize_client!("containers:deploy")
      render plain: "deploying"
    end

    def admin
      render plain: "admin"
    end
  end

  App.initialize!
  App.routes.draw do
    get "/whoami" => "portcullis_rails_spec/clients#show"
    post "/deploy" => "portcullis_rails_spec/clients#deploy"
    get "/up" => "portcullis_rails_spec/clients#up"
    post "/up/deploy" => "portcullis_rails_spec/clients#up_deploy"
    get "/admin" => "portcullis_rails_spec/clients#admin"
  end
end

RSpec.describe Portcullis::Railtie do
  include Rack::Test::Methods

  let(:world) { PortcullisRailsSpec::WORLD }

  def app
    PortcullisRailsSpec::App
  end

  before { PortcullisRailsSpec::REJECTIONS.clear }

  it "inserts the middleware from config.portcullis" do
    expect(app.middleware.map(&:klass)).to include(Portcullis::Rack::ClientCert)
  end

  it "gives controllers the client identity and permissions" do
    get "/whoami", {}, { "puma.peercert" => world[:spiffe][0] }
    expect(last_response.status).to eq(200)
    expect(last_response.body).to eq("spiffe://example.org/ops/deployer containers:deploy,status:read")
  end

  it "rejects requests without a certificate before they reach the controller" do
    get "/whoami"
    expect(last_response.status).to eq(401)
    expect(last_response.body).to eq("unauthorized\n")
    expect(PortcullisRailsSpec::REJECTIONS).to eq(["cert.missing"])
  end

  it "authorize_client! answers 403 when the policy does not grant the permission" do
    post "/deploy", {}, { "puma.peercert" => world[:good][0] }
    expect(last_response.status).to eq(403)
    expect(last_response.body).to eq("forbidden\n")
    post "/deploy", {}, { "puma.peercert" => world[:spiffe][0] }
    expect(last_response.status).to eq(200)
  end

  it "enforces config.portcullis.require and skip" do
    get "/admin", {}, { "puma.peercert" => world[:spiffe][0] }
    expect(last_response.status).to eq(403)
    expect(PortcullisRailsSpec::REJECTIONS).to eq(["authz.forbidden"])
    get "/up"
    expect(last_response.body).to eq("up")
  end

  it "authorize_client! refuses when the middleware skipped the request (no identity)" do
    post "/up/deploy"
    # authz.no_identity: 401, as the Hanami helper answers it (the core's one table)
    expect(last_response.status).to eq(401)
    expect(last_response.body).to eq("unauthorized\n")
  end
end

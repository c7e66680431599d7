# frozen_string_literal: true

require "logger"
require "stringio"

require "rack"
require "rack/lint"
require "rack/test"

# Hanami is not packaged for Debian; these actions follow Hanami's halt protocol
# (`throw :halt, [status, body]`, caught by Hanami::Action#call) on plain Rack.
module HanamiLike
  Request = Struct.new(:env)
  Response = Struct.new(:status, :body)

  class Action
    def call(env)
      response = Response.new(200, "")
      halted = catch(:halt) do
        handle(Request.new(env), response)
        nil
      end
      status, body = halted || [response.status, response.body]
      [status, { "content-type" => "text/plain" }, [body]]
    end
  end

  # Hanami 2 style: handle(request, response), no #halt of its own.
  class Deploy < Action
    include Portcullis::Hanami::Action

    def handle(request, response)
      identity = authorize_client!(request, "containers:deploy")
      response.body = "deploying as #{identity.spiffe_id} (#{client_permissions(request).join(',')})"
    end
  end

  # Hanami 1 style: #request on the action, and Hanami's own #halt.
  class Status < Action
    include Portcullis::Hanami::Action
    attr_reader :request, :halts

    def handle(request, response)
      @request = request
      authorize_client!("status:read")
      response.body = "status for #{client_identity.subject}"
    end

    def halt(status, body)
      (@halts ||= []) << status
      throw :halt, [status, body]
    end
  end
end

RSpec.describe Portcullis::Hanami::Action do
  include Rack::Test::Methods

  let(:world) { MtlsClients.world }
  let(:trust_store) { MtlsClients.trust_store }
  let(:policy) { MtlsClients.policy }

  def app
    store = trust_store
    pol = policy
    Rack::Lint.new(Rack::Builder.new do
      use Portcullis::Rack::ClientCert, trust_store: store, policy: pol, skip: ["/open"]
      map("/deploy") { run Rack::Lint.new(HanamiLike::Deploy.new) }
      map("/status") { run Rack::Lint.new(HanamiLike::Status.new) }
      map("/open") { run Rack::Lint.new(HanamiLike::Deploy.new) }
    end.to_app)
  end

  it "hands the identity to an action that is granted the permission" do
    get "/deploy", {}, { "puma.peercert" => world[:spiffe][0] }
    expect(last_response.status).to eq(200)
    expect(last_response.body).to eq("deploying as spiffe://example.org/ops/deployer (containers:deploy,status:read)")
  end

  it "halts with 403 when the permission is not granted" do
    get "/deploy", {}, { "puma.peercert" => world[:good][0] }
    expect(last_response.status).to eq(403)
    expect(last_response.body).to eq("forbidden\n")
  end

  it "halts with 401 when the middleware did not verify anyone (skipped path)" do
    get "/open"
    expect(last_response.status).to eq(401)
  end

  it "works with Hanami 1 style actions and their own #halt" do
    get "/status", {}, { "puma.peercert" => world[:good][0] }
    expect(last_response.status).to eq(200)
    expect(last_response.body).to start_with("status for ")
    action = HanamiLike::Status.new
    # Called with no middleware in front at all: a deployment mistake (authz.no_middleware), 403.
    status, = action.call(Rack::MockRequest.env_for("/status"))
    expect([status, action.halts]).to eq([403, [403]])
    logged = StringIO.new
    action = HanamiLike::Status.new
    action.call(Rack::MockRequest.env_for("/status", "rack.logger" => Logger.new(logged)))
    expect(logged.string).to include("authz.no_middleware")
    # Behind the middleware but skipped: no identity, 401.
    status, = HanamiLike::Status.new.call(Rack::MockRequest.env_for("/status", "portcullis.checked" => true))
    expect(status).to eq(401)
  end
end

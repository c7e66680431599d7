# frozen_string_literal: true

require "rack"
require "portcullis"

# The demo app: a tiny router behind Portcullis::Rack::ClientCert.
#
# Endpoints and the demo's table rows are registered, so later capabilities add theirs in
# their own file under examples/demo/routes/ without touching this one:
#
#   Demo.route "GET", "/fetch", permission: "egress:fetch" do |request, identity|
#     [200, "fetched #{request.params['url']}"]
#   end
#   Demo.call :workload, "GET", "/fetch?url=http://169.254.169.254/", note: "metadata SSRF"
module Demo
  Route = Struct.new(:verb, :path, :permission, :handler)
  Call = Struct.new(:client, :verb, :path, :body, :note)

  @routes = []
  @calls = []

  class << self
    attr_reader :routes, :calls

    # Registers an endpoint; the handler gets (Rack::Request, Portcullis::Identity) and
    # returns [status, body].
    def route(verb, path, permission: nil, &handler)
      @routes << Route.new(verb.upcase, path, permission, handler)
    end

    # Registers a row of the demo table: `client` (a Demo::Pki client name, or nil for no
    # certificate) calls `verb path`.
    def call(client, verb, path, body: nil, note: nil)
      @calls << Call.new(client, verb.upcase, path, body, note)
    end

    # The Rack app: the middleware (permissions per route from the registry) + the router.
    def app(trust_store:, policy:, on_reject: nil)
      requirements = @routes.select(&:permission).to_h { |r| ["#{r.verb} #{r.path}", r.permission] }
      router = method(:dispatch)
      Rack::Builder.new do
        use Portcullis::Rack::ClientCert, trust_store: trust_store, policy: policy,
                                          require: requirements, skip: ["/up"], on_reject: on_reject
        run router
      end.to_app
    end

    def dispatch(env)
      request = Rack::Request.new(env)
      route = @routes.find { |r| r.verb == request.request_method && r.path == request.path_info }
      return [404, { "content-type" => "text/plain" }, ["not found\n"]] unless route

      status, body = route.handler.call(request, env["portcullis.identity"])
      [status, { "content-type" => "text/plain" }, [body.to_s]]
    end
  end

  # The policy: plain data, as a config file would hold it.
  POLICY_RULES = [
    { match: { issuer: "CN=Ops CA,O=Demo Corp" }, grant: ["status:read"] },
    { match: { issuer: "CN=Ops CA,O=Demo Corp", cn: "deployer" }, grant: ["containers:deploy"] },
    { match: { spiffe_prefix: "spiffe://demo.internal/ops/" }, grant: ["containers:deploy", "files:read"] }
  ].freeze

  def self.who(identity)
    identity.spiffe_id || identity.subject
  end

  route "GET", "/up" do
    [200, "up"]
  end

  route "GET", "/whoami", permission: "status:read" do |_request, identity|
    [200, "#{who(identity)} (#{identity.issuer})"]
  end

  call :deployer, "GET", "/whoami", note: "issuer matched structurally"
  call :workload, "GET", "/whoami", note: "SPIFFE ID, granted by prefix"
  call :revoked, "GET", "/whoami", note: "OpenSSL accepted it; the CRL did not"
  call :wrong_issuer, "GET", "/whoami", note: "valid chain, but not from Ops CA"
  call :foreign, "GET", "/whoami", note: "never reaches the app"
  call nil, "GET", "/whoami", note: "no client certificate"
  call nil, "GET", "/up", note: "skipped health check"
end

Dir[File.join(__dir__, "routes", "*.rb")].sort.each { |f| require f }

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
#   Demo.call :workload, "GET", "/fetch?url=http://169.254.169.254/", note: "metadata SSRF",
#             status: 403, outcome: "egress.metadata"
#
# `status:` and `outcome:` are what the row must show; run.rb exits non-zero when a row
# shows anything else. Two processes load these files: run.rb (the clients, for the rows)
# and server.rb (the app, under `portcullis exec`). Fixtures only the server needs (temp
# dirs, a local upstream) are set up in `Demo.on_start` and torn down with `Demo.on_stop`.
module Demo
  Route = Struct.new(:verb, :path, :permission, :handler)
  Call = Struct.new(:client, :verb, :path, :body, :note, :status, :outcome) do
    # true when the row shows the expected status and outcome (String: substring; Regexp).
    def expected?(shown_status, shown_outcome)
      shown_status.to_s == status.to_s &&
        (outcome.is_a?(Regexp) ? outcome.match?(shown_outcome.to_s) : shown_outcome.to_s.include?(outcome.to_s))
    end
  end

  @routes = []
  @calls = []
  @starts = []
  @stops = []

  # The demo's own reporting: the middleware's 401/403 bodies carry no detail, so the
  # server copies the rejection code (what on_reject receives) into a response header the
  # demo's table shows. A real app logs it instead.
  REJECTION_HEADER = "x-demo-rejection"

  class << self
    attr_reader :routes, :calls

    # Registers an endpoint; the handler gets (Rack::Request, Portcullis::Identity) and
    # returns [status, body].
    def route(verb, path, permission: nil, &handler)
      @routes << Route.new(verb.upcase, path, permission, handler)
    end

    # Registers a row of the demo table: `client` (a Demo::Pki client name, or nil for no
    # certificate) calls `verb path`; the row must show `status` ("-" when the TLS handshake
    # is refused) and an outcome containing `outcome` (or matching it, for a Regexp).
    def call(client, verb, path, status:, outcome:, body: nil, note: nil)
      @calls << Call.new(client, verb.upcase, path, body, note, status, outcome)
    end

    # Registers a fixture for the server process (Demo.start!).
    def on_start(&block)
      @starts << block
    end

    # Sets up every fixture once, in the order registered.
    def start!
      @starts.shift.call while @starts.any?
    end

    # Registers a teardown (close a socket, remove a temp dir) for Demo.stop!.
    def on_stop(&block)
      @stops << block
    end

    # Runs every teardown once, last registered first.
    def stop!
      @stops.pop.call while @stops.any?
    end

    # The Rack app: the middleware (permissions per route from the registry) + the router.
    def app(trust_store:, policy:, on_reject: nil)
      requirements = @routes.select(&:permission).to_h { |r| ["#{r.verb} #{r.path}", r.permission] }
      router = method(:dispatch)
      record = lambda do |rejection, env|
        env["demo.rejection"] = rejection.code
        on_reject&.call(rejection, env)
      end
      Rack::Builder.new do
        use ShowRejection
        use Portcullis::Rack::ClientCert, trust_store: trust_store, policy: policy,
                                          require: requirements, skip: ["/up"], on_reject: record
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

  # Copies the rejection code on_reject recorded into REJECTION_HEADER (demo only).
  class ShowRejection
    def initialize(app)
      @app = app
    end

    def call(env)
      status, headers, body = @app.call(env)
      code = env["demo.rejection"]
      headers = headers.merge(REJECTION_HEADER => code) if code
      [status, headers, body]
    end
  end

  # The policy: plain data, as a config file would hold it.
  POLICY_RULES = [
    { match: { issuer: "CN=Ops CA,O=Demo Corp" }, grant: ["status:read", "files:read"] },
    { match: { issuer: "CN=Ops CA,O=Demo Corp", cn: "deployer" }, grant: ["containers:deploy"] },
    { match: { spiffe_prefix: "spiffe://demo.internal/ops/" },
      grant: ["containers:deploy", "files:read", "files:write", "egress:fetch"] }
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

  call :deployer, "GET", "/whoami", note: "issuer matched structurally",
                                    status: 200, outcome: "CN=deployer,O=Demo Corp (CN=Ops CA,O=Demo Corp)"
  call :workload, "GET", "/whoami", note: "SPIFFE ID, granted by prefix",
                                    status: 200, outcome: "spiffe://demo.internal/ops/builder"
  call :viewer, "GET", "/whoami", note: "any Ops CA client may read status",
                                  status: 200, outcome: "CN=viewer,O=Demo Corp"
  call :revoked, "GET", "/whoami", note: "OpenSSL accepted it; the CRL did not", status: 401, outcome: "cert.revoked"
  call :wrong_issuer, "GET", "/whoami", note: "valid chain, but not from Ops CA", status: 403, outcome: "authz.forbidden"
  call :foreign, "GET", "/whoami", note: "never reaches the app", status: "-", outcome: "TLS handshake refused"
  call nil, "GET", "/whoami", note: "no client certificate", status: 401, outcome: "cert.missing"
  call nil, "GET", "/up", note: "skipped health check", status: 200, outcome: "up"
end

at_exit { Demo.stop! }
Dir[File.join(__dir__, "routes", "*.rb")].sort.each { |f| require f }

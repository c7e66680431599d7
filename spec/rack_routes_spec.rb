# frozen_string_literal: true

require "rack"
require "rack/lint"
require "rack/test"
require "stringio"

# require: / skip: against the spellings a router or a method-override layer accepts, and
# env strings in odd encodings. `good` (Ops CA) holds status:read only; `spiffe` (ops/
# workload) also holds containers:deploy.
RSpec.describe Portcullis::Rack::ClientCert do
  include Rack::Test::Methods

  let(:world) { MtlsClients.world }
  let(:good) { world[:good][0] }
  let(:spiffe) { world[:spiffe][0] }
  let(:rejections) { [] }
  # The form as the app sees it, and (where the input can rewind, as Rack 2 requires) the
  # raw body a raw reader would get after Rack::MethodOverride.
  let(:echo) do
    lambda do |env|
      req = Rack::Request.new(env)
      form = req.form_data? || req.parseable_data? ? req.POST : {}
      input = env["rack.input"]
      raw = "n/a"
      if input.respond_to?(:rewind)
        input.rewind
        raw = input.read.bytesize
      end
      input.rewind if input.respond_to?(:rewind)
      file = form["file"].is_a?(Hash) ? form["file"][:tempfile].read : nil
      body = "#{env['REQUEST_METHOD']} #{form.reject { |k, _| k == 'file' }.inspect} raw=#{raw} file=#{file.inspect}"
      [200, { "content-type" => "text/plain" }, [body]]
    end
  end
  # Rack 3's Lint hands the app an input without #rewind (the Rack 3 SPEC dropped it).
  let(:raw) { ->(bytes) { Rack.release.start_with?("2.") ? bytes : "n/a" } }
  # The README's pattern: the middleware in front of an app whose stack has Rack::MethodOverride.
  let(:inner) { Rack::MethodOverride.new(echo) }
  let(:options) { {} }

  def middleware(**extra)
    opts = { trust_store: MtlsClients.trust_store, policy: MtlsClients.policy,
             on_reject: ->(r, _env) { rejections << r } }.merge(options).merge(extra)
    described_class.new(Rack::Lint.new(inner), **opts)
  end

  def app
    Rack::Lint.new(middleware)
  end

  def peer(cert, env = {})
    { "puma.peercert" => cert }.merge(env)
  end

  # Rack::Lint's own response checks, for envs Lint itself refuses (the Rack SPEC forbids
  # them, but servers and middleware in front do hand them over).
  def lint_response(response)
    Rack::Lint.new(->(_env) { response }).call(Rack::MockRequest.env_for("/"))
  end

  describe "format suffixes (Rails routes /admin(.:format))" do
    let(:options) { { require: { "/admin" => "admin", "POST /deploys" => "containers:deploy", "/users/7" => "admin" } } }

    it "needs on every spelling Rails routes to the action what the plain path needs" do
      %w[/admin /admin.json /admin.xml /admin.anything /admin/ /ADMIN.JSON /admin%2Ejson /admin/7.json
         /admin.json/ /users/7.json /users/7/edit.json].each do |path|
        get path, {}, peer(spiffe)
        expect(last_response.status).to eq(403), path
      end
      post "/deploys.json", {}, peer(good)
      expect(last_response.status).to eq(403)
      post "/deploys.json", {}, peer(spiffe)
      expect(last_response.status).to eq(200)
      %w[/administrator /admins.json /users/70.json /public/admin.json].each do |path|
        get path, {}, peer(spiffe)
        expect(last_response.status).to eq(200), path
      end
      expect(rejections.map(&:code).uniq).to eq(["authz.forbidden"])
    end

    it "answers the same from the core" do
      routes = Portcullis::RouteRequirements.new("/admin" => "admin", "POST /deploys" => "containers:deploy")
      expect(routes.required("GET", "/admin.json")).to eq(["admin"])
      expect(routes.required("POST", "/deploys.json")).to eq(["containers:deploy"])
      expect(routes.required("GET", "/adminx.json")).to eq([])
    end
  end

  describe "skip: prefixes do not widen by the format rule" do
    let(:options) { { skip: ["/up", "/docs/readme"] } }

    it "skips only the path it names (a dotted name may be another resource)" do
      get "/up"
      expect(last_response.status).to eq(200)
      %w[/up.json /up.anything /docs/readme.secret /docs/readme.].each do |path|
        get path
        expect(last_response.status).to eq(401), path
      end
      expect(rejections.map(&:code).uniq).to eq(["cert.missing"])
    end
  end

  describe "method override (Rack::MethodOverride in the app's stack)" do
    let(:options) { { require: { "DELETE /users" => "containers:deploy", "PATCH /users" => "status:read" } } }

    it "refuses a POST that the app would run as DELETE, by form field or header" do
      post "/users/7", { "_method" => "delete" }, peer(good)
      expect(last_response.status).to eq(403)
      post "/users/7", {}, peer(good, "HTTP_X_HTTP_METHOD_OVERRIDE" => "DELETE")
      expect(last_response.status).to eq(403)
      post "/users/7.json", { "_method" => "Delete" }, peer(good)
      expect(last_response.status).to eq(403)
      # Both sources apply: Rack takes the form field first, but the header is judged too.
      post "/users/7", { "_method" => "patch" }, peer(good, "HTTP_X_HTTP_METHOD_OVERRIDE" => "DELETE")
      expect(last_response.status).to eq(403)
      expect(rejections.map(&:code).uniq).to eq(["authz.forbidden"])
      expect(rejections.last.message).to include("method override")
    end

    it "lets the identity that holds the permission through, and the app runs the override" do
      post "/users/7", { "_method" => "delete", "note" => "bye" }, peer(spiffe)
      expect(last_response.status).to eq(200)
      expect(last_response.body).to eq(%(DELETE {"_method"=>"delete", "note"=>"bye"} raw=#{raw.call('_method=delete&note=bye'.bytesize)} file=nil))
    end

    it "leaves the body intact for the app after reading the form" do
      post "/users/7", { "_method" => "patch", "name" => "x" * 100 }, peer(good)
      expect(last_response.status).to eq(200)
      expect(last_response.body).to eq(%(PATCH {"_method"=>"patch", "name"=>"#{'x' * 100}"} raw=#{raw.call(19 + 100)} file=nil))
    end

    it "reads multipart forms as Rack does and keeps their files for the app" do
      upload = Rack::Test::UploadedFile.new(StringIO.new("FILEDATA"), "text/plain", original_filename: "a.txt")
      post "/users/7", { "_method" => "delete", "file" => upload }, peer(good)
      expect(last_response.status).to eq(403)
      upload = Rack::Test::UploadedFile.new(StringIO.new("FILEDATA"), "text/plain", original_filename: "a.txt")
      post "/users/7", { "_method" => "patch", "file" => upload }, peer(good)
      expect(last_response.status).to eq(200)
      expect(last_response.body).to start_with(%(PATCH {"_method"=>"patch"}))
      expect(last_response.body).to end_with(%(file="FILEDATA"))
    end

    it "applies whatever Rack::MethodOverride itself would dispatch the request as" do
      routes = { "DELETE /users" => "containers:deploy", "OPTIONS /users" => "containers:deploy",
                 "UNLINK /users" => "containers:deploy", "GET /users" => "containers:deploy" }
      mw = middleware(require: routes)
      values = ["delete", "DELETE", "dElEtE", "options", "opt\u0131on\u017F", "unl\u0131nk", "head", "get",
                "delete ", " delete", "purge", "", "del\u00E9te"]
      values.each do |value|
        seen = nil
        probe = Rack::MethodOverride.new(->(env) { seen = env["REQUEST_METHOD"]; [200, {}, []] })
        probe.call(Rack::MockRequest.env_for("/users/7", method: "POST", params: { "_method" => value }))
        env = Rack::MockRequest.env_for("/users/7", method: "POST", params: { "_method" => value }, "puma.peercert" => good)
        status = mw.call(env)[0]
        expect(status).to eq(seen == "POST" ? 200 : 403), "#{value.inspect} -> #{seen}"
      end
    end

    it "fails closed when the form cannot be read within the cap" do
      mw = middleware(max_override_body_bytes: 16)
      env = Rack::MockRequest.env_for("/users/7", method: "POST", params: { "_method" => "patch", "pad" => "y" * 64 },
                                                  "puma.peercert" => good)
      expect(mw.call(env)[0]).to eq(403)
      expect(rejections.last.message).to include("unreadable")
      expect(env["rack.input"].read).to start_with("_method=patch") # not consumed
      # Within the cap, the same request passes.
      env = Rack::MockRequest.env_for("/users/7", method: "POST", params: { "_method" => "patch", "pad" => "y" * 64 },
                                                  "puma.peercert" => good)
      expect(middleware.call(env)[0]).to eq(200)
    end

    it "fails closed without a length, on an input it cannot rewind, and on a form that does not parse" do
      mw = middleware(max_override_body_bytes: 32)
      big = StringIO.new("_method=patch&pad=#{'y' * 64}")
      env = Rack::MockRequest.env_for("/users/7", method: "POST", "puma.peercert" => good,
                                                  "CONTENT_TYPE" => "application/x-www-form-urlencoded")
      env.delete("CONTENT_LENGTH")
      env["rack.input"] = big
      expect(mw.call(env)[0]).to eq(403)
      expect(big.read).to start_with("_method=patch")

      # A Rack 3 input that cannot rewind and has no length cannot be measured.
      one_way = Struct.new(:data) do
        def read(*) = data.slice!(0..)
        def gets = nil
        def each; end
      end
      env = Rack::MockRequest.env_for("/users/7", method: "POST", "puma.peercert" => good,
                                                  "CONTENT_TYPE" => "application/x-www-form-urlencoded")
      env.delete("CONTENT_LENGTH")
      env["rack.input"] = one_way.new(+"_method=patch")
      bare = described_class.new(echo, trust_store: MtlsClients.trust_store, policy: MtlsClients.policy,
                                       require: options[:require])
      expect(bare.call(env)[0]).to eq(403)

      env = Rack::MockRequest.env_for("/users/7", method: "POST", "puma.peercert" => good,
                                                  "CONTENT_TYPE" => "multipart/form-data; boundary=x", input: "--x\r\ngarbage")
      expect(middleware.call(env)[0]).to eq(403)
    end

    # Whether the middleware parsed the form before handing the request on.
    def parsed_before_app?(cert, path, **extra)
      parsed = nil
      probe = ->(env) { parsed = env.key?("rack.request.form_hash"); [200, {}, []] }
      mw = described_class.new(probe, trust_store: MtlsClients.trust_store, policy: MtlsClients.policy,
                                      require: options[:require], **extra)
      env = Rack::MockRequest.env_for(path, method: "POST", params: { "_method" => "patch" }, "puma.peercert" => cert)
      expect(mw.call(env)[0]).to eq(200)
      parsed
    end

    it "reads a Rack 3 input that cannot rewind once, and hands the app a rewindable copy" do
      one_way = Struct.new(:data) do
        def read(*) = data.slice!(0..)
        def gets = nil
        def each; end
      end
      bare = described_class.new(inner, trust_store: MtlsClients.trust_store, policy: MtlsClients.policy,
                                        require: options[:require])
      { "patch" => 200, "delete" => 403 }.each do |value, status|
        body = +"_method=#{value}&name=x"
        env = Rack::MockRequest.env_for("/users/7", method: "POST", "puma.peercert" => good,
                                                    "CONTENT_TYPE" => "application/x-www-form-urlencoded",
                                                    "CONTENT_LENGTH" => body.bytesize.to_s)
        env["rack.input"] = one_way.new(body.dup)
        response = bare.call(env)
        expect(response[0]).to eq(status), value
        next unless status == 200

        text = +""
        response[2].each { |chunk| text << chunk }
        expect(text).to eq(%(PATCH {"_method"=>"patch", "name"=>"x"} raw=#{body.bytesize} file=nil))
        expect(env["rack.input"].read).to eq(body)
      end
    end

    it "reads the body only when an override could change the answer" do
      expect(parsed_before_app?(good, "/users/7")).to be(true)
      expect(parsed_before_app?(spiffe, "/users/7")).to be(false) # holds every permission the path asks for
      expect(parsed_before_app?(good, "/other")).to be(false) # no entry for the path
    end

    it "never overrides other methods, as Rack does not" do
      get "/users/7", {}, peer(good, "HTTP_X_HTTP_METHOD_OVERRIDE" => "DELETE")
      expect(last_response.status).to eq(200)
      put "/users/7", { "_method" => "delete" }, peer(good)
      expect(last_response.status).to eq(200)
    end

    it "can be turned off for apps without a method-override layer" do
      env = Rack::MockRequest.env_for("/users/7", method: "POST", params: { "_method" => "delete" }, "puma.peercert" => good)
      expect(described_class.new(echo, trust_store: MtlsClients.trust_store, policy: MtlsClients.policy,
                                       require: options[:require], method_override: false).call(env)[0]).to eq(200)
      expect(parsed_before_app?(good, "/users/7", method_override: false)).to be(false)
      expect { middleware(max_override_body_bytes: -1) }.to raise_error(ArgumentError)
    end
  end

  describe "env strings in odd encodings" do
    let(:options) { { require: { "/caf\u00E9" => "admin", "/admin" => "admin" }, skip: ["/up"] } }

    it "judges binary paths with high bytes under Rack::Lint" do
      env = peer(spiffe, "SCRIPT_NAME" => "/caf\u00E9".b, "PATH_INFO" => "/\xFF".b)
      get "/", {}, env
      expect(last_response.status).to eq(403)
      get "/", {}, { "SCRIPT_NAME" => "/caf\u00E9".b, "PATH_INFO" => "/\xFF".b }
      expect(last_response.status).to eq(401)
      get "/", {}, peer(spiffe, "PATH_INFO" => "/admin/\xFF".b)
      expect(last_response.status).to eq(403)
      get "/", {}, peer(spiffe, "PATH_INFO" => "/ok/\xFF".b)
      expect(last_response.status).to eq(200)
    end

    it "answers 4xx, not 500, for a UTF-8 SCRIPT_NAME with a binary PATH_INFO" do
      [[spiffe, 403], [nil, 401]].each do |cert, status|
        env = Rack::MockRequest.env_for("/")
        env.merge!("SCRIPT_NAME" => "/caf\u00E9", "PATH_INFO" => "/\xFF".b)
        env["puma.peercert"] = cert if cert
        response = middleware.call(env)
        expect(response[0]).to eq(status)
        lint_response(response)
      end
      env = Rack::MockRequest.env_for("/").merge("SCRIPT_NAME" => "/caf\u00E9", "PATH_INFO" => "/\xFF".b)
      expect(middleware(require: nil, policy: nil, skip: [%r{\A/up}]).call(env)[0]).to eq(401)
    end

    it "answers 4xx for invalid UTF-8 in PATH_INFO, also against skip: Regexps" do
      mw = middleware(skip: [%r{\A/up\z}, "/up"])
      env = Rack::MockRequest.env_for("/").merge("PATH_INFO" => (+"/\xFF").force_encoding(Encoding::UTF_8))
      response = mw.call(env)
      expect(response[0]).to eq(401)
      lint_response(response)
    end

    it "answers 400 for a REQUEST_METHOD that is not an HTTP token" do
      ["GE\xFFT".b, (+"G\xC3\x89T").force_encoding(Encoding::UTF_8), "GET /x", ""].each do |method|
        env = Rack::MockRequest.env_for("/admin", "puma.peercert" => spiffe).merge("REQUEST_METHOD" => method)
        response = middleware.call(env)
        expect(response[0]).to eq(400), method.inspect
        expect(response[2]).to eq(["bad request\n"])
        lint_response(response)
      end
      expect(rejections.map(&:code).uniq).to eq(["authz.bad_method"])
      expect { Portcullis::RouteRequirements.new("/a" => "x").required("G\xFFT".b, "/") }
        .to raise_error(Portcullis::Forbidden) { |e| expect(e.code).to eq("authz.bad_method") }
    end
  end
end

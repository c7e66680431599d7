# frozen_string_literal: true

require "spec_helper"
require "tmpdir"
require "fileutils"
require "json"
require "open3"
require "rbconfig"
require "portcullis/rails/test_helper"

# Each case boots its own Rails app (spec/rails_app/boot.rb) in a child process: the
# Railtie's boot decisions (what it mounts, what it refuses) are per process.
RSpec.describe "Portcullis::Railtie at boot" do
  let(:ca) { Portcullis::Rails::TestHelper::CA.new }
  let(:root) { Dir.mktmpdir("portcullis-rails-boot") }
  let(:toml_rack) do
    <<~TOML
      [trust_store.clients]
      ca = "pki/client-ca.pem"

      [[access]]
      cn = "deployer"
      grants = ["app:deploy"]

      [rack]
      trust_store = "clients"
      require = { "POST /deploy" = "app:deploy" }
      skip = ["/up"]
    TOML
  end

  before do
    FileUtils.mkdir_p(File.join(root, "config", "pki"))
    FileUtils.mkdir_p(File.join(root, "public"))
    FileUtils.mkdir_p(File.join(root, "files"))
    File.write(File.join(root, "public", "secret.txt"), "public file\n")
    ca.write(File.join(root, "config", "pki", "client-ca.pem"))
  end

  after { FileUtils.remove_entry(root) }

  def toml(text)
    File.write(File.join(root, "config", "portcullis.toml"), text)
  end

  def boot(settings: "", after: "", env: "test")
    script = File.expand_path("rails_app/boot.rb", __dir__)
    vars = { "PORTCULLIS_APP_ROOT" => root, "PORTCULLIS_SETTINGS" => settings, "PORTCULLIS_AFTER" => after,
             "RAILS_ENV" => env, "PORTCULLIS_CA_PEM" => ca.pem,
             "PORTCULLIS_DEPLOYER_PEM" => ca.issue(cn: "deployer").to_pem,
             "PORTCULLIS_VIEWER_PEM" => ca.issue(cn: "viewer").to_pem }
    out, err, status = Open3.capture3(vars, RbConfig.ruby, script)
    { out: out, err: err, ok: status.success?, boot_line: out[/^BOOT LINE (.*)$/, 1],
      stack: (JSON.parse(out[/^STACK (.*)$/, 1]) if out[/^STACK /]) }
  end

  it "refuses to boot in production with no portcullis.toml and no config.portcullis" do
    result = boot(env: "production")
    expect(result[:ok]).to be(false)
    expect(result[:out]).to include("BOOT ERROR Portcullis::ConfigError config.missing")
    expect(result[:out]).to include("portcullis.toml is missing").and include("portcullis:install")
  end

  it "warns once in development and test, and says so in the boot line" do
    result = boot(env: "development")
    expect(result[:ok]).to be(true), result[:out] + result[:err]
    expect(result[:err].scan("portcullis: warning:").size).to eq(1)
    expect(result[:boot_line]).to include("not mounted").and include("a boot error in production")
  end

  it "mounts from the [rack] table before ActionDispatch::Static and logs one boot line" do
    toml(toml_rack)
    result = boot(env: "production", after: <<~RUBY)
      puts "PUBLIC " + get("/secret.txt").status.to_s
      puts "PUBLIC WITH CERT " + get("/secret.txt", portcullis_client_env(client("VIEWER"))).body
      puts "LOG " + log.lines.grep(/portcullis: Portcullis::Rack/).size.to_s
    RUBY
    expect(result[:ok]).to be(true), result[:out] + result[:err]
    stack = result[:stack]
    expect(stack.index("Portcullis::Rack::ConfiguredClientCert")).to be < stack.index("ActionDispatch::Static")
    expect(result[:out]).to include("PUBLIC 401").and include("PUBLIC WITH CERT public file")
    expect(result[:out]).to include("LOG 1")
    expect(result[:boot_line]).to include("Portcullis::Rack::ConfiguredClientCert mounted before ActionDispatch::Static")
    expect(result[:boot_line]).to include("from config/portcullis.toml").and include("1 route rule(s) required, 1 skipped")
    expect(result[:boot_line]).to match(/guard: \S+/).and match(/lockdown: \S+/)
  end

  it "lets integration tests present real certificates from a test CA (TestHelper)" do
    toml(toml_rack)
    result = boot(after: <<~RUBY)
      puts "HELLO " + get("/hello").status.to_s
      puts "HELLO DEPLOYER " + get("/hello", portcullis_client_env(client("DEPLOYER"))).body
      puts "UP " + get("/up").body
      puts "DEPLOY VIEWER " + post("/deploy", portcullis_client_env(client("VIEWER"))).status.to_s
      puts "DEPLOY DEPLOYER " + post("/deploy", portcullis_client_env(client("DEPLOYER"))).body
    RUBY
    expect(result[:out]).to include("HELLO 401").and include("HELLO DEPLOYER hello deployer").and include("UP hello \n")
    expect(result[:out]).to include("DEPLOY VIEWER 403").and include("DEPLOY DEPLOYER deploying")
  end

  it "refuses config.portcullis middleware settings next to a [rack] table" do
    toml(toml_rack)
    %w[require skip source].each do |key|
      value = { "require" => '{ "/admin" => "admin" }', "skip" => '["/health"]', "source" => ":nginx" }.fetch(key)
      result = boot(settings: "config.portcullis.#{key} = #{value}")
      expect(result[:ok]).to be(false)
      expect(result[:out]).to include("config.conflict").and include("config.portcullis.#{key}")
    end
    result = boot(settings: 'config.portcullis.trust_store = Portcullis::TrustStore.new(ca: ENV.fetch("PORTCULLIS_CA_PEM"))')
    expect(result[:out]).to include("config.conflict").and include("config.portcullis.trust_store")
  end

  it "keeps Portcullis.config loaded when config.portcullis.trust_store mounts the middleware" do
    toml("[root.files]\npath = \"../files\"\n")
    result = boot(settings: 'config.portcullis.trust_store = Portcullis::TrustStore.new(ca: ENV.fetch("PORTCULLIS_CA_PEM"))',
                  after: 'puts "CONFIG #{Portcullis.config.names(:root).inspect}"')
    expect(result[:ok]).to be(true), result[:out] + result[:err]
    expect(result[:out]).to include("CONFIG [:files]")
    expect(result[:boot_line]).to include("Portcullis::Rack::ClientCert mounted before ActionDispatch::Static from config.portcullis")
  end

  it "refuses middleware settings without a trust_store instead of ignoring them" do
    result = boot(settings: "config.portcullis.require = { '/admin' => 'admin' }")
    expect(result[:out]).to include("BOOT ERROR Portcullis::ConfigError config.conflict")
  end

  it "refuses a second Portcullis middleware in the stack" do
    toml(toml_rack)
    result = boot(settings: <<~RUBY)
      config.middleware.use Portcullis::Rack::ClientCert, trust_store: Portcullis::TrustStore.new(ca: ENV.fetch("PORTCULLIS_CA_PEM"))
    RUBY
    expect(result[:ok]).to be(false)
    expect(result[:out]).to include("config.conflict").and include("mounted 2 times")
  end

  it "moves with insert_before, and refuses unknown options" do
    toml(toml_rack)
    result = boot(settings: "config.portcullis.insert_before = Rack::Runtime")
    expect(result[:ok]).to be(true), result[:out] + result[:err]
    expect(result[:stack].index("Portcullis::Rack::ConfiguredClientCert")).to be < result[:stack].index("Rack::Runtime")
    expect(result[:boot_line]).to include("before Rack::Runtime")
    result = boot(settings: "config.portcullis.requires = {}")
    expect(result[:out]).to include("config.unknown_key").and include("requires")
  end

  it "writes refusals and reload failures to Rails.logger and passes reload errors to on_reload_error" do
    toml(toml_rack.sub('skip = ["/up"]', "skip = [\"/up\"]\nreload_interval = 0"))
    result = boot(settings: "config.portcullis.on_reload_error = ->(e) { puts \"RELOAD ERROR \#{e.code}\" }",
                  after: <<~RUBY)
      events = []
      ActiveSupport::Notifications.subscribe(/portcullis/) { |name, *, payload| events << [name, payload[:code]] }
      get("/hello")
      path = Rails.root.join("config/portcullis.toml")
      sleep 1.1 # a new mtime
      File.write(path, File.read(path).sub("[rack]", "[rack]\\nbogus = 1"))
      get("/hello")
      puts "EVENTS \#{events.to_json}"
      puts "LOGGED " + log.lines.grep(/portcullis: (reject refused|reload of)/).map(&:strip).to_json
    RUBY
    expect(result[:ok]).to be(true), result[:out] + result[:err]
    expect(result[:out]).to include("RELOAD ERROR config.")
    events = JSON.parse(result[:out][/^EVENTS (.*)$/, 1])
    expect(events).to include(["reject.portcullis", "cert.missing"])
    expect(events.map(&:first)).to include("reload.portcullis")
    logged = JSON.parse(result[:out][/^LOGGED (.*)$/, 1])
    expect(logged.grep(/reject refused cert.missing/).size).to be >= 1
    expect(logged.grep(/reload of .* failed config\./).size).to eq(1)
  end

  it "answers authz.no_middleware when a controller asks for an identity and nothing is mounted" do
    result = boot(settings: "config.portcullis.enabled = false", after: <<~RUBY)
      response = post("/deploy")
      puts "DEPLOY \#{response.status} \#{response.body.inspect}"
      puts "LOGGED " + log.lines.grep(/authz.no_middleware/).size.to_s
    RUBY
    expect(result[:ok]).to be(true), result[:out] + result[:err]
    expect(result[:out]).to include('DEPLOY 403 "forbidden\n"')
    expect(result[:out]).to include("LOGGED 1")
    expect(result[:boot_line]).to include("disabled by config.portcullis.enabled = false")
  end

  it "maps Portcullis refusals to detail-free 400/403/404 in controllers" do
    toml(toml_rack.sub('skip = ["/up"]', 'skip = ["/up", "/file"]'))
    result = boot(after: <<~RUBY)
      File.write(Rails.root.join("files/a.txt"), "a")
      Dir.mkdir(Rails.root.join("files/sub"))
      { "a.txt" => nil, "../etc/passwd" => nil, "x\\u0000y" => nil, "missing.txt" => nil, "sub" => nil }.each_key do |name|
        response = get("/file?name=\#{Rack::Utils.escape(name)}")
        puts "FILE \#{name.inspect} \#{response.status} \#{response.body.inspect}"
      end
    RUBY
    expect(result[:out]).to include('FILE "a.txt" 200 "read"')
    expect(result[:out]).to include('FILE "../etc/passwd" 403 "forbidden\n"')
    expect(result[:out]).to include('FILE "x\u0000y" 400 "bad request\n"')
    expect(result[:out]).to include('FILE "missing.txt" 404 "not found\n"')
    expect(result[:out]).to include('FILE "sub" 404 "not found\n"') # path.not_a_file: nothing to read there
  end

  it "rails g portcullis:install writes a file that boots (fail closed until the CA exists) and portcullis:check validates it" do
    target = File.join(root, "generated")
    result = boot(after: <<~RUBY)
      require "rails/generators"
      require "rake"
      Rails::Generators.invoke("portcullis:install", ["--puma", "--source=nginx", "--quiet"], destination_root: #{target.inspect})
      file = File.join(#{target.inspect}, "config/portcullis.toml")
      begin
        Portcullis.load(file)
      rescue Portcullis::ConfigError => e
        puts "BEFORE CA \#{e.code}"
      end
      FileUtils.mkdir_p(File.join(#{target.inspect}, "config/pki"))
      File.write(File.join(#{target.inspect}, "config/pki/client-ca.pem"), ENV.fetch("PORTCULLIS_CA_PEM"))
      puts "AFTER CA \#{Portcullis.load(file).rack_settings.inspect}"
      puts "PUMA \#{File.read(File.join(#{target.inspect}, "config/puma/portcullis_ssl.rb"))[/verify_mode: "\\w+"/]}"
      Rails.application.load_tasks
      ENV["PORTCULLIS_FILE"] = file
      Rake::Task["portcullis:check"].invoke
    RUBY
    expect(result[:ok]).to be(true), result[:out] + result[:err]
    expect(result[:out]).to include("BEFORE CA config.missing_file")
    expect(result[:out]).to include('AFTER CA {:trust_store=>:clients, :source=>:edge')
    expect(result[:out]).to include('PUMA verify_mode: "peer"')
    expect(result[:out]).to include("portcullis.toml: OK").and include("[rack]").and include("[source.edge]")
  end

  it "portcullis:check fails with file:line:column for a bad file" do
    toml("[rack]\ntrust_store = \"nope\"\n")
    result = boot(settings: "config.portcullis.enabled = false", after: <<~RUBY)
      require "rake"
      Rails.application.load_tasks
      Rake::Task["portcullis:check"].invoke
    RUBY
    expect(result[:ok]).to be(false)
    expect(result[:err]).to match(%r{portcullis: .*config/portcullis.toml:\d+:\d+: })
  end
end

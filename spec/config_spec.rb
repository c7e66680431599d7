# frozen_string_literal: true

require "spec_helper"
require "tmpdir"
require "fileutils"
require "open3"
require "rbconfig"
require "rack"
require "rack/lint"

RSpec.describe Portcullis::Config do
  let(:at) { Time.utc(2025, 6, 1) }
  let(:root_ca) { TestPKI::CA.root("Config Spec Root") }
  let(:inter) { root_ca.intermediate("Config Spec Intermediate") }
  let(:client) { inter.issue(cn: "deployer") }
  let(:dir) { Dir.mktmpdir("portcullis-config") }
  let(:file) { File.join(dir, "portcullis.toml") }

  let(:good) do
    <<~TOML
      [trust_store.clients]
      ca = "ca.pem"
      intermediates = ["intermediate.pem"]
      crls = ["crl.pem"]

      [egress.partners]
      allow_hosts = ["api.partner.example"]

      [root.uploads]
      path = "uploads"
      symlinks = "deny"

      [command.deploy]
      program = "/bin/echo"
      args = ["run", "--", "{image}"]
      params.image = { type = "one_of", choices = { worker = "worker:latest" } }
      timeout = 5
    TOML
  end

  before do
    File.write(File.join(dir, "ca.pem"), root_ca.pem)
    File.write(File.join(dir, "intermediate.pem"), inter.pem)
    File.write(File.join(dir, "crl.pem"), inter.crl.to_pem)
    FileUtils.mkdir_p(File.join(dir, "uploads"))
    File.write(File.join(dir, "uploads", "report.txt"), "ok")
    File.write(file, good)
  end

  after { FileUtils.remove_entry(dir) }

  def public_dns(ip = "93.184.215.14")
    ->(_host) { [ip] }
  end

  subject(:config) { Portcullis.load(file, check_interval: 0) }

  it "returns the same classes as the direct constructors, enforcing the file" do
    expect(config.path).to eq(file)
    expect(config.inspect).to include(file)

    store = config.trust_store(:clients)
    expect(store).to be_a(Portcullis::TrustStore)
    expect(store.verify(client.cert, at: at).common_name).to eq("deployer")
    other = TestPKI::CA.root("Other Root").issue(cn: "mallory")
    expect { store.verify(other.cert, at: at) }.to raise_error(Portcullis::CertificateError)

    partners = config.egress("partners")
    expect(partners).to be_a(Portcullis::EgressPolicy)
    expect(partners.check!("https://api.partner.example/x", resolver: public_dns).host).to eq("api.partner.example")
    expect { partners.check!("https://evil.example/", resolver: public_dns) }
      .to raise_error(Portcullis::EgressDenied) { |e| expect(e.code).to eq("egress.host_not_allowed") }
    expect { partners.check!("https://api.partner.example/", resolver: public_dns("169.254.169.254")) }
      .to raise_error(Portcullis::EgressDenied)

    uploads = config.root(:uploads)
    expect(uploads).to be_a(Portcullis::SafeRoot)
    expect(uploads.read("report.txt")).to eq("ok")
    expect { uploads.read("../ca.pem") }.to raise_error(Portcullis::PathError) { |e| expect(e.code).to eq("path.escape") }
    expect(uploads.symlinks).to eq(:deny)

    deploy = config.command(:deploy)
    expect(deploy).to be_a(Portcullis::Command)
    expect(deploy.argv(image: "worker")).to eq(["/bin/echo", "run", "--", "worker:latest"])
    expect { deploy.argv(image: "--privileged") }.to raise_error(Portcullis::CommandError)
    expect(deploy.run(image: "worker").stdout).to eq("run -- worker:latest\n")

    expect(config.names(:egress)).to eq([:partners])
    expect(config.summary.map { |s| s[:kind] }).to eq(%i[trust_store root egress command])
  end

  it "raises ConfigError with code, file, line and column for unknown names and bad files" do
    expect { config.egress(:nope) }.to raise_error(Portcullis::ConfigError) { |e|
      expect(e.code).to eq("config.unknown_name")
      expect(e.message).to include("defined: partners")
      expect(e.line).to be_nil
    }

    File.write(file, good.sub("allow_hosts", "alow_hosts"))
    expect { Portcullis.load(file) }.to raise_error(Portcullis::ConfigError) { |e|
      expect(e.code).to eq("config.unknown_key")
      expect([e.file, e.line, e.column]).to eq([file, 7, 1])
      expect(e.message).to start_with("#{file}:7:1: unknown key \"alow_hosts\" in [egress.partners]; expected one of:")
      expect(e).to be_a(Portcullis::Error)
    }

    File.write(file, "[egress.p]\nallow_cidrs = [\"10.0.0.0/33\"]\n")
    expect { Portcullis.load(file) }.to raise_error(Portcullis::ConfigError) { |e|
      expect([e.code, e.line, e.column]).to eq(["config.invalid_value", 2, 16])
    }

    File.write(file, "[command.x]\nprogram = \"echo\"\n")
    expect { Portcullis.load(file) }.to raise_error(Portcullis::ConfigError) { |e|
      expect([e.code, e.line, e.column]).to eq(["config.invalid_value", 2, 11])
    }

    File.write(file, "[trust_store.c]\nca = \"missing.pem\"\n")
    expect { Portcullis.load(file) }.to raise_error(Portcullis::ConfigError) { |e|
      expect([e.code, e.line, e.column]).to eq(["config.missing_file", 2, 6])
    }

    File.write(file, "[command.x]\nprogram = \"/bin/cat\"\nargs = [\"{f}\"]\nparams.f = { type = \"path\", root = \"nope\" }\n")
    expect { Portcullis.load(file) }.to raise_error(Portcullis::ConfigError) { |e| expect(e.code).to eq("config.reference") }

    File.write(file, "[egress.p\n")
    expect { Portcullis.load(file) }.to raise_error(Portcullis::ConfigError) { |e| expect(e.code).to eq("config.syntax") }

    expect { Portcullis.load(File.join(dir, "absent.toml")) }
      .to raise_error(Portcullis::ConfigError) { |e| expect(e.code).to eq("config.io") }
    expect { Portcullis.load(file, check_interval: -1) }.to raise_error(ArgumentError)
    expect { described_class.new }.to raise_error(NoMethodError)
  end

  it "reload! swaps in a good file and keeps the old configuration on a bad one" do
    config # loaded before the edits
    File.write(file, good.sub("api.partner.example", "api2.partner.example"))
    expect(config.reload!).to equal(config)
    expect(config.egress(:partners).allowed?("https://api2.partner.example/", resolver: public_dns)).to be(true)

    File.write(file, "#{good}\n[egress.broken]\ndeny_cidrs = [\"nope\"]\n")
    expect { config.reload! }.to raise_error(Portcullis::ConfigError) { |e|
      expect(e.code).to eq("config.invalid_value")
      expect([e.line, e.column]).to eq([20, 15])
    }
    # The old configuration is still in force.
    expect(config.egress(:partners).allowed?("https://api2.partner.example/", resolver: public_dns)).to be(true)
    expect { config.egress(:broken) }.to raise_error(Portcullis::ConfigError)
  end

  it "reload_if_changed! follows the file and its CRLs" do
    store = config.trust_store(:clients)
    expect(config.reload_if_changed!).to be(false)
    expect(store.verify(client.cert, at: at).common_name).to eq("deployer")

    File.write(File.join(dir, "crl.pem"), inter.crl(revoked: [client]).to_pem)
    expect(config.reload_if_changed!).to be(true)
    expect { store.verify(client.cert, at: at) }
      .to raise_error(Portcullis::CertificateError) { |e| expect(e.code).to eq("cert.revoked") }

    File.write(File.join(dir, "crl.pem"), "garbage")
    expect { config.reload_crls! }.to raise_error(Portcullis::ConfigError) { |e| expect(e.message).to include("crl.pem") }
    expect { store.verify(client.cert, at: at) }.to raise_error(Portcullis::CertificateError)

    File.write(file, good.sub("api.partner.example", "api3.partner.example"))
    File.write(File.join(dir, "crl.pem"), inter.crl.to_pem)
    expect(config.reload_if_changed!).to be(true)
    expect(config.egress(:partners).allowed?("https://api3.partner.example/", resolver: public_dns)).to be(true)
    expect(config.trust_store(:clients).verify(client.cert, at: at).common_name).to eq("deployer")
  end

  it "only looks at the files once per check_interval" do
    slow = Portcullis.load(file, check_interval: 3600)
    File.write(file, good.sub("api.partner.example", "api4.partner.example"))
    expect(slow.reload_if_changed!).to be(false)
    expect(slow.egress(:partners).allowed?("https://api4.partner.example/", resolver: public_dns)).to be(false)
  end

  it "loads the committed example" do
    example = Portcullis.load(File.expand_path("../examples/portcullis.toml", __dir__))
    expect(example.names(:command)).to include(:deploy, :show)
    expect(example.command(:show).argv(file: "README.txt").last).to end_with("examples/uploads/README.txt")
  end

  context "with sources, access rules and a [rack] table" do
    let(:good) do
      <<~TOML
        [trust_store.clients]
        ca = "ca.pem"
        intermediates = ["intermediate.pem"]
        crls = ["crl.pem"]

        [source.edge]
        kind = "nginx"
        trusted_proxies = ["127.0.0.1"]

        [[access]]
        cn = "deployer"
        grants = ["deploy"]

        [[access]]
        store = "clients"
        cn = "deployer"
        grants = ["clients:only"]

        [rack]
        trust_store = "clients"
        source = "edge"
        require = { "POST /deploy" = "deploy" }
        skip = ["/up"]
        reload_interval = 0
      TOML
    end

    it "returns CertSource, AccessPolicy and the rack settings" do
      edge = config.source(:edge)
      expect(edge).to be_a(Portcullis::CertSource)
      expect(edge.kind).to eq(:nginx)
      expect(edge.trusted_proxy?("127.0.0.1")).to be(true)
      expect(edge.trusted_proxy?("10.9.9.9")).to be(false)

      identity = config.trust_store(:clients).verify(client.cert, at: at)
      policy = config.access_policy
      expect(policy).to be_a(Portcullis::AccessPolicy)
      expect(policy.permissions(identity)).to eq(["deploy"])
      expect(config.access_policy(store: :clients).permissions(identity)).to eq(%w[clients:only deploy])
      expect { policy.authorize!(identity, "admin") }.to raise_error(Portcullis::Forbidden)
      expect { config.access_policy(store: :nope) }.to raise_error(Portcullis::ConfigError)
      expect(config.names(:source)).to eq([:edge])

      expect(config.rack_settings).to eq(trust_store: :clients, source: :edge, require: { "POST /deploy" => "deploy" },
                                         skip: ["/up"], reload_interval: 0.0)
      options = config.middleware_options
      expect(options.keys).to contain_exactly(:trust_store, :policy, :source, :require, :skip)
    end

    it "mounts as Rack middleware that follows the file and keeps the old config on a bad one" do
      errors = []
      app = ->(env) { [200, { "content-type" => "text/plain" }, [env["portcullis.identity"]&.common_name.to_s]] }
      stack = Rack::Lint.new(Portcullis::Rack::ConfiguredClientCert.new(
                               Rack::Lint.new(app), config: config, on_reload_error: ->(e) { errors << e.code }
                             ))
      request = lambda do |method, path, cert|
        env = Rack::MockRequest.env_for(path, method: method, "REMOTE_ADDR" => "127.0.0.1")
        env["HTTP_X_SSL_CLIENT_CERT"] = URI.encode_www_form_component(cert.pem).gsub("+", "%20") if cert
        stack.call(env).first
      end
      viewer = inter.issue(cn: "viewer")
      expect(request.call("POST", "/deploy", client)).to eq(200)
      expect(request.call("POST", "/deploy", viewer)).to eq(403)
      expect(request.call("GET", "/up", nil)).to eq(200)
      expect(request.call("GET", "/", nil)).to eq(401)

      File.write(file, good.sub('cn = "deployer"', 'cn = "viewer"'))
      expect(request.call("POST", "/deploy", viewer)).to eq(200)
      expect(request.call("POST", "/deploy", client)).to eq(403)

      File.write(file, "#{good}\n[egress.broken]\nallow_cidrs = [\"nope\"]\n")
      expect { expect(request.call("POST", "/deploy", viewer)).to eq(200) }.to output(/reload failed/).to_stderr
      expect(errors).to eq(["config.invalid_value"])

      File.write(file, good.sub('cn = "deployer"', 'cn = "viewer"'))
      File.write(File.join(dir, "crl.pem"), inter.crl(revoked: [viewer]).to_pem)
      # TestPKI CRLs are valid 2024-2030; the middleware verifies at the current time.
      expect(request.call("POST", "/deploy", viewer)).to eq(401)
    end

    it "survives GC.stress with 8 threads asking for sources, policies and middleware options" do
      config
      GC.stress = true
      begin
        threads = Array.new(8) do
          Thread.new do
            Array.new(2) do
              identity = config.trust_store(:clients).verify(client.cert, at: at)
              [config.source(:edge).kind, config.access_policy(store: :clients).permissions(identity),
               config.middleware_options.keys.size, config.rack_settings[:trust_store]]
            end
          end
        end
        results = threads.flat_map(&:value)
      ensure
        GC.stress = false
      end
      expect(results.uniq).to eq([[:nginx, %w[clients:only deploy], 5, :clients]])
    end

    it "refuses a [rack] table that names a missing store or an ungranted permission" do
      File.write(file, good.sub('trust_store = "clients"', 'trust_store = "client"'))
      expect { Portcullis.load(file) }.to raise_error(Portcullis::ConfigError) { |e|
        expect([e.code, e.line]).to eq(["config.reference", 20])
      }
      File.write(file, good.sub('"POST /deploy" = "deploy"', '"POST /deploy" = "deplyo"'))
      expect { Portcullis.load(file) }.to raise_error(Portcullis::ConfigError) { |e| expect(e.message).to include("deplyo") }
    end
  end

  it "has no [rack] settings without the table" do
    expect(config.rack_settings).to be_nil
    expect { config.middleware_options }.to raise_error(Portcullis::ConfigError)
  end

  it "survives GC.stress with 8 threads looking up, using and reloading" do
    config
    GC.stress = true
    begin
      threads = Array.new(8) do |t|
        Thread.new do
          Array.new(3) do
            config.reload! if t.zero?
            [
              config.trust_store(:clients).verify(client.cert, at: at).common_name,
              config.command(:deploy).argv(image: "worker").last,
              config.root(:uploads).read("report.txt"),
              config.egress(:partners).allowed?("https://api.partner.example/", resolver: public_dns)
            ]
          end
        end
      end
      results = threads.flat_map(&:value)
    ensure
      GC.stress = false
    end
    expect(results.size).to eq(24)
    expect(results.uniq).to eq([["deployer", "worker:latest", "ok", true]])
  end
end


RSpec.describe "Portcullis::Railtie wired from config/portcullis.toml" do
  # Booting Rails loads ActiveSupport's core extensions: run it in its own process.
  it "mounts the middleware from the [rack] table and follows edits of the file" do
    script = <<~'RUBY'
      require "portcullis"
      require File.expand_path("spec/support/pki")
      require "logger"
      require "tmpdir"
      require "rails"
      require "action_controller/railtie"
      require "portcullis/railtie"

      at = Time.now
      root_ca = TestPKI::CA.root("Rails Config Root")
      inter = root_ca.intermediate("Rails Config Intermediate")
      deployer = inter.issue(cn: "deployer")
      viewer = inter.issue(cn: "viewer")
      dir = Dir.mktmpdir("portcullis-rails")
      Dir.mkdir(File.join(dir, "config"))
      File.write(File.join(dir, "config", "ca.pem"), root_ca.pem)
      File.write(File.join(dir, "config", "intermediate.pem"), inter.pem)
      File.write(File.join(dir, "config", "crl.pem"), inter.crl(this_update: at - 60, next_update: at + 3600).to_pem)
      toml = <<~TOML
        [trust_store.clients]
        ca = "ca.pem"
        intermediates = ["intermediate.pem"]
        crls = ["crl.pem"]

        [[access]]
        cn = "deployer"
        grants = ["deploy"]

        [rack]
        trust_store = "clients"
        require = { "/deploy" = "deploy" }
        skip = ["/up"]
        reload_interval = 0
      TOML
      file = File.join(dir, "config", "portcullis.toml")
      File.write(file, toml)

      class App < ::Rails::Application
        config.eager_load = false
        config.logger = Logger.new(nil)
        config.secret_key_base = "portcullis" * 8
        config.hosts.clear
      end
      App.config.root = dir
      App.initialize!
      App.routes.draw do
        get "/deploy" => proc { |env| [200, { "content-type" => "text/plain" }, [env["portcullis.identity"].common_name]] }
        get "/up" => proc { [200, { "content-type" => "text/plain" }, ["up"]] }
      end

      def status(path, cert = nil)
        env = Rack::MockRequest.env_for(path, "REMOTE_ADDR" => "127.0.0.1")
        env["SSL_CLIENT_CERT"] = cert.pem if cert
        App.call(env).first
      end

      raise "middleware not mounted" unless App.middleware.include?(Portcullis::Rack::ConfiguredClientCert)
      raise "Portcullis.config not set" unless Portcullis.config.is_a?(Portcullis::Config)
      puts "deployer #{status('/deploy', deployer)}"
      puts "viewer #{status('/deploy', viewer)}"
      puts "anonymous #{status('/deploy')}"
      puts "up #{status('/up')}"
      sleep 0.01
      File.write(file, toml.sub('cn = "deployer"', 'cn = "viewer"'))
      puts "edited viewer #{status('/deploy', viewer)}"
      puts "edited deployer #{status('/deploy', deployer)}"
      File.write(file, toml + "\n[egress.broken]\nallow_cidrs = [\"nope\"]\n")
      puts "broken viewer #{status('/deploy', viewer)}"
      File.write(file, toml.sub('cn = "deployer"', 'cn = "viewer"'))
      File.write(File.join(dir, "config", "crl.pem"), inter.crl(revoked: [viewer], this_update: at - 60, next_update: at + 3600).to_pem)
      puts "revoked viewer #{status('/deploy', viewer)}"
    RUBY
    out, status = Open3.capture2e(RbConfig.ruby, "-Ilib", "-e", script, chdir: File.expand_path("..", __dir__))
    expect(status.success?).to be(true), out
    lines = out.lines.map(&:strip).grep(/\A[a-z ]+ \d{3}\z/)
    expect(lines).to eq(["deployer 200", "viewer 403", "anonymous 401", "up 200",
                         "edited viewer 200", "edited deployer 403",
                         "broken viewer 200", "revoked viewer 401"]), out
    expect(out).to include("reload failed, the previous configuration stays")
  end
end

# frozen_string_literal: true

require_relative "spec_helper"

# A Rails 6.1 app booted in a child process (in its own network namespace) with `[guard]`
# in config/portcullis.toml: the Railtie installs the guard after initialization, and a
# controller's plain Net::HTTP call to the metadata service is refused.
RSpec.describe "[guard] in a Rails app" do
  it "refuses a controller's Net::HTTP.get to the metadata URL and keeps normal requests working" do
    results = GuardChild.run(<<~RUBY)
      require "logger"
      require "stringio"
      require "net/http"
      require "rails"
      require "action_controller/railtie"
      require "portcullis/railtie"
      LOG = StringIO.new
      BACKEND = CountingServer.new
      class GuardApp < ::Rails::Application
        config.root = #{File.expand_path('rails_app/guard', __dir__).inspect}
        config.eager_load = false
        config.logger = Logger.new(LOG)
        config.secret_key_base = "portcullis" * 8
        config.hosts.clear
      end
      class FetchController < ActionController::Base
        def metadata
          render plain: Net::HTTP.get(URI("http://169.254.169.254/latest/meta-data/"))
        rescue SystemCallError => e
          render plain: "refused \#{e.respond_to?(:code) ? e.code : e.class}", status: 502
        end

        def backend
          render plain: Net::HTTP.get(URI("http://127.0.0.1:\#{BACKEND.port}/"))
        end

        def shell
          render plain: system("echo \#{params[:name]}").inspect
        rescue Portcullis::CommandError => e
          render plain: e.code, status: 500
        end
      end
      GuardApp.initialize!
      GuardApp.routes.draw do
        get "/metadata" => "fetch#metadata"
        get "/backend" => "fetch#backend"
        get "/shell" => "fetch#shell"
      end
      request = ->(path) { r = Rack::MockRequest.new(GuardApp).get(path); [r.status, r.body] }
      result(:status, Portcullis.guard_status.slice(:active, :mode, :spawn))
      result(:metadata, request.("/metadata"))
      result(:backend, request.("/backend"))
      result(:shell, request.("/shell?name=x%3Bid"))
      result(:log, LOG.string.lines.grep(/portcullis/).map(&:strip))
    RUBY
    expect(results["status"]).to eq("active" => true, "mode" => "enforce", "spawn" => "no_shell")
    expect(results["metadata"]).to eq([502, "refused egress.metadata"])
    expect(results["backend"]).to eq([200, "ok"])
    expect(results["shell"]).to eq([500, "command.shell_string"])
    expect(results["log"].join("\n")).to include("egress refused egress.metadata", "169.254.169.254",
                                                 "spawn refused command.shell_string")
  end
end

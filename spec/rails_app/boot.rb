# frozen_string_literal: true

# Boots one minimal Rails app in this process, for spec/rails_boot_spec.rb. The spec sets:
#   PORTCULLIS_APP_ROOT   the app root (config/portcullis.toml, public/ … made by the spec)
#   PORTCULLIS_SETTINGS   Ruby evaluated in the application class (config.portcullis.* = …)
#   PORTCULLIS_AFTER      Ruby evaluated after boot, with `app`, `log` (the Rails log) and
#                         `get(path, env = {})` (a Rack::MockRequest call) in scope
# and reads what this prints. Errors at boot exit 1 with "BOOT ERROR <class> <code>: <message>".
$LOAD_PATH.unshift File.expand_path("../../lib", __dir__)
require "stringio"
require "logger"
require "json"
require "rails"
require "action_controller/railtie"
require "rack/mock"
require "portcullis"
require "portcullis/rails/test_helper"

LOG = StringIO.new

module PortcullisBootSpec
  class App < ::Rails::Application
    config.root = ENV.fetch("PORTCULLIS_APP_ROOT")
    config.eager_load = false
    config.logger = Logger.new(LOG)
    config.secret_key_base = "portcullis" * 8
    config.hosts.clear if config.respond_to?(:hosts)
    config.public_file_server.enabled = true
    config.active_support.deprecation = :silence if config.respond_to?(:active_support)
    class_eval(ENV.fetch("PORTCULLIS_SETTINGS", ""), "PORTCULLIS_SETTINGS")
  end

  class ProbeController < ActionController::Base
    include Portcullis::Rails::ClientIdentity

    def show
      render plain: "hello #{client_identity&.common_name}"
    end

    def deploy
      authorize_client!(:"app:deploy")
      render plain: "deploying"
    end

    def read_file
      Portcullis::SafeRoot.new(Rails.root.join("files").to_s).read(params[:name])
      render plain: "read"
    end
  end
end

begin
  PortcullisBootSpec::App.initialize!
rescue StandardError => e
  puts "BOOT ERROR #{e.class} #{e.respond_to?(:code) ? e.code : '-'}: #{e.message}"
  exit 1
end

PortcullisBootSpec::App.routes.draw do
  get "/hello" => "portcullis_boot_spec/probe#show"
  get "/up" => "portcullis_boot_spec/probe#show"
  post "/deploy" => "portcullis_boot_spec/probe#deploy"
  get "/file" => "portcullis_boot_spec/probe#read_file"
end

include Portcullis::Rails::TestHelper

def app = PortcullisBootSpec::App
def client(name) = OpenSSL::X509::Certificate.new(ENV.fetch("PORTCULLIS_#{name}_PEM"))
def log = LOG.string

def get(path, env = {})
  Rack::MockRequest.new(app).get(path, env)
end

def post(path, env = {})
  Rack::MockRequest.new(app).post(path, env)
end

puts "BOOT OK"
puts "BOOT LINE #{Portcullis::Railtie.boot_line}"
puts "STACK #{Portcullis::Railtie.send(:middleware_names, app).to_json}"
eval(ENV.fetch("PORTCULLIS_AFTER", ""), binding, "PORTCULLIS_AFTER") # rubocop:disable Security/Eval

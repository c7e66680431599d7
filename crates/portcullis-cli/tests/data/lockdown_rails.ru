# A minimal Rails 6.1 app for the lockdown end-to-end test, the same routes as
# lockdown_app.ru, served by Puma under `portcullis exec`.
require "logger"
require "rails"
require "action_controller/railtie"
require_relative "lockdown_escapes"

class LockdownRailsApp < Rails::Application
  config.root = __dir__
  config.eager_load = true
  config.logger = Logger.new($stderr, level: :warn)
  config.secret_key_base = "lockdown" * 8
  config.hosts.clear
  routes.append do
    get "/" => "probe#index"
    get "/thread" => "probe#thread"
    get "/escape" => "probe#escape"
  end
end

class ProbeController < ActionController::Base
  def index = render(plain: "ok\n")
  def thread = render(plain: Thread.new { "thread ok\n" }.value)
  def escape = render(json: lockdown_escape_report)
end

LockdownRailsApp.initialize!
run LockdownRailsApp

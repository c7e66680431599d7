# frozen_string_literal: true

require_relative "portcullis/version"
require_relative "portcullis/error"

# Load the native extension. Locations, in order:
#   portcullis/portcullis.so         - `make` copies the cargo build here
#   portcullis/X.Y/portcullis.so     - precompiled (fat) gems, one per Ruby minor version
#   portcullis.so                    - RubyGems' cargo builder puts it flat in lib/
native = [
  File.join(__dir__, "portcullis", "portcullis.so"),
  File.join(__dir__, "portcullis", RUBY_VERSION[/\A\d+\.\d+/], "portcullis.so"),
  File.join(__dir__, "portcullis.so")
].find { |path| File.exist?(path) }
raise LoadError, "portcullis: native extension not found; run `make ext` (or reinstall the gem)" unless native

require native
require_relative "portcullis/identity"
require_relative "portcullis/egress"
require_relative "portcullis/http"

require_relative "portcullis/safe_root"
require_relative "portcullis/command"
require_relative "portcullis/config"
require_relative "portcullis/instrumentation"

Portcullis::Instrumentation.watch(Portcullis::SafeRoot, "path",
                                  %i[open read write exist? entries mkdir_p remove metadata stat store_upload join
                                     resolve_for_argv])
Portcullis::Instrumentation.watch(Portcullis::Command, "command", %i[argv run run!])
Portcullis::Instrumentation.watch(Portcullis::EgressPolicy, "egress", %i[check! check_redirect! check_ip!])
Portcullis::Instrumentation.watch(Portcullis::HTTP, "egress", %i[request])

# Portcullis keeps a hostile request inside the box: it verifies mutual-TLS client
# certificates into identities, authorizes them, confines outbound URLs, file access and
# commands. See README.md for a tour.
module Portcullis
  # Rack adapters load on first use, so `require "portcullis"` needs no Rack.
  module Rack
    autoload :Files, File.expand_path("portcullis/rack/files", __dir__)
    autoload :ClientCert, File.expand_path("portcullis/rack/client_cert", __dir__)
  end
  autoload :Hanami, File.expand_path("portcullis/hanami", __dir__)
  # Rails apps load Rails first; otherwise `require "portcullis/railtie"` after Rails.
  autoload :Railtie, File.expand_path("portcullis/railtie", __dir__)
end

require_relative "portcullis/railtie" if defined?(::Rails::Railtie)

# frozen_string_literal: true

# rackup-style entry for the demo app; `make demo` runs run.rb, which mints a PKI and
# starts server.rb (Puma with mutual TLS) under `portcullis exec`. To serve this file
# yourself, set PORTCULLIS_CA (PEM bundle of trusted roots) and PORTCULLIS_INTERMEDIATES
# (PEM bundle) and put Puma's ssl:// bind in front. Loading it also starts the 127.0.0.2
# upstream for /fetch (port PORTCULLIS_DEMO_UPSTREAM_PORT, default 18081) and the temp
# fixture tree for /files and /upload; both are removed at exit.
require_relative "app"

store = Portcullis::TrustStore.new(ca: File.read(ENV.fetch("PORTCULLIS_CA")),
                                   intermediates: [File.read(ENV.fetch("PORTCULLIS_INTERMEDIATES"))])
app = Demo.app(trust_store: store, policy: Portcullis::AccessPolicy.new(rules: Demo::POLICY_RULES))
Demo.start!
run app

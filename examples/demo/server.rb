# frozen_string_literal: true

# The demo server: Puma with mutual TLS on 127.0.0.1, the demo app behind
# Portcullis::Rack::ClientCert, and the fixtures its routes need (the 127.0.0.2 upstream,
# the file tree). run.rb starts it under `portcullis exec`, so it is locked down from its
# first instruction; it serves until SIGTERM, then removes its fixtures.
#
# Environment (run.rb sets it): PORTCULLIS_DEMO_DIR holds the PEM files run.rb minted
# (root.pem, ops_ca.pem, dev_ca.pem, ops_crl.pem, server.pem, server.key, tls_ca.pem);
# PORTCULLIS_DEMO_PORT and PORTCULLIS_DEMO_UPSTREAM_PORT are the ports its lockdown binds.
require "openssl" # before Puma, so env["puma.peercert"] exists
require "puma"
require "puma/server"
require_relative "app"
require_relative "../../spec/support/puma_mtls" # one Puma 5.6 / 6.x server builder for the specs and the demo

dir = ENV.fetch("PORTCULLIS_DEMO_DIR")
port = Integer(ENV.fetch("PORTCULLIS_DEMO_PORT"))
pem = ->(name) { File.read(File.join(dir, name)) }

trust_store = Portcullis::TrustStore.new(ca: pem["root.pem"], intermediates: [pem["ops_ca.pem"], pem["dev_ca.pem"]],
                                         crls: [pem["ops_crl.pem"]])
app = Demo.app(trust_store: trust_store, policy: Portcullis::AccessPolicy.new(rules: Demo::POLICY_RULES))
Demo.start!

tls = "key=#{File.join(dir, 'server.key')}&cert=#{File.join(dir, 'server.pem')}&ca=#{File.join(dir, 'tls_ca.pem')}"
server = PumaMtls.server(app, "ssl://127.0.0.1:#{port}?#{tls}&verify_mode=peer")
stop_r, stop_w = IO.pipe
%w[TERM INT].each { |sig| trap(sig) { stop_w.write_nonblock(".", exception: false) } }
thread = server.run
# Set by `portcullis exec`: informational, the kernel enforces the lockdown, not this.
puts "demo server: serving https://127.0.0.1:#{port} (pid #{Process.pid}); " \
     "#{ENV.fetch('PORTCULLIS_LOCKDOWN', 'NOT locked down (PORTCULLIS_DEMO_LOCKDOWN=off)')}"
$stdout.flush
stop_r.read(1)
server.stop(true)
thread.join(5)
Demo.stop!
puts "demo server: stopped, fixtures removed"

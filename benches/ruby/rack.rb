# frozen_string_literal: true

# Middleware overhead per request on a verification-cache hit, versus the same app without
# the middleware. Direct `call` loops, median of several rounds (run with `ruby -Ilib`).
require "openssl"
require "benchmark"
require "erb"
require "portcullis"
require_relative "../../examples/demo/pki"

ROUNDS = 15
ITERATIONS = 20_000

pki = Demo::Pki.new
client = pki.clients.fetch(:workload)
store = Portcullis::TrustStore.new(ca: pki.root[0].to_pem, intermediates: [pki.ops_ca[0].to_pem])
policy = Portcullis::AccessPolicy.new(rules: [
  { match: { spiffe_prefix: "spiffe://demo.internal/ops/" }, grant: ["containers:deploy"] },
  { match: { issuer: "CN=Ops CA,O=Demo Corp" }, grant: ["status:read"] }
])
inner = ->(_env) { [200, { "content-type" => "text/plain" }, ["ok"]] }

tls = Portcullis::Rack::ClientCert.new(inner, trust_store: store, policy: policy,
                                              require: { "/deploy" => "containers:deploy" })
nginx = Portcullis::Rack::ClientCert.new(inner, trust_store: store, policy: policy, source: :nginx,
                                                trusted_proxies: ["10.0.0.0/8"],
                                                require: { "/deploy" => "containers:deploy" })
base_env = { "REQUEST_METHOD" => "GET", "PATH_INFO" => "/deploy/x", "SCRIPT_NAME" => "", "REMOTE_ADDR" => "10.0.0.5" }
tls_env = base_env.merge("puma.peercert" => client.cert)
nginx_env = base_env.merge("HTTP_X_SSL_CLIENT_CERT" => ERB::Util.url_encode(client.cert.to_pem))

[[tls, tls_env], [nginx, nginx_env]].each do |app, env|
  status, = app.call(env.dup)
  raise "setup: expected 200, got #{status}" unless status == 200
end

def median_us(app, env)
  samples = Array.new(ROUNDS) do
    t = Benchmark.realtime { ITERATIONS.times { app.call(env.dup) } }
    t / ITERATIONS * 1e6
  end
  samples.sort[ROUNDS / 2]
end

bare = median_us(inner, tls_env)
with_tls = median_us(tls, tls_env)
with_nginx = median_us(nginx, nginx_env)
puts "rack: median of #{ROUNDS} rounds x #{ITERATIONS} calls (cache hit)"
puts format("  bare app                          %8.2f us/request", bare)
puts format("  + ClientCert, puma.peercert       %8.2f us/request  (added %.2f us; target <= 10)", with_tls, with_tls - bare)
puts format("  + ClientCert, nginx header        %8.2f us/request  (added %.2f us; target <= 10)", with_nginx, with_nginx - bare)

# Where the time goes (same rounds/iterations, no env copy).
der = client.cert.to_der
identity = store.verify(der)
source = Portcullis::CertSource.new(:nginx, trusted_proxies: ["10.0.0.0/8"])
parts = {
  "TrustStore#verify (cache hit)" => -> { store.verify(der, chain: []) },
  "AccessPolicy#permissions" => -> { policy.permissions(identity) },
  "CertSource#extract (nginx)" => -> { source.extract(nginx_env, "10.0.0.5") },
  "OpenSSL::X509::Certificate#to_der" => -> { client.cert.to_der }
}
puts "  parts:"
parts.each do |name, work|
  samples = Array.new(ROUNDS) { Benchmark.realtime { ITERATIONS.times { work.call } } / ITERATIONS * 1e6 }
  puts format("    %-36s %6.2f us", name, samples.sort[ROUNDS / 2])
end

# A POST whose `_method` form the middleware must read (the identity lacks what DELETE
# needs, so the override decides), against the same Rack::MethodOverride app without it. The
# form is parsed once: Rack caches it in the env for Rack::MethodOverride and the app.
require "rack"
require "stringio"
form_app = Rack::MethodOverride.new(->(env) { Rack::Request.new(env).POST && [200, {}, ["ok"]] })
override = Portcullis::Rack::ClientCert.new(form_app, trust_store: store, policy: policy,
                                                      require: { "DELETE /users" => "users:delete" })
form = "_method=patch&name=x&email=a%40b.example"
form_env = lambda do
  { "REQUEST_METHOD" => "POST", "PATH_INFO" => "/users/7", "SCRIPT_NAME" => "",
    "CONTENT_TYPE" => "application/x-www-form-urlencoded", "CONTENT_LENGTH" => form.bytesize.to_s,
    "rack.input" => StringIO.new(form.dup), "puma.peercert" => client.cert }
end
raise "setup: expected 200" unless override.call(form_env.call)[0] == 200

added = Array.new(ROUNDS) do
  bare_t = Benchmark.realtime { ITERATIONS.times { form_app.call(form_env.call) } }
  with_t = Benchmark.realtime { ITERATIONS.times { override.call(form_env.call) } }
  (with_t - bare_t) / ITERATIONS * 1e6
end
puts format("  + ClientCert reading a _method form (POST, override decides)  added %.2f us (median per round)",
            added.sort[ROUNDS / 2])

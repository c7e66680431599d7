# frozen_string_literal: true

# What loading the middleware from portcullis.toml costs per request: ClientCert built by
# hand versus ConfiguredClientCert (same trust store and rules, from the file, with its
# reload check), on a verification-cache hit. Direct `call` loops, median of several rounds
# (run with `ruby -Ilib`).
require "openssl"
require "benchmark"
require "tmpdir"
require "portcullis"
require_relative "../../examples/demo/pki"

ROUNDS = 15
ITERATIONS = 20_000

pki = Demo::Pki.new
client = pki.clients.fetch(:workload)
dir = Dir.mktmpdir("portcullis-config-bench")
File.write(File.join(dir, "ca.pem"), pki.root[0].to_pem)
File.write(File.join(dir, "ops.pem"), pki.ops_ca[0].to_pem)
File.write(File.join(dir, "portcullis.toml"), <<~TOML)
  [trust_store.clients]
  ca = "ca.pem"
  intermediates = ["ops.pem"]

  [[access]]
  spiffe_prefix = "spiffe://demo.internal/ops/"
  grants = ["containers:deploy"]

  [rack]
  trust_store = "clients"
  require = { "/deploy" = "containers:deploy" }
  reload_interval = 2
TOML
config = Portcullis.load(File.join(dir, "portcullis.toml"))
inner = ->(_env) { [200, { "content-type" => "text/plain" }, ["ok"]] }
by_hand = Portcullis::Rack::ClientCert.new(
  inner, trust_store: Portcullis::TrustStore.new(ca: pki.root[0].to_pem, intermediates: [pki.ops_ca[0].to_pem]),
         policy: Portcullis::AccessPolicy.new(rules: [{ match: { spiffe_prefix: "spiffe://demo.internal/ops/" },
                                                        grant: ["containers:deploy"] }]),
         require: { "/deploy" => "containers:deploy" }
)
from_file = Portcullis::Rack::ConfiguredClientCert.new(inner, config: config)
every_request = Portcullis::Rack::ConfiguredClientCert.new(inner, config: config)
every_request.instance_variable_set(:@interval, 0.0) # look at the files on every request
env = { "REQUEST_METHOD" => "GET", "PATH_INFO" => "/deploy/x", "SCRIPT_NAME" => "", "REMOTE_ADDR" => "10.0.0.5",
        "puma.peercert" => client.cert }
[by_hand, from_file, every_request].each do |app|
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

hand = median_us(by_hand, env)
file = median_us(from_file, env)
every = median_us(every_request, env)
load_ms = Array.new(ROUNDS) { Benchmark.realtime { Portcullis.load(File.join(dir, "portcullis.toml")) } * 1e3 }.sort[ROUNDS / 2]
puts "config: median of #{ROUNDS} rounds x #{ITERATIONS} calls (cache hit)"
puts format("  ClientCert built by hand                     %8.2f us/request", hand)
puts format("  ConfiguredClientCert (check every 2 s)       %8.2f us/request  (added %.2f us; target <= 1)", file, file - hand)
puts format("  ConfiguredClientCert (stat every request)    %8.2f us/request  (added %.2f us)", every, every - hand)
puts format("  Portcullis.load (this file)                  %8.3f ms", load_ms)
FileUtils.remove_entry(dir)

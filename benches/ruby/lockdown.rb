# frozen_string_literal: true

# Request throughput of the demo app (examples/demo/server.rb: Puma with mutual TLS,
# Portcullis::Rack::ClientCert, the demo routes) under `portcullis exec` (Landlock, the
# seccomp floor, no_new_privs, no capabilities, the connect supervisor) versus the same
# server without it. Both servers run at once; rounds alternate between them and the ratio
# is taken per round, for several fresh pairs (a process's own layout moves its speed by a
# few percent), next to control pairs of two plain servers. Each server's CPU time (all its threads; under `portcullis exec` the
# supervisor's too) per request is the steadier figure. When taskset is there and the
# machine has two CPUs, the servers share CPU 1 and this client runs on CPU 0.
# Needs the `portcullis` binary (`make cli`).
require "net/http"
require "openssl"
require "etc"

if !ENV["LOCKDOWN_BENCH_PINNED"] && Etc.nprocessors >= 2 && system("command -v taskset > /dev/null 2>&1")
  ENV["LOCKDOWN_BENCH_PINNED"] = "1"
  exec("taskset", "-c", "0", RbConfig.ruby, "-I#{File.expand_path('../../lib', __dir__)}", __FILE__)
end

require_relative "../../examples/demo/launcher"
require_relative "../../examples/demo/pki"

ROUNDS = Integer(ENV.fetch("ROUNDS", 21))
REQUESTS = Integer(ENV.fetch("REQUESTS", 500))
PAIRS = Integer(ENV.fetch("PAIRS", 6))
CONTROLS = Integer(ENV.fetch("CONTROLS", 3))
PATH = "/whoami" # mTLS client certificate -> ClientCert (cache hit) -> AccessPolicy -> the route

# utime + stime of a process (all threads), in seconds (clock ticks of /proc/PID/stat).
def cpu_seconds(pid)
  fields = File.read("/proc/#{pid}/stat").split(") ", 2).last.split
  (Integer(fields[11]) + Integer(fields[12])) / Etc.sysconf(Etc::SC_CLK_TCK).to_f
rescue SystemCallError
  0.0
end

def client(port, pki)
  http = Net::HTTP.new("127.0.0.1", port)
  http.use_ssl = true
  http.verify_mode = OpenSSL::SSL::VERIFY_PEER
  http.cert_store = OpenSSL::X509::Store.new.tap { |s| s.add_cert(pki.root[0]) }
  viewer = pki.clients.fetch(:viewer)
  http.cert = viewer.cert
  http.key = viewer.key
  http.keep_alive_timeout = 60
  http.start
end

def round(http, n)
  t = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  n.times do
    response = http.get(PATH)
    abort "bad response #{response.code}: #{response.body}" unless response.code == "200"
  end
  n / (Process.clock_gettime(Process::CLOCK_MONOTONIC) - t)
end

# One pair of fresh servers (`locked`: whether the second runs under `portcullis exec`):
# rounds alternate between them; returns req/s per round for each, and CPU us per request.
# `b_first`: start (and connect to) the second server first, so neither kind always has
# the same place in the run.
def measure_pair(pki, pinned, locked:, b_first:)
  servers = { a: Demo::Launcher.new(pki, locked: false, prefix: pinned),
              b: Demo::Launcher.new(pki, locked: locked, prefix: pinned) }
  (b_first ? servers.values.reverse : servers.values).each(&:start)
  abort "not locked:\n#{servers[:b].log_text}" if locked && !servers[:b].log_text.include?("landlock ABI")
  https = (b_first ? %i[b a] : %i[a b]).to_h { |k| [k, client(servers[k].port, pki)] }
  https.each_value { |h| 2.times { round(h, 100) } } # warm up (TLS session, verification cache)
  samples = { a: [], b: [] }
  cpu_before = servers.transform_values { |s| s.pids.sum { |pid| cpu_seconds(pid) } }
  ROUNDS.times do |i|
    (i.even? ? %i[a b] : %i[b a]).each { |k| samples[k] << round(https[k], REQUESTS) }
  end
  cpu = servers.to_h { |k, s| [k, (s.pids.sum { |pid| cpu_seconds(pid) } - cpu_before[k]) / (ROUNDS * REQUESTS) * 1e6] }
  https.each_value(&:finish)
  [samples, cpu]
ensure
  servers&.each_value(&:cleanup)
end

med = ->(a) { a.sort[a.size / 2] }
pki = Demo::Pki.new
pinned = ENV["LOCKDOWN_BENCH_PINNED"] ? %w[taskset -c 1] : []
puts "lockdown: the demo server (Puma 1 worker, mTLS, GET #{PATH} as the viewer client), one keep-alive client, " \
     "#{PAIRS} fresh pairs of servers (plain vs under portcullis exec) and #{CONTROLS} control pair(s) (plain vs plain), " \
     "#{ROUNDS} alternating rounds x #{REQUESTS} requests each#{pinned.empty? ? '' : '; servers on CPU 1, client on CPU 0'}"
results = { exec: [], control: [] }
(([:exec] * PAIRS) + ([:control] * CONTROLS)).each_with_index do |kind, i|
  samples, cpu = measure_pair(pki, pinned, locked: kind == :exec, b_first: i.odd?)
  ratios = samples[:a].zip(samples[:b]).map { |p, l| l / p }.sort
  results[kind] << { wall: med.call(ratios), cpu: cpu[:b] / cpu[:a] }
  puts format("  pair %d (%-7s) plain %6.0f req/s, %-6s %6.0f req/s; per-round ratio median %.3f (range %.3f-%.3f); " \
              "server CPU per request %.1f / %.1f us (ratio %.3f)",
              i + 1, kind, med.call(samples[:a]), kind == :exec ? "exec" : "plain", med.call(samples[:b]),
              med.call(ratios), ratios.first, ratios.last, cpu[:a], cpu[:b], cpu[:b] / cpu[:a])
end
results.each do |kind, rs|
  next if rs.empty?

  walls = rs.map { |r| r[:wall] }.sort
  cpus = rs.map { |r| r[:cpu] }.sort
  puts format("  %-7s median over %d pairs: throughput ratio %.3f (%.3f-%.3f), CPU-per-request ratio %.3f (%.3f-%.3f)%s",
              kind, rs.size, med.call(walls), walls.first, walls.last, med.call(cpus), cpus.first, cpus.last,
              kind == :exec ? " (target: throughput >= 0.98)" : " (the noise floor: two identical servers)")
end

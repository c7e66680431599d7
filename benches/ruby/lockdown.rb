# frozen_string_literal: true

# Request throughput of a Rack app served by Puma under `portcullis exec` (Landlock, the
# seccomp floor, no_new_privs, capabilities dropped) versus the same Puma without it.
# Both servers run at once; rounds alternate between them and the ratio is taken per round.
# Needs the `portcullis` binary (`make cli`).
require "net/http"
require "socket"
require "tmpdir"
require "fileutils"

ROUNDS = Integer(ENV.fetch("ROUNDS", 9))
REQUESTS = Integer(ENV.fetch("REQUESTS", 2000))
root = File.expand_path("../..", __dir__)
bin = ["release", "debug"].map { |p| File.join(ENV.fetch("CARGO_TARGET_DIR", File.join(root, "target")), p, "portcullis") }
                          .find { |p| File.executable?(p) }
abort "lockdown: no portcullis binary; run `make cli` first" unless bin

def free_port = TCPServer.open("127.0.0.1", 0) { |s| s.addr[1] }

def wait_up(port)
  60.times do
    return if Net::HTTP.get(URI("http://127.0.0.1:#{port}/")) == "ok"
  rescue SystemCallError, EOFError
    sleep 0.2
  end
  abort "server on #{port} did not come up"
end

# utime + stime of a process, in seconds (clock ticks of /proc/PID/stat).
def cpu_seconds(pid)
  fields = File.read("/proc/#{pid}/stat").split(") ", 2).last.split
  (Integer(fields[11]) + Integer(fields[12])) / 100.0
end

def round(port, n)
  Net::HTTP.start("127.0.0.1", port) do |http|
    t = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    n.times { http.get("/").body == "ok" or abort("bad response") }
    n / (Process.clock_gettime(Process::CLOCK_MONOTONIC) - t)
  end
end

Dir.mktmpdir("portcullis-lockdown-bench") do |dir|
  %w[config tmp log].each { |d| FileUtils.mkdir_p(File.join(dir, d)) }
  File.write(File.join(dir, "config.ru"), %(run ->(_env) { [200, { "content-type" => "text/plain" }, ["ok"]] }\n))
  plain_port = free_port
  locked_port = free_port
  File.write(File.join(dir, "config", "portcullis.toml"), "[lockdown.web]\npreset = \"ruby\"\nbind_tcp = [#{locked_port}]\n")
  puma = ->(port) { ["puma", "-q", "-t", "4:4", "-b", "tcp://127.0.0.1:#{port}", "config.ru"] }
  pids = [
    Process.spawn(*puma.call(plain_port), chdir: dir, out: File::NULL, err: File::NULL),
    Process.spawn(bin, "exec", "--config", "config/portcullis.toml", "--", *puma.call(locked_port),
                  chdir: dir, out: File::NULL, err: File.join(dir, "locked.log"))
  ]
  begin
    wait_up(plain_port)
    wait_up(locked_port)
    abort "not locked: #{File.read(File.join(dir, 'locked.log'))}" unless File.read(File.join(dir, "locked.log")).include?("landlock ABI")
    2.times { round(plain_port, 200) && round(locked_port, 200) } # warm up
    plain = []
    locked = []
    cpu_before = pids.map { |pid| cpu_seconds(pid) }
    ROUNDS.times do |i|
      order = i.even? ? [[plain, plain_port], [locked, locked_port]] : [[locked, locked_port], [plain, plain_port]]
      order.each { |samples, port| samples << round(port, REQUESTS) }
    end
    cpu = pids.zip(cpu_before).map { |pid, before| (cpu_seconds(pid) - before) / (ROUNDS * REQUESTS) * 1e6 }
    ratios = plain.zip(locked).map { |p, l| l / p }.sort
    med = ->(a) { a.sort[a.size / 2] }
    puts "lockdown: Puma 1 worker x 4 threads, one keep-alive client, #{ROUNDS} alternating rounds x #{REQUESTS} requests"
    puts format("  plain puma                     %8.0f req/s (median)", med.call(plain))
    puts format("  puma under portcullis exec     %8.0f req/s (median)", med.call(locked))
    puts format("  locked/plain, median per-round ratio %.3f (range %.3f-%.3f; target >= 0.98)", med.call(ratios), ratios.first, ratios.last)
    puts format("  server CPU per request: plain %.1f us, locked %.1f us (ratio %.3f; 10 ms tick resolution over all rounds)",
                cpu[0], cpu[1], cpu[1] / cpu[0])
  ensure
    pids.each { |pid| Process.kill("TERM", pid) rescue nil } # rubocop:disable Style/RescueModifier
    pids.each { |pid| Process.wait(pid) rescue nil } # rubocop:disable Style/RescueModifier
  end
end

# frozen_string_literal: true

# The runtime guard's cost per connection: Net::HTTP.get to a loopback server, in a worker
# process with `Portcullis.guard!(egress: allow_cidrs 127.0.0.1/32)` and in one without
# the guard (hooks are process-wide, so each side gets its own process). Rounds alternate
# between the two workers so machine load hits both alike; reports per-round medians and
# the median per-round difference. Target: <= 5 us added per connection.
#
#   ruby -Ilib benches/ruby/guard.rb
require "rbconfig"
require "json"

ROUNDS = Integer(ENV.fetch("ROUNDS", 21))
PER_ROUND = Integer(ENV.fetch("PER_ROUND", 400))

WORKER = <<~'RUBY'
  require "portcullis"
  require "net/http"
  require "benchmark"
  require "json"
  server = TCPServer.new("127.0.0.1", 0)
  port = server.addr[1]
  reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
  Thread.new do
    loop do
      c = server.accept
      c.readpartial(4096) rescue nil
      c.write(reply)
      c.close
    end
  end
  if ARGV[0] == "guarded"
    Portcullis.guard!(egress: Portcullis::EgressPolicy.new(allow_cidrs: ["127.0.0.1/32"]))
  end
  uri = URI("http://127.0.0.1:#{port}/")
  50.times { Net::HTTP.get(uri) }
  STDOUT.sync = true
  puts "ready"
  while (line = STDIN.gets)
    if line.start_with?("hooks")
      # The work the hooks add to one Net::HTTP connection, without the kernel's share:
      # the getaddrinfo hook (name attribution) and the connect_nonblock hook (the check).
      n = Integer(line.split[1])
      ai = Addrinfo.tcp("127.0.0.1", port)
      original = Addrinfo.method(:getaddrinfo).super_method
      GC.start
      hooked = Benchmark.realtime { n.times { Addrinfo.getaddrinfo("127.0.0.1", port, nil, :STREAM) } }
      plain = Benchmark.realtime { n.times { original.call("127.0.0.1", port, nil, :STREAM) } }
      check = Benchmark.realtime { n.times { Portcullis::Guard.check_sockaddr!(ai, "Socket#connect_nonblock") } }
      empty = Benchmark.realtime { (n * 10).times {} } # machine-speed indicator
      puts JSON.generate(resolve_us: (hooked - plain) / n * 1e6, check_us: check / n * 1e6,
                         empty_ns: empty / (n * 10) * 1e9)
      next
    end
    n = Integer(line)
    GC.start
    # Each request timed alone; the round reports the median, so a scheduler stall on the
    # shared machine moves one sample, not the round.
    # Also the process's CPU time per request (client and its in-process server thread
    # alike on both sides): the guard's cost is CPU work, and CPU time leaves out the
    # scheduler waits that dominate wall-clock noise on a shared machine.
    cpu0 = Process.clock_gettime(Process::CLOCK_PROCESS_CPUTIME_ID, :nanosecond)
    times = Array.new(n) do
      t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond)
      Net::HTTP.get(uri)
      Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond) - t0
    end.sort
    cpu = (Process.clock_gettime(Process::CLOCK_PROCESS_CPUTIME_ID, :nanosecond) - cpu0) / 1000.0 / n
    puts JSON.generate(us: times[n / 2] / 1000.0, cpu_us: cpu, counts: Portcullis.guard_status.dig(:counts, :egress))
  end
RUBY

def median(list)
  s = list.sort
  s.size.odd? ? s[s.size / 2] : (s[s.size / 2 - 1] + s[s.size / 2]) / 2.0
end

lib = File.expand_path("../../lib", __dir__)
# Two workers of each kind: the plain-vs-plain difference is the noise floor between
# processes (placement, memory layout), against which the guard's difference is read.
NAMES = %w[plain guarded plain2 guarded2].freeze
workers = NAMES.to_h do |name|
  io = IO.popen([RbConfig.ruby, "-I", lib, "-e", WORKER, name.delete("2")], "r+")
  raise "worker #{name} did not start" unless io.gets&.strip == "ready"

  [name, io]
end

samples = NAMES.to_h { |n| [n, []] }
cpu_samples = NAMES.to_h { |n| [n, []] }
last_counts = nil
ROUNDS.times do |round|
  order = NAMES.rotate(round % NAMES.size)
  order.each do |name|
    workers[name].puts(PER_ROUND)
    answer = JSON.parse(workers[name].gets)
    samples[name] << answer["us"]
    cpu_samples[name] << answer["cpu_us"]
    last_counts = answer["counts"] if name == "guarded"
  end
end
hook_rounds = Array.new(ROUNDS) do
  workers["guarded"].puts("hooks 20000")
  JSON.parse(workers["guarded"].gets)
end
workers.each_value(&:close)
resolve = median(hook_rounds.map { |h| h["resolve_us"] })
check = median(hook_rounds.map { |h| h["check_us"] })
empty = median(hook_rounds.map { |h| h["empty_ns"] })

plain = samples["plain"].zip(samples["plain2"]).map { |a, b| (a + b) / 2 }
guarded = samples["guarded"].zip(samples["guarded2"]).map { |a, b| (a + b) / 2 }
diffs = guarded.zip(plain).map { |g, p| g - p }
floor = samples["plain2"].zip(samples["plain"]).map { |a, b| a - b }
samples = { "plain" => plain, "guarded" => guarded }
avg2 = ->(a, b) { samples_a = cpu_samples[a]; samples_a.zip(cpu_samples[b]).map { |x, y| (x + y) / 2 } }
cpu_diffs = avg2.call("guarded", "guarded2").zip(avg2.call("plain", "plain2")).map { |g, p| g - p }
cpu_floor = cpu_samples["plain2"].zip(cpu_samples["plain"]).map { |a, b| a - b }
puts format("Net::HTTP.get over loopback, %d rounds x %d requests (new connection each)", ROUNDS, PER_ROUND)
puts format("  without guard: median %.1f us per request (median of per-round medians)", median(samples["plain"]))
puts format("  with guard:    median %.1f us per request", median(samples["guarded"]))
puts format("  added by the guard: median %.2f us per connection (per-round differences: min %.2f, max %.2f)",
            median(diffs), diffs.min, diffs.max)
puts format("  noise floor (plain worker vs plain worker): median %.2f us (min %.2f, max %.2f)",
            median(floor), floor.min, floor.max)
puts format("  CPU time added per request: median %.2f us (per-round: min %.2f, max %.2f); " \
            "noise floor %.2f us (min %.2f, max %.2f)",
            median(cpu_diffs), cpu_diffs.min, cpu_diffs.max, median(cpu_floor), cpu_floor.min, cpu_floor.max)
puts "  guarded worker judged: #{last_counts}"
puts format("  hook work per connection, isolated (%d rounds x 20000): getaddrinfo hook +%.2f us, " \
            "connect check %.2f us, total %.2f us", ROUNDS, resolve, check, resolve + check)
puts format("  machine speed: an empty block iteration takes %.0f ns here (about 30 ns on an idle core)", empty)
puts "  target <= 5 us: wall clock #{median(diffs) <= 5 ? 'met' : 'not met (see noise above)'}, " \
     "CPU time #{median(cpu_diffs) <= 5 ? 'met' : 'NOT met'}, isolated #{resolve + check <= 5 ? 'met' : 'NOT met'}"

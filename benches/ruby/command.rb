# frozen_string_literal: true

# Portcullis::Command from Ruby: building argv (target <= 2 us) and running /bin/true
# (target <= 1.2x Ruby's Process.spawn + Process.wait, measured in the same run).
require "portcullis"
require "open3"

# Median of `rounds` per-call means (the machine is shared and noisy: medians, not means).
def median_us(iterations, rounds: 11)
  samples = Array.new(rounds) do
    t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    iterations.times { yield }
    (Process.clock_gettime(Process::CLOCK_MONOTONIC) - t0) * 1e6 / iterations
  end
  samples.sort[rounds / 2]
end

deploy = Portcullis::Command.new(
  "/bin/echo", ["run", "--rm", "--name={name}", "--replicas={n}", "--", :image],
  params: {
    image: { one_of: { "worker" => "worker:latest", "api" => "api:stable" } },
    name: { pattern: "[a-z][a-z0-9-]{0,30}" },
    n: { integer: 1..10 }
  }
)
simple = Portcullis::Command.new("/bin/echo", ["run", "--rm", "--", :image],
                                 params: { image: { one_of: { "worker" => "worker:latest" } } })
truecmd = Portcullis::Command.new("/bin/true")

5_000.times { deploy.argv(image: "worker", name: "web-1", n: 3) }
argv3 = median_us(50_000) { deploy.argv(image: "worker", name: "web-1", n: 3) }
argv1 = median_us(50_000) { simple.argv(image: "worker") }
refused = median_us(20_000) do
  simple.argv(image: "--privileged")
rescue Portcullis::CommandError
  nil
end
# The Ruby-only alternative to the one_of mapping: a Hash lookup and an Array literal.
images = { "worker" => "worker:latest" }.freeze
ruby_argv = median_us(50_000) { ["/usr/bin/docker", "run", "--rm", "--", images.fetch("worker")] }

100.times { truecmd.run; Process.wait(Process.spawn("/bin/true")) }
# Interleaved rounds, so load changes hit both sides alike; the ratio is per round.
run_samples = []
spawn_samples = []
capture_samples = []
9.times do
  run_samples << median_us(100, rounds: 1) { truecmd.run }
  spawn_samples << median_us(100, rounds: 1) { Process.wait(Process.spawn("/bin/true")) }
  capture_samples << median_us(100, rounds: 1) { Open3.capture3("/bin/true") }
end
median = ->(xs) { xs.sort[xs.size / 2] }
run_us = median.(run_samples)
spawn_us = median.(spawn_samples)
capture_us = median.(capture_samples)
ratio = median.(run_samples.zip(spawn_samples).map { |r, s| r / s })
ratio_capture = median.(run_samples.zip(capture_samples).map { |r, c| r / c })

puts "command: argv, 3 params (one_of, pattern, integer)  #{format('%.2f', argv3)} us   (target <= 2 us)"
puts "command: argv, 1 param (one_of)                     #{format('%.2f', argv1)} us"
puts "command: argv refused (--privileged, raises)        #{format('%.2f', refused)} us"
puts "ruby:    hash lookup + array literal                #{format('%.2f', ruby_argv)} us"
puts "command: run /bin/true                              #{format('%.1f', run_us)} us"
puts "ruby:    Process.spawn + Process.wait /bin/true     #{format('%.1f', spawn_us)} us"
puts "ruby:    Open3.capture3 /bin/true                   #{format('%.1f', capture_us)} us"
puts "command: run / Process.spawn+wait                   #{format('%.2f', ratio)}x   (target <= 1.2x)"
puts "command: run / Open3.capture3                       #{format('%.2f', ratio_capture)}x"

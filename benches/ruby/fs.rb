# frozen_string_literal: true

# SafeRoot#open + close versus plain File.open on the same file (target: <= 1.3x), and
# versus the realpath + prefix-check approach. Prints the median of several timed
# batches per variant, and the ratios measured in this same run.
require "portcullis"
require "tmpdir"
require "fileutils"

BATCH = Integer(ENV.fetch("FS_BENCH_BATCH", 5_000))
ROUNDS = Integer(ENV.fetch("FS_BENCH_ROUNDS", 21))
NAME = "assets/css/site.css"

def ns_per_op(callable)
  start = Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond)
  BATCH.times { callable.call }
  (Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond) - start).fdiv(BATCH)
end

def median(values) = values.sort[values.size / 2]

Dir.mktmpdir("portcullis-fs-bench") do |tmp|
  base = File.realpath(tmp)
  FileUtils.mkdir_p(File.join(base, "assets/css"))
  full = File.join(base, NAME)
  File.write(full, "body{}")
  root = Portcullis::SafeRoot.new(base)
  walk = Portcullis::SafeRoot.new(base, force_walk: true)
  prefix = "#{base}/"

  variants = {
    "File.open + close" => -> { File.open(full, "r").close },
    "SafeRoot#open + close (openat2)" => -> { root.open(NAME).close },
    "SafeRoot#open + close (walk)" => -> { walk.open(NAME).close },
    "File.realpath + start_with? + File.open" => lambda {
      path = File.realpath(File.join(base, NAME))
      raise "outside" unless path.start_with?(prefix)

      File.open(path, "r").close
    },
    "SafeRoot#read" => -> { root.read(NAME) },
    "File.binread" => -> { File.binread(full) }
  }
  variants.each_value { |v| 2000.times { v.call } } # warm up
  # Rounds interleave the variants, so machine noise (2 shared cores) hits all of them;
  # the ratio is the median of per-round ratios against File.open in the same round.
  samples = Hash.new { |h, k| h[k] = [] }
  ROUNDS.times do
    variants.each { |label, callable| samples[label] << ns_per_op(callable) }
  end
  baseline = samples.fetch("File.open + close")
  puts format("%-42s %12s %14s", "variant", "median ns/op", "median ratio")
  samples.each do |label, values|
    ratios = values.zip(baseline).map { |v, b| v / b }
    puts format("%-42s %12.0f %13.2fx", label, median(values), median(ratios))
  end
  puts "(#{ROUNDS} rounds x #{BATCH} ops per variant)"
end

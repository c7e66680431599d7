# frozen_string_literal: true

# SafeRoot#open + close versus plain File.open on the same file (target: <= 1.3x), and
# versus the realpath + prefix-check approach. Prints the median of several timed
# batches per variant, and the ratios measured in this same run.
require "portcullis"
require "tmpdir"
require "fileutils"

BATCH = Integer(ENV.fetch("FS_BENCH_BATCH", 20_000))
ROUNDS = Integer(ENV.fetch("FS_BENCH_ROUNDS", 7))
NAME = "assets/css/site.css"

def median_ns_per_op(&block)
  samples = Array.new(ROUNDS) do
    start = Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond)
    BATCH.times { block.call }
    (Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond) - start).fdiv(BATCH)
  end
  samples.sort[ROUNDS / 2]
end

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
  results = variants.transform_values { |v| median_ns_per_op(&v) }
  baseline = results.fetch("File.open + close")
  puts format("%-42s %10s %8s", "variant", "ns/op", "ratio")
  results.each do |label, ns|
    puts format("%-42s %10.0f %7.2fx", label, ns, ns / baseline)
  end
end

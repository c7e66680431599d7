# frozen_string_literal: true

# Egress from Ruby: Portcullis::EgressPolicy#check! versus a pure-Ruby IPAddr range check
# written like the ssrf_filter gem's (URI parse, scheme/port check, resolve, then
# `BLACKLIST.any? { |range| range.include?(ip) }`). Target: >= 30x faster.
#
#   ruby -Ilib benches/ruby/egress.rb
require "portcullis"
require "benchmark"
require "ipaddr"
require "uri"

# The alternative, inlined so the comparison needs no gem.
module RubySsrfCheck
  IPV4_BLACKLIST = %w[
    0.0.0.0/8 10.0.0.0/8 100.64.0.0/10 127.0.0.0/8 169.254.0.0/16 172.16.0.0/12 192.0.0.0/24
    192.0.2.0/24 192.88.99.0/24 192.168.0.0/16 198.18.0.0/15 198.51.100.0/24 203.0.113.0/24
    224.0.0.0/4 240.0.0.0/4 255.255.255.255/32
  ].map { |r| IPAddr.new(r) }.freeze
  IPV6_BLACKLIST = (%w[
    ::1/128 ::/128 ::ffff:0:0/96 64:ff9b::/96 100::/64 2001::/32 2001:10::/28 2001:db8::/32
    fc00::/7 fe80::/10 fec0::/10 ff00::/8 2002::/16
  ].map { |r| IPAddr.new(r) } + IPV4_BLACKLIST.map(&:ipv4_mapped)).freeze

  module_function

  def unsafe_ip_address?(ip)
    return IPV4_BLACKLIST.any? { |range| range.include?(ip) } if ip.ipv4?
    return IPV6_BLACKLIST.any? { |range| range.include?(ip) } if ip.ipv6?

    true
  end

  def check!(url, resolver:)
    uri = URI(url)
    raise ArgumentError, "scheme" unless %w[http https].include?(uri.scheme)
    raise ArgumentError, "port" unless [80, 443].include?(uri.port)

    host = uri.hostname
    addresses = begin
      [IPAddr.new(host)]
    rescue IPAddr::InvalidAddressError
      resolver.call(host).map { |a| IPAddr.new(a) }
    end
    raise ArgumentError, "no addresses" if addresses.empty?
    raise ArgumentError, "unsafe" if addresses.any? { |ip| unsafe_ip_address?(ip) }

    addresses
  end
end

ROUNDS = 9

def ns_per_call(iterations)
  GC.start
  t = Benchmark.realtime { iterations.times { yield } }
  t / iterations * 1e9
end

# Rounds alternate between the two sides so machine load drifts hit both alike; reports
# the median time of each side and the median of the per-round ratios.
def compare(iterations, theirs_iterations, ours, theirs)
  rounds = Array.new(ROUNDS) do
    a = ns_per_call(iterations, &ours)
    b = theirs ? ns_per_call(theirs_iterations, &theirs) : nil
    [a, b, b && b / a]
  end
  median = ->(xs) { xs.sort[xs.size / 2] }
  [median.(rounds.map { |r| r[0] }), theirs && median.(rounds.map { |r| r[1] }), theirs && median.(rounds.map { |r| r[2] })]
end

policy = Portcullis::EgressPolicy.new(schemes: %w[http https], allow_cidrs: ["10.20.0.0/16"])
stub = ->(_host) { ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"] }
literal = "https://93.184.216.34/v1/items?page=2"
named = "https://api.example.com/v1/items?page=2"
addresses = %w[93.184.216.34 10.20.1.2 192.168.1.1 169.254.169.254 2606:4700:4700::1111 ::ffff:127.0.0.1]

# Sanity: both sides agree on the verdicts being timed.
raise "portcullis" unless policy.check!(literal).addresses == ["93.184.216.34"]
raise "ruby" unless RubySsrfCheck.check!(literal, resolver: stub).size == 1

n = 20_000
rows = []
rows << ["check! IP-literal URL",
         *compare(n, n / 10, -> { policy.check!(literal) }, -> { RubySsrfCheck.check!(literal, resolver: stub) })]
rows << ["check! name, stub resolver (2 answers)",
         *compare(n, n / 10, -> { policy.check!(named, resolver: stub) }, -> { RubySsrfCheck.check!(named, resolver: stub) })]
rows << ["IP classification (6 mixed addresses)",
         *compare(n / 2, n / 20, -> { addresses.each { |a| policy.allowed_ip?(a) } },
                  -> { addresses.each { |a| RubySsrfCheck.unsafe_ip_address?(IPAddr.new(a)) } })]
rows << ["allowed? on a denied URL (http://2130706433/)",
         *compare(n, 0, -> { policy.allowed?("http://2130706433/") }, nil)]

puts "Ruby #{RUBY_VERSION}, #{ROUNDS} alternating rounds, median ns per call, median of per-round ratios"
puts format("%-48s %14s %14s %8s", "benchmark", "portcullis", "pure Ruby", "ratio")
rows.each do |name, ours, theirs, ratio|
  puts format("%-48s %14.0f %14s %8s", name, ours, theirs ? format("%.0f", theirs) : "-",
              ratio ? format("%.1fx", ratio) : "-")
end

# frozen_string_literal: true

# Portcullis::TrustStore#verify versus OpenSSL::X509::Store#verify on the same chains
# (root -> intermediate -> leaf), P-256 and RSA-2048, one process, interleaved rounds.
#
# Cold: a TrustStore with cache_size: 0, so every call parses and verifies the whole path.
# Hit:  a TrustStore with the default cache, warmed with the same leaf and chain.
# OpenSSL has no verification cache: its one number is compared with both.
# Two input forms, both sides given the same thing:
#   objects - OpenSSL::X509::Certificate objects parsed from DER, exactly what Puma hands
#             over (MiniSSL::Socket#peercert is OpenSSL::X509::Certificate.new(raw));
#             Portcullis pays for #to_der on each call (about 0.35 us: OpenSSL keeps the
#             parsed encoding).
#   signed  - the objects the test CA just built and signed in this process. OpenSSL has
#             no cached encoding for those, so each #to_der re-encodes the whole
#             certificate (about 3 us). Shown for completeness; no server hands these over.
#   pem     - PEM strings (what nginx/ALB headers carry); OpenSSL must parse them into
#             certificate objects first, Portcullis takes the strings as they are.
require "portcullis"
require "openssl"
require_relative "../../spec/support/pki"

ROUNDS = Integer(ENV.fetch("ROUNDS", 15))

def per_op_us(iterations)
  t = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  iterations.times { yield }
  (Process.clock_gettime(Process::CLOCK_MONOTONIC) - t) * 1e6 / iterations
end

def median(values) = values.sort[values.size / 2]

def bench(label, key)
  root = TestPKI::CA.root("Bench Root", key: key)
  inter = root.intermediate("Bench Intermediate", key: key)
  leaf = inter.issue(cn: "bench-client", key: key, uris: ["spiffe://example.org/ns/bench/sa/client"])
  at = Time.utc(2025, 6, 1)

  cold = Portcullis::TrustStore.new(ca: root.pem, cache_size: 0)
  warm = Portcullis::TrustStore.new(ca: root.pem)
  ossl = OpenSSL::X509::Store.new
  ossl.add_cert(root.cert)
  ossl.purpose = OpenSSL::X509::PURPOSE_SSL_CLIENT
  ossl.time = at

  # As Puma builds them: parsed from the DER the peer sent.
  leaf_obj = OpenSSL::X509::Certificate.new(leaf.cert.to_der)
  chain = [OpenSSL::X509::Certificate.new(inter.cert.to_der)]
  signed_chain = [inter.cert]
  raise "portcullis refused" unless cold.verify(leaf_obj, chain: chain, at: at).common_name == "bench-client"
  warm.verify(leaf_obj, chain: chain, at: at)
  raise "openssl refused: #{ossl.error_string}" unless ossl.verify(leaf_obj, chain)

  leaf_pem = leaf.pem
  chain_pem = [inter.pem]
  forms = {
    "objects" => {
      openssl: -> { ossl.verify(leaf_obj, chain) },
      cold: -> { cold.verify(leaf_obj, chain: chain, at: at) },
      hit: -> { warm.verify(leaf_obj, chain: chain, at: at) }
    },
    "signed" => {
      openssl: -> { ossl.verify(leaf.cert, signed_chain) },
      cold: -> { cold.verify(leaf.cert, chain: signed_chain, at: at) },
      hit: -> { warm.verify(leaf.cert, chain: signed_chain, at: at) }
    },
    "pem" => {
      openssl: lambda {
        ossl.verify(OpenSSL::X509::Certificate.new(leaf_pem), chain_pem.map { |p| OpenSSL::X509::Certificate.new(p) })
      },
      cold: -> { cold.verify(leaf_pem, chain: chain_pem, at: at) },
      hit: -> { warm.verify(leaf_pem, chain: chain_pem, at: at) }
    }
  }
  forms.each do |form, calls|
    raise "openssl refused" unless calls[:openssl].call
    calls[:hit].call
    samples = { cold: [], hit: [], openssl: [] }
    ROUNDS.times do
      samples[:openssl] << per_op_us(300, &calls[:openssl])
      samples[:cold] << per_op_us(300, &calls[:cold])
      samples[:hit] << per_op_us(3000, &calls[:hit])
    end
    m = samples.transform_values { |v| median(v) }
    puts format("%-9s %-8s openssl %7.2f us | portcullis cold %7.2f us (%5.2fx faster) | hit %6.2f us (%5.1fx faster)",
                label, form, m[:openssl], m[:cold], m[:openssl] / m[:cold], m[:hit], m[:openssl] / m[:hit])
  end
end

puts "Ruby #{RUBY_VERSION}, #{OpenSSL::OPENSSL_LIBRARY_VERSION}; medians of #{ROUNDS} interleaved rounds"
bench("P-256", :ec)
bench("RSA-2048", :rsa)

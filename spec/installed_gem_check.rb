# frozen_string_literal: true

# Run by `make gem-test` against the gem installed into a scratch GEM_HOME (not ../lib).
# Only the scratch GEM_HOME is searched: the gem must load without any other gem (Rack
# adapters are autoloaded on first use).
require "portcullis"
abort "loaded from the source tree, not the installed gem" if $LOADED_FEATURES.grep(%r{/work/.*/lib/portcullis\.rb}).any? && !ENV["GEM_HOME"]
loaded = $LOADED_FEATURES.grep(/portcullis\.so/).first
puts "installed gem loads: Portcullis #{Portcullis::VERSION} from #{loaded}"
# The platform gem must load its prebuilt library for this Ruby (lib/portcullis/X.Y/).
expected = ENV["PORTCULLIS_EXPECT_SO"]
abort "loaded #{loaded}, expected a path matching #{expected}" if expected && !loaded.to_s.match?(Regexp.new(expected))
if ENV["PORTCULLIS_NO_RUST"] && ENV["PATH"].split(":").any? { |d| File.executable?(File.join(d, "cargo")) }
  abort "cargo is on PATH; this check must run without Rust"
end

# Mint a chain with Ruby's OpenSSL and verify it through the installed extension.
require_relative "support/pki"
root = TestPKI::CA.root("Gem Check Root")
inter = root.intermediate("Gem Check Intermediate")
leaf = inter.issue(cn: "gem-check", uris: ["spiffe://example.org/gem-check"])
store = Portcullis::TrustStore.new(ca: root.pem)
identity = store.verify(leaf.cert, chain: [inter.cert])
abort "unexpected identity #{identity.inspect}" unless identity.spiffe_id == "spiffe://example.org/gem-check"
begin
  Portcullis::TrustStore.new(ca: TestPKI::CA.root("Stranger").pem).verify(leaf.cert, chain: [inter.cert])
  abort "a chain from a foreign CA verified"
rescue Portcullis::CertificateError => e
  abort "wrong code #{e.code}" unless e.code == "cert.unknown_issuer"
end
puts "installed gem verifies: #{identity.to_h}"

# frozen_string_literal: true

require_relative "lib/portcullis/version"

Gem::Specification.new do |spec|
  spec.name = "portcullis"
  spec.version = Portcullis::VERSION
  spec.authors = ["Portcullis developers"]
  spec.summary = "mTLS identities, egress allowlisting, confined files and argv-only commands for Rack apps"
  spec.description = "A Rust core with a Ruby API and Rack middleware: verifies client certificate chains, " \
                     "authorizes identities, pins outbound connections to checked IPs, opens files strictly " \
                     "beneath a root and builds program argv without a shell."
  spec.license = "Apache-2.0"
  spec.required_ruby_version = ">= 3.1"

  # The whole Cargo workspace ships so RubyGems' cargo builder can build (with --locked).
  spec.files = Dir[
    "lib/**/*.rb", "README.md", "Cargo.toml", "Cargo.lock",
    "crates/**/*.{rs,toml}", "ext/**/*.{rs,toml}", "benches/Cargo.toml", "benches/src/**/*.rs",
    "benches/benches/**/*.rs"
  ].reject { |f| f.include?("/target/") || f.include?("/fuzz/") }
  spec.require_paths = ["lib"]
  spec.extensions = ["ext/portcullis/Cargo.toml"]
  spec.metadata["cargo_crate_name"] = "portcullis"
end

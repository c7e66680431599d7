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
  spec.require_paths = ["lib"]
  ruby_files = Dir["lib/**/*.{rb,rake,tt}"]
  if (native = ENV["PORTCULLIS_NATIVE_GEM"])
    # `make native-gem`: the x86_64-linux platform gem, one prebuilt extension per Ruby
    # minor version (lib/portcullis/3.1/, lib/portcullis/3.3/); installs without Rust.
    spec.platform = "x86_64-linux"
    versions = native.split(",")
    spec.files = ruby_files + ["README.md"] + versions.map { |v| "lib/portcullis/#{v}/portcullis.so" }
    spec.required_ruby_version = [">= #{versions.min}", "< #{versions.max.split('.').then { |a, b| "#{a}.#{b.to_i + 1}" }}"]
  else
    # The source gem ships the whole Cargo workspace; ext/portcullis/extconf.rb builds it with
    # cargo (--locked) and removes the build tree afterwards.
    spec.files = ruby_files + Dir[
      "README.md", "Cargo.toml", "Cargo.lock",
      "crates/**/*.{rs,toml}", "ext/**/*.{rs,toml}", "ext/portcullis/extconf.rb", "benches/Cargo.toml",
      "benches/src/**/*.rs", "benches/benches/**/*.rs"
    ].reject { |f| f.include?("/target/") || f.include?("/fuzz/") }
    spec.extensions = ["ext/portcullis/extconf.rb"]
  end
end

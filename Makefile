# Portcullis build. `make test` is what CI runs (.ci/run) on a fresh Debian 12 machine as root.
SHELL := /bin/bash
DEB_PACKAGES := ruby-dev ruby-rspec ruby-rack ruby-rack-test puma rake ruby-benchmark-ips \
                ruby-railties ruby-actionpack libclang-dev pkg-config \
                ruby-faraday ruby-httparty ruby-rest-client ruby-excon ruby-http ruby-httpclient \
                ruby-net-http-persistent ruby-redis ruby-typhoeus ruby-mail iproute2 curl
CARGO ?= cargo
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
EXT_SO := lib/portcullis/portcullis.so
RSPEC ?= rspec
# The Rust-service integrations (crates/portcullis features; never in the gem build).
SERVICE_FEATURES := reqwest,hyper,axum

.PHONY: all test test-modern native-gem deps toolchain ext cli rust-test lint rspec gem-test bench bench-rust bench-ruby demo fuzz clean

all: ext

# Install whatever Debian packages are missing (apt-get update first, so a new machine works).
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make: installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

toolchain:
	@$(CARGO) clippy --version >/dev/null 2>&1 || rustup component add clippy
	@$(CARGO) fmt --version >/dev/null 2>&1 || rustup component add rustfmt

# Build the release extension and copy it where lib/portcullis.rb looks first.
ext: deps
	$(CARGO) build --release -p portcullis-ext
	cp $(TARGET_DIR)/release/libportcullis.so $(EXT_SO)

# The `portcullis` command (check, verify, url, path, command, pki demo, exec, lockdown): target/release/portcullis
cli:
	$(CARGO) build --release -p portcullis-cli

rust-test:
	$(CARGO) test --workspace
	$(CARGO) test -p portcullis --features $(SERVICE_FEATURES) --test services_reqwest --test services_hyper --test services_axum
	$(CARGO) test -p portcullis --features $(SERVICE_FEATURES) --doc -- egress::reqwest egress::hyper tower
	@# the x509-limbo summary, shown even when green (the run above captures it)
	@$(CARGO) test -q -p portcullis --test limbo -- --nocapture 2>/dev/null | grep -E '^ +[a-z0-9]+ +[0-9]+ passed|^limbo:'

lint: toolchain
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p portcullis --all-targets --features $(SERVICE_FEATURES) -- -D warnings
	$(CARGO) clippy -p portcullis-benches --all-targets --features services -- -D warnings
	$(CARGO) fmt --all --check

rspec: ext cli   # spec/demo_spec.rb runs the demo server under target/release/portcullis exec
	$(RSPEC)

# Build the gem, install it into a scratch GEM_HOME with RubyGems' cargo builder, and
# verify a chain through the installed copy.
gem-test: deps
	rm -rf tmp/gem && mkdir -p tmp/gem
	gem build portcullis.gemspec -o tmp/gem/portcullis.gem
	GEM_HOME=$(CURDIR)/tmp/gem/home gem install --local --no-document tmp/gem/portcullis.gem
	@# the build tree must not stay in GEM_HOME (extconf.rb builds in a temp dir and removes it)
	@leftover=$$(find tmp/gem/home -name '*.rlib' -o -name '*.rmeta' -o -type d -name incremental | head -3); \
	  if [ -n "$$leftover" ]; then echo "gem-test: cargo build tree left in GEM_HOME: $$leftover"; exit 1; fi; \
	  echo "gem-test: GEM_HOME holds $$(du -sh tmp/gem/home | cut -f1), no build tree"
	cd tmp && GEM_HOME=$(CURDIR)/tmp/gem/home GEM_PATH=$(CURDIR)/tmp/gem/home ruby ../spec/installed_gem_check.rb

test: deps toolchain ext rust-test lint rspec gem-test
	@echo "make test: all green"

# The RSpec suite on Debian 13 (Ruby 3.3, Rack 3.1, Rails 7.2, Puma 6.6) in a debootstrapped
# root under tmp/trixie (TRIXIE_ROOT to move it), reused when present. See scripts/test-modern.sh.
test-modern:
	DEB_PACKAGES="$(DEB_PACKAGES)" scripts/test-modern.sh
	DEB_PACKAGES="$(DEB_PACKAGES)" scripts/native-gem.sh

# The x86_64-linux platform gem (prebuilt for Ruby 3.1 and 3.3), installed and checked on
# both without Rust: tmp/native/portcullis-x86_64-linux.gem. Needs the trixie root.
native-gem: deps
	DEB_PACKAGES="$(DEB_PACKAGES)" scripts/native-gem.sh

bench: bench-rust bench-ruby

bench-rust:
	$(CARGO) bench -p portcullis-benches --features services

bench-ruby: ext cli   # benches/ruby/lockdown.rb runs Puma under target/release/portcullis
	@for f in benches/ruby/*.rb; do echo "== $$f"; ruby -Ilib $$f || exit 1; done

demo: ext cli   # the demo server runs under target/release/portcullis exec
	ruby -Ilib examples/demo/run.rb

# Every cargo-fuzz target for FUZZ_SECONDS each (stable toolchain with RUSTC_BOOTSTRAP=1).
FUZZ_SECONDS ?= 60
fuzz:
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install cargo-fuzz
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh

clean:
	$(CARGO) clean
	rm -rf tmp $(EXT_SO)

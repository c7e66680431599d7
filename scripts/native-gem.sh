#!/usr/bin/env bash
# `make native-gem`: the x86_64-linux platform gem with prebuilt extensions for Ruby 3.1
# (built on this Debian 12 host) and Ruby 3.3 (built in the trixie root, see
# scripts/trixie-root.sh), then installed into fresh GEM_HOMEs on both, with no Rust on
# PATH, and checked (spec/installed_gem_check.rb loads lib/portcullis/X.Y/ and verifies a chain).
set -euo pipefail
# shellcheck source=scripts/trixie-root.sh
source "$(dirname "$0")/trixie-root.sh"
cd "$SRC"
OUT=$SRC/tmp/native
rm -rf "$OUT" && mkdir -p "$OUT"

host_ruby=$(ruby -e 'print RUBY_VERSION[/\A\d+\.\d+/]')
cargo build --release -p portcullis-ext
mkdir -p "lib/portcullis/$host_ruby"
cp "${CARGO_TARGET_DIR:-target}/release/libportcullis.so" "lib/portcullis/$host_ruby/portcullis.so"

copy_tree
build_ext_in_root
root_ruby=$(in_root ruby -e 'print RUBY_VERSION[/\A\d+\.\d+/]')
mkdir -p "lib/portcullis/$root_ruby"
cp "$ROOT/src/lib/portcullis/portcullis.so" "lib/portcullis/$root_ruby/portcullis.so"

PORTCULLIS_NATIVE_GEM="$host_ruby,$root_ruby" gem build portcullis.gemspec -o "$OUT/portcullis-x86_64-linux.gem"
size=$(du -k "$OUT/portcullis-x86_64-linux.gem" | cut -f1)
echo "native-gem: $OUT/portcullis-x86_64-linux.gem (${size} KiB; Ruby $host_ruby and $root_ruby)"

# Install and check on the host, without Rust.
env -i HOME="$HOME" PATH=/usr/local/bin:/usr/bin:/bin GEM_HOME="$OUT/home" GEM_PATH="$OUT/home" \
  gem install --local --no-document "$OUT/portcullis-x86_64-linux.gem"
(cd "$OUT" && env -i HOME="$HOME" PATH=/usr/local/bin:/usr/bin:/bin GEM_HOME="$OUT/home" GEM_PATH="$OUT/home" \
  PORTCULLIS_NO_RUST=1 PORTCULLIS_EXPECT_SO="/lib/portcullis/$host_ruby/portcullis\\.so\$" \
  ruby "$SRC/spec/installed_gem_check.rb")

# And in the trixie root, also without Rust.
cp "$OUT/portcullis-x86_64-linux.gem" "$ROOT/tmp/portcullis-x86_64-linux.gem"
in_root env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin bash -euo pipefail -c "
  rm -rf /tmp/native-home
  GEM_HOME=/tmp/native-home GEM_PATH=/tmp/native-home gem install --local --no-document /tmp/portcullis-x86_64-linux.gem
  cd /tmp && GEM_HOME=/tmp/native-home GEM_PATH=/tmp/native-home PORTCULLIS_NO_RUST=1 \
    PORTCULLIS_EXPECT_SO='/lib/portcullis/$root_ruby/portcullis\\.so\$' ruby /src/spec/installed_gem_check.rb
"
echo "native-gem: installed and checked on Ruby $host_ruby (host) and $root_ruby (trixie), without Rust"

#!/usr/bin/env bash
# Sourced by scripts/test-modern.sh and scripts/native-gem.sh: a Debian 13 "trixie" root
# (Ruby 3.3, Rack 3.1, Rails 7.2, Puma 6.6) debootstrapped into TRIXIE_ROOT (default
# tmp/trixie) and reused when present; `in_root CMD…` runs a command inside it with /proc,
# /dev, /sys and the host's Rust toolchain (~/.cargo, ~/.rustup) mounted, in a private mount
# namespace whose mounts disappear with it; `copy_tree` puts a fresh copy of the work tree
# at /src in the root, so the host's lib/portcullis/portcullis.so (Ruby 3.1) is never touched.
set -euo pipefail
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=${TRIXIE_ROOT:-$SRC/tmp/trixie}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# What the suite needs inside the root: the host's DEB_PACKAGES (passed by make) plus the
# build tools a minbase root lacks. util-linux/iproute2 give `unshare -n` and `ip link`.
PACKAGES="ruby ruby-dev gcc g++ libc6-dev make pkg-config ca-certificates util-linux iproute2 procps openssl git openssh-client curl \
${DEB_PACKAGES:-ruby-rspec ruby-rack ruby-rack-test puma rake ruby-railties ruby-actionpack libclang-dev}"
# Packages that exist on bookworm's host list but must not go into the root by that name.
PACKAGES=$(tr ' ' '\n' <<<"$PACKAGES" | grep -v '^ruby-benchmark-ips$' | sort -u | tr '\n' ' ')
STAMP="$ROOT/.portcullis-packages"

command -v debootstrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap; }

if [ ! -x "$ROOT/usr/bin/apt-get" ] || [ ! -e "$ROOT/.portcullis-bootstrapped" ]; then
  echo "test-modern: debootstrap trixie into $ROOT"
  rm -rf "$ROOT"
  mkdir -p "$SRC/tmp"
  mkdir -p "$(dirname "$ROOT")"
  debootstrap --variant=minbase trixie "$ROOT" "$MIRROR" >"$SRC/tmp/debootstrap.log" 2>&1 ||
    { tail -20 "$SRC/tmp/debootstrap.log"; exit 1; }
  touch "$ROOT/.portcullis-bootstrapped"
fi

# Runs a command inside the root with /proc, /dev, /sys and the toolchain mounted.
in_root() {
  unshare -m --propagation private bash -euo pipefail -c '
    root=$1; shift
    mount -t proc proc "$root/proc"
    mount --rbind /dev "$root/dev"
    mount -t sysfs sys "$root/sys"
    mkdir -p "$root/root/.cargo" "$root/root/.rustup"
    mount --bind "$HOME/.cargo" "$root/root/.cargo"
    mount --bind "$HOME/.rustup" "$root/root/.rustup"
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    exec chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
      PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
  ' in_root "$ROOT" "$@"
}

if [ "$(cat "$STAMP" 2>/dev/null)" != "$PACKAGES" ]; then
  echo "test-modern: installing into the trixie root: $PACKAGES"
  # shellcheck disable=SC2086
  in_root sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null"
  echo "$PACKAGES" >"$STAMP"
fi

# minbase has no /etc/hosts; the suite resolves localhost.
[ -s "$ROOT/etc/hosts" ] || printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$ROOT/etc/hosts"

# A fresh copy of the tracked tree (plus uncommitted edits) at /src; the cargo target dir
# outside it (/var/cache/portcullis-target) survives between runs.
copy_tree() {
  rm -rf "$ROOT/src"
  mkdir -p "$ROOT/src" "$ROOT/var/cache/portcullis-target"
  (cd "$SRC" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$ROOT/src")
}

# Builds the extension against the root's Ruby 3.3 into /src/lib/portcullis/portcullis.so,
# and the `portcullis` command into /src/target/release (the demo spec runs it).
build_ext_in_root() {
  in_root bash -euo pipefail -c '
    cd /src
    export CARGO_TARGET_DIR=/var/cache/portcullis-target
    cargo build --release -p portcullis-ext
    cargo build --release -p portcullis-cli
    cp "$CARGO_TARGET_DIR/release/libportcullis.so" lib/portcullis/portcullis.so
    mkdir -p target/release
    cp "$CARGO_TARGET_DIR/release/portcullis" target/release/portcullis
  '
}


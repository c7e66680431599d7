#!/usr/bin/env bash
# `make test-modern`: the whole RSpec suite (the Rails app specs included) on Debian 13
# "trixie" (Ruby 3.3, Rack 3.1, Rails 7.2, Puma 6.6) in a debootstrapped root (see
# scripts/trixie-root.sh). The host stays Debian 12.
set -euo pipefail
# shellcheck source=scripts/trixie-root.sh
source "$(dirname "$0")/trixie-root.sh"
copy_tree
in_root bash -euo pipefail -c '
  echo "test-modern: $(ruby -v)"
  ruby -e "require \"rack\"; require \"rails\"; require \"puma\"; puts \"rack #{Rack.release}, rails #{Rails.version}, puma #{Puma::Const::PUMA_VERSION}\""
'
build_ext_in_root
in_root bash -euo pipefail -c 'cd /src && rspec'
echo "test-modern: all green (Ruby 3.3, Rack 3.1, Rails 7.2, Puma 6.6)"

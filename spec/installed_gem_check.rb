# frozen_string_literal: true

# Run by `make gem-test` against the gem installed into a scratch GEM_HOME (not ../lib).
require "portcullis"
abort "loaded from the source tree, not the installed gem" if $LOADED_FEATURES.grep(%r{/work/.*/lib/portcullis\.rb}).any? && !ENV["GEM_HOME"]
puts "installed gem loads: Portcullis #{Portcullis::VERSION} from #{$LOADED_FEATURES.grep(/portcullis\.so/).first}"

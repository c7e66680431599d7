# frozen_string_literal: true

require "open3"
require "rbconfig"

# The Rails integration boots a real (minimal) Rails 6.1 app. It runs in a child process so
# that ActiveSupport's core extensions do not change how the rest of the suite behaves.
RSpec.describe "Portcullis::Railtie in a Rails 6.1 app" do
  it "passes spec/rails_app/checks.rb in its own process" do
    checks = File.expand_path("rails_app/checks.rb", __dir__)
    rspec = Gem.bin_path("rspec-core", "rspec")
    out, status = Open3.capture2e(RbConfig.ruby, rspec, "--options", "/dev/null", "--format", "documentation", checks,
                                  chdir: File.expand_path("..", __dir__))
    expect(status.success?).to be(true), out
    expect(out).to match(/\b[1-9]\d* examples, 0 failures/)
  end
end

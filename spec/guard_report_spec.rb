# frozen_string_literal: true

require_relative "spec_helper"

RSpec.describe "Portcullis.guard! report mode and events" do
  it "reports without blocking, keeps the floor, deduplicates, notifies, and does not recurse" do
    results = GuardChild.run(<<~'RUBY')
      require "active_support"
      require "active_support/notifications"
      require "net/http"
      server = CountingServer.new
      events = []
      notified = []
      ActiveSupport::Notifications.subscribe(/\.portcullis\z/) { |name, *, payload| notified << [name, payload[:code]] }
      # A subscriber that itself connects (to a denied address) must not recurse.
      subscriber = lambda do |event|
        events << event
        TCPSocket.new("127.0.0.2", server.port).close rescue nil
      end
      Portcullis.guard!(mode: :report, on_violation: subscriber)
      result(:loopback, outcome { Net::HTTP.get(URI("http://127.0.0.1:#{server.port}/")) })
      2.times { result(:again, outcome { TCPSocket.new("127.0.0.1", server.port).close; :connected }) }
      result(:metadata, outcome { TCPSocket.new("169.254.169.254", 80) })
      result(:zero, outcome { TCPSocket.new("0.0.0.0", server.port) })
      result(:spawn, outcome { system("true; true") })
      result(:events, events.map { |e| e.transform_values { |v| v.is_a?(Symbol) ? v.to_s : v } })
      result(:notified, notified)
      result(:status, Portcullis.guard_status.slice(:mode, :counts))
    RUBY
    expect(results["loopback"]).to eq(["ok", "ok"])
    expect(results["again"]).to eq(["ok", "connected"])
    expect(results["metadata"]).to match(["refused", anything, "egress.metadata"])
    expect(results["zero"]).to match(["refused", anything, "egress.reserved_address"])
    expect(results["spawn"]).to eq(["ok", true])
    events = results["events"]
    first = events.first
    expect(first.keys).to include("kind", "action", "code", "host", "address", "port", "via", "callsite", "message")
    expect(first).to include("kind" => "egress", "action" => "reported", "code" => "egress.reserved_address",
                             "address" => "127.0.0.1")
    # Net::HTTP connects through Socket.tcp up to net-http 0.3 (Ruby 3.1), TCPSocket.open after (Ruby 3.3)
    expect(first["via"]).to eq("Socket#connect_nonblock").or eq("TCPSocket#initialize")
    expect(first["callsite"]).to start_with("-e:") # the script line, not Portcullis or net/http
    # dedup: the two identical TCPSocket.new calls from one line give one event
    same = events.select { |e| e["via"] == "TCPSocket#initialize" && e["address"] == "127.0.0.1" }
    expect(same).not_to be_empty
    expect(same.group_by { |e| [e["callsite"], e["port"]] }.values.map(&:size).max).to eq(1)
    # the subscriber's own connect to 127.0.0.2 was judged but produced no event (no recursion)
    expect(events.map { |e| e["address"] }).not_to include("127.0.0.2")
    expect(events.map { |e| [e["action"], e["code"]] }).to include(%w[refused egress.metadata], %w[reported command.shell_string])
    spawn_event = events.find { |e| e["kind"] == "spawn" }
    expect(spawn_event["host"]).to eq("true") # the program name only
    expect(results["notified"]).to include(["egress.portcullis", "egress.reserved_address"], ["spawn.portcullis", "command.shell_string"])
    expect(results["status"]["mode"]).to eq("report")
    expect(results["status"]["counts"]["egress"]["reported"]).to be >= 3
  end

  it "takes the policy by name from Portcullis.config" do
    results = GuardChild.run(<<~'RUBY')
      require "tmpdir"
      server = CountingServer.new
      dir = Dir.mktmpdir
      File.write(File.join(dir, "portcullis.toml"), "[egress.loopback]\nallow_cidrs = [\"127.0.0.1/32\"]\n")
      result(:unloaded, outcome { Portcullis.guard!(egress: "loopback") })
      Portcullis.config = Portcullis.load(File.join(dir, "portcullis.toml"))
      result(:unknown, outcome { Portcullis.guard!(egress: "nope") })
      Portcullis.guard!(egress: :loopback)
      result(:loopback, outcome { TCPSocket.new("127.0.0.1", server.port).close; :connected })
      result(:other, outcome { TCPSocket.new("127.0.0.2", server.port) })
    RUBY
    expect(results["unloaded"]).to match(["error", a_string_including("Portcullis.config is not loaded"), "config.missing_key"])
    expect(results["unknown"]).to match(["error", a_string_including("nope"), anything])
    expect(results["loopback"]).to eq(["ok", "connected"])
    expect(results["other"]).to match(["refused", anything, "egress.reserved_address"])
  end

  it "refuses unknown options with an error naming them" do
    results = GuardChild.run(<<~'RUBY', isolate: false)
      result(:mode, outcome { Portcullis.guard!(mode: :loud) })
      result(:spawn, outcome { Portcullis.guard!(spawn: :sometimes) })
      result(:programs, outcome { Portcullis.guard!(programs: [""]) })
      result(:egress, outcome { Portcullis.guard!(egress: 42) })
      result(:active, Portcullis::Guard.active?)
    RUBY
    expect(results["mode"]).to match(["error", a_string_including("mode \"loud\""), "guard.invalid"])
    expect(results["spawn"]).to match(["error", a_string_including("spawn \"sometimes\""), "guard.invalid"])
    expect(results["programs"]).to match(["error", anything, "guard.invalid"])
    expect(results["egress"][1]).to start_with("ArgumentError")
    expect(results["active"]).to be(false)
  end
end

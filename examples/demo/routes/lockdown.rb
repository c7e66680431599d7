# frozen_string_literal: true

require "uri"
require_relative "../escapes"

# GET /escape?try= — what a compromised request could do once it runs code in the server:
# read secrets, run a shell, reach other services, make the syscalls container escapes use.
# The server runs under `portcullis exec` (run.rb), so the kernel refuses each, whatever
# Ruby code or C extension makes the call. The route reports what the attempt raised.
module Demo
  LOCKED = ENV.fetch("PORTCULLIS_DEMO_LOCKDOWN", "on") != "off"

  route "GET", "/escape", permission: "status:read" do |request, _identity|
    name = request.params["try"].to_s
    next [404, "no such escape: #{name}"] unless LOCKDOWN_ESCAPES.key?(name)

    result = lockdown_escape(name)
    result == "ALLOWED" ? [500, "ALLOWED: #{name} worked"] : [200, "refused: #{result}"]
  end

  # Without the lockdown these would really happen (write a file outside, signal a
  # process), so the rows exist only when the server is locked.
  if LOCKED
    LOCKDOWN_REFUSALS.each do |name, (error, note)|
      call :viewer, "GET", "/escape?try=#{URI.encode_www_form_component(name)}",
           status: 200, outcome: "refused: #{error}", note: "#{name}: #{note}"
    end
  end
end

# A Rack app for the lockdown end-to-end test: `/` serves, `/thread` starts a thread,
# `/escape` tries every escape in lockdown_escapes.rb (a copy of examples/demo/escapes.rb)
# and reports, as JSON.
require "json"
require_relative "lockdown_escapes"

run lambda { |env|
  case env["PATH_INFO"]
  when "/"
    [200, { "content-type" => "text/plain" }, ["ok\n"]]
  when "/thread"
    [200, { "content-type" => "text/plain" }, [Thread.new { "thread ok\n" }.value]]
  when "/escape"
    [200, { "content-type" => "application/json" }, [JSON.generate(lockdown_escape_report)]]
  else
    [404, {}, []]
  end
}

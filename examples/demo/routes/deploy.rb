# frozen_string_literal: true

# GET /deploy?container= — the seed's `system("docker run #{params[:container]}")`, as a
# template: the request only picks a value from a fixed map, no shell ever runs, and no
# value can become an option. /bin/echo stands in for docker so the demo is harmless: its
# output is the argv docker would have received.
module Demo
  DEPLOY = Portcullis::Command.new("/bin/echo", ["run", "--rm", "--", :container],
                                   params: { container: { one_of: { "worker" => "worker:latest",
                                                                    "api" => "api:stable" } } },
                                   timeout: 5, max_output: 4096)

  route "GET", "/deploy", permission: "containers:deploy" do |request, _identity|
    result = DEPLOY.run(container: request.params["container"].to_s)
    if result.success?
      [200, "ran: #{result.stdout.strip}"]
    else
      [500, "exit #{result.status.inspect}#{' (timed out)' if result.timed_out?}"]
    end
  rescue Portcullis::CommandError => e
    [403, "refused: #{e.code}"]
  end

  call :deployer, "GET", "/deploy?container=worker",
       status: 200, outcome: "ran: run --rm -- worker:latest", note: "mapped to worker:latest, argv only"
  # The template refuses any value starting with "-" before the one_of lookup, so this is
  # option_injection, not invalid_value: the row asserts what the library really says.
  call :deployer, "GET", "/deploy?container=--privileged",
       status: 403, outcome: "command.option_injection", note: "starts with -: refused before the map lookup"
  # ";" is sent as %3B: Rack 2 splits query strings on ";" as well as "&", so a bare
  # "worker;id" would arrive as container=worker.
  call :workload, "GET", "/deploy?container=worker%3Bid",
       status: 403, outcome: "command.invalid_value", note: "worker;id: not in the map, and no shell"
  call :viewer, "GET", "/deploy?container=worker",
       status: 403, outcome: "authz.forbidden", note: "valid cert, no containers:deploy"
end

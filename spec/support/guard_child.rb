# frozen_string_literal: true

require "json"
require "open3"
require "rbconfig"

# Runs a guarded scenario in its own Ruby process (the guard's hooks are process-wide and
# must not leak into the rest of the suite), inside a fresh network namespace when
# `unshare -n` works: there, a refusal that failed could not send a packet off the machine.
module GuardChild
  LIB = File.expand_path("../../lib", __dir__)
  PRELUDE = <<~RUBY
    $LOAD_PATH.unshift #{LIB.inspect}
    require "portcullis"
    require "json"
    $results = {}
    def result(key, value) = $results[key.to_s] = value
    def outcome
      value = yield
      ["ok", value]
    rescue Exception => e
      chain = []
      cur = e
      while cur
        chain << cur.class.name
        cur = cur.cause
      end
      [chain.include?("Portcullis::EgressRefused") || chain.include?("Portcullis::SpawnRefused") ? "refused" : "error",
       "\#{e.class}: \#{e.message}"[0, 400], (e.respond_to?(:code) ? e.code : nil)]
    end
    # A loopback HTTP server counting the requests it answers.
    class CountingServer
      attr_reader :port, :hits
      def initialize(host = "127.0.0.1", &reply)
        @server = TCPServer.new(host, 0)
        @port = @server.addr[1]
        @hits = 0
        @reply = reply || ->(_req) { "HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\nok" }
        @thread = Thread.new do
          loop do
            client = @server.accept
            @hits += 1
            Thread.new(client) do |c|
              request = c.readpartial(65_536) rescue ""
              c.write(@reply.call(request))
              c.close
            rescue StandardError
              nil
            end
          end
        end
      end
    end
    at_exit { STDOUT.write("\\n@@RESULTS@@" + JSON.generate($results)) }
  RUBY

  def self.unshare?
    return @unshare unless @unshare.nil?

    @unshare = system("unshare", "-n", "sh", "-c", "ip link set lo up", out: File::NULL, err: File::NULL) ? true : false
  end

  # Runs `script`; returns the results Hash the script recorded with `result`.
  def self.run(script, isolate: true)
    cmd = [RbConfig.ruby, "-e", PRELUDE + script]
    cmd = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" "$@"', *cmd] if isolate && unshare?
    out, err, status = Open3.capture3(*cmd)
    marker = out.rindex("@@RESULTS@@")
    raise "guard child failed (#{status.inspect}):\n#{out}\n#{err}" unless marker

    JSON.parse(out[(marker + 11)..]).tap { |r| r["__stderr"] = err }
  end
end

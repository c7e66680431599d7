# frozen_string_literal: true

# Every escape the lockdown end-to-end tests try from inside a served request, and the
# report: escape name => "ALLOWED" or the exception class the kernel's refusal raised.
require "socket"

LOCKDOWN_ESCAPES = {
  "read /etc/shadow" => -> { File.read("/etc/shadow") },
  "read outside" => -> { File.read(ENV.fetch("OUTSIDE_FILE")) },
  "write outside" => -> { File.write(File.join(File.dirname(ENV.fetch("OUTSIDE_FILE")), "evil"), "x") },
  "exec /bin/sh" => -> { pid = Process.spawn("/bin/sh", "-c", "exit 0"); Process.wait(pid); raise "ran" if $?.success? },
  # a shell string: nil means the shell could not be executed; false would mean it ran
  "system string" => -> { r = system("id > /dev/null"); raise Errno::EACCES, "sh not executed" if r.nil?; raise "ran: #{r}" },
  "connect other port" => -> { TCPSocket.new("127.0.0.1", Integer(ENV.fetch("CLOSED_PORT"))).close },
  "mptcp" => -> { Socket.new(:INET, :STREAM, 262) },
  "raw socket" => -> { Socket.new(:INET, :RAW, 1) },
  "packet socket" => -> { Socket.new(Socket::AF_PACKET, :RAW, 0) },
  "unshare(CLONE_NEWUSER)" => -> { syscall(272, 0x10000000) },
  "mount" => -> { syscall(165, +"none", +"/tmp", +"tmpfs", 0, 0) },
  "ptrace" => -> { syscall(101, 0, 0, 0, 0) },
  "keyctl" => -> { syscall(250, 0, 0, 0, 0) },
  "bpf" => -> { syscall(321, 0, 0, 0) },
  "io_uring_setup" => -> { syscall(425, 8, 0) },
  "userfaultfd" => -> { syscall(323, 0) },
  "open_by_handle_at" => -> { syscall(304, -100, 0, 0) },
  "kill outside" => -> { Process.kill(0, Integer(ENV.fetch("OUTSIDE_PID"))) },
  "abstract unix outside" => -> { Socket.unix("\0" + ENV.fetch("ABSTRACT_NAME")).close },
}.freeze

def lockdown_escape_report
  LOCKDOWN_ESCAPES.to_h do |name, attempt|
    attempt.call
    [name, "ALLOWED"]
  rescue SystemCallError => e
    [name, e.class.name]
  rescue => e # rubocop:disable Style/RescueStandardError
    [name, "#{e.class}: #{e.message}"]
  end
end

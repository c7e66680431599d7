# frozen_string_literal: true

# Every escape a compromised request might try from inside a locked-down server, with the
# refusal the kernel must give. `make demo` tries each from a route (routes/lockdown.rb); the
# `portcullis exec` end-to-end tests (crates/portcullis-cli/tests/exec.rs) copy this file
# into their Rack and Rails apps. What lies "outside" comes from the environment, set by
# whoever started the server (it cannot make these itself once locked):
#   OUTSIDE_FILE   a readable file beneath no `read` path (its directory is not writable)
#   CLOSED_PORT    a loopback port something listens on, not in `connect_tcp`
#   OUTSIDE_PID    a process outside the sandbox
#   ABSTRACT_NAME  an abstract UNIX socket something outside listens on
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

# What each escape must raise under the lockdown, and which layer refuses it.
LOCKDOWN_REFUSALS = {
  "read /etc/shadow" => ["Errno::EACCES", "Landlock: not beneath `read`"],
  "read outside" => ["Errno::EACCES", "Landlock: not beneath `read`"],
  "write outside" => ["Errno::EACCES", "Landlock: not beneath `write`"],
  "exec /bin/sh" => ["Errno::EACCES", "Landlock: not in `exec`"],
  "system string" => ["Errno::EACCES", "Landlock: system() needs /bin/sh"],
  "connect other port" => ["Errno::EACCES", "connect supervisor and Landlock: not allowed"],
  "mptcp" => ["Errno::EPERM", "seccomp: MPTCP bypasses Landlock's TCP rules"],
  "raw socket" => ["Errno::EPERM", "seccomp: raw IP (CAP_NET_RAW)"],
  "packet socket" => ["Errno::EPERM", "seccomp: AF_PACKET"],
  "unshare(CLONE_NEWUSER)" => ["Errno::EPERM", "seccomp: new namespaces"],
  "mount" => ["Errno::EPERM", "seccomp: the mount family"],
  "ptrace" => ["Errno::EPERM", "seccomp: ptrace"],
  "keyctl" => ["Errno::EPERM", "seccomp: kernel keyrings"],
  "bpf" => ["Errno::EPERM", "seccomp: bpf"],
  "io_uring_setup" => ["Errno::EPERM", "seccomp: io_uring bypasses the filter"],
  "userfaultfd" => ["Errno::EPERM", "seccomp: userfaultfd (exploit aid)"],
  "open_by_handle_at" => ["Errno::EPERM", "seccomp: the shocker escape"],
  "kill outside" => ["Errno::EPERM", "Landlock: signal scope"],
  "abstract unix outside" => ["Errno::EPERM", "connect supervisor and Landlock scope"],
}.freeze

# Tries one escape: "ALLOWED" if it worked, else the class of what the refusal raised.
def lockdown_escape(name)
  LOCKDOWN_ESCAPES.fetch(name).call
  "ALLOWED"
rescue SystemCallError => e
  e.class.name
rescue => e # rubocop:disable Style/RescueStandardError
  "#{e.class}: #{e.message}"
end

# Every escape => what happened.
def lockdown_escape_report
  LOCKDOWN_ESCAPES.keys.to_h { |name| [name, lockdown_escape(name)] }
end

# frozen_string_literal: true

require_relative "spec_helper"

# Raw socket paths, hostile address spellings, rebinding, TCP Fast Open, UDP, and code
# running on other threads, fibers and Ractors. Each scenario runs in a child process in
# its own network namespace (see spec/support/guard_child.rb).
RSpec.describe "Portcullis.guard! at the socket choke points" do
  it "refuses every spelling of loopback and 0.0.0.0 through TCPSocket.new and Socket.tcp" do
    results = GuardChild.run(<<~'RUBY')
      v4 = CountingServer.new("127.0.0.1")
      v6 = (CountingServer.new("::1") rescue nil)
      spellings = ["127.0.0.1", "127.1", "127.0.1", "0x7f.1", "0x7f000001", "2130706433", "0177.0.0.1",
                   "017700000001", "127.0.0.1.", "0", "0.0.0.0", "0x0", "::ffff:127.0.0.1", "::ffff:7f00:1",
                   "::1", "0:0:0:0:0:0:0:1", "::", "localhost", "LOCALHOST", "localhost."]
      port_for = ->(s) { s.include?(":") && s != "::ffff:127.0.0.1" && s != "::ffff:7f00:1" && v6 ? v6.port : v4.port }
      hits = -> { v4.hits + (v6 ? v6.hits : 0) }
      # Without the guard: which spellings reach a server? (the refusals below must matter)
      reach = spellings.select do |s|
        begin
          TCPSocket.new(s, port_for.(s)).close
          true
        rescue SystemCallError, SocketError
          # localhost resolves to both families; try the other server's port
          begin
            TCPSocket.new(s, s.include?(":") ? v4.port : (v6 ? v6.port : v4.port)).close
            true
          rescue SystemCallError, SocketError
            false
          end
        end
      end
      result(:reach, reach)
      sleep 0.05
      Portcullis.guard!
      before = hits.call
      spellings.each do |s|
        [v4.port, v6&.port].compact.each do |port|
          result("tcp #{s} #{port}", outcome { TCPSocket.new(s, port) })
          result("Socket.tcp #{s} #{port}", outcome { Socket.tcp(s, port, connect_timeout: 1) })
        end
      end
      sleep 0.05
      result(:hits_after, hits.call - before)
    RUBY
    expect(results["reach"].size).to be >= 15, results["reach"].inspect
    %w[127.0.0.1 0x7f.1 2130706433 0 0.0.0.0 ::ffff:127.0.0.1 ::1 localhost].each do |s|
      expect(results["reach"]).to include(s)
    end
    tried = results.select { |k, _| k.start_with?("tcp ", "Socket.tcp ") }
    expect(tried.size).to be >= 40
    tried.each do |key, outcome|
      # a spelling that does not parse is a resolver error, never a connect
      expect(outcome[0]).to eq("refused").or(satisfy { outcome[1].start_with?("SocketError", "Socket::ResolutionError") }), "#{key}: #{outcome}"
    end
    results["reach"].each do |s|
      expect(tried.select { |k, v| k.include?(" #{s} ") && v[0] == "refused" }).not_to be_empty, s
    end
    expect(results["tcp 0.0.0.0 #{results.keys.grep(/\Atcp 0.0.0.0 /).first.split.last}"][2]).to eq("egress.reserved_address")
    expect(results["hits_after"]).to eq(0)
  end

  it "refuses metadata and private addresses without a packet, and names address, host and rule" do
    results = GuardChild.run(<<~'RUBY')
      Portcullis.guard!
      %w[169.254.169.254 ::ffff:169.254.169.254 fd00:ec2::254 10.0.0.1 192.168.0.1 100.100.100.200].each do |ip|
        result("tcp #{ip}", outcome { TCPSocket.new(ip, 80) })
        result("addrinfo #{ip}", outcome { Addrinfo.tcp(ip, 80).connect })
      end
      result(:public, outcome { TCPSocket.new("93.184.216.34", 80) })
      result(:message, (TCPSocket.new("169.254.169.254", 80) rescue $!.message))
      result(:errno, (TCPSocket.new("169.254.169.254", 80) rescue [$!.is_a?(Errno::EACCES), $!.errno, $!.code]))
    RUBY
    %w[169.254.169.254 ::ffff:169.254.169.254 fd00:ec2::254 100.100.100.200].each do |ip|
      expect(results["tcp #{ip}"]).to match(["refused", anything, "egress.metadata"])
      expect(results["addrinfo #{ip}"]).to match(["refused", anything, "egress.metadata"])
    end
    expect(results["tcp 10.0.0.1"][2]).to eq("egress.reserved_address")
    # A public address is allowed: in the spec's network namespace it is simply unreachable.
    expect(results["public"][1]).to match(/ENETUNREACH|Network is unreachable/) if GuardChild.unshare?
    expect(results["message"]).to include("169.254.169.254:80", "169.254.169.254/32", "metadata")
    expect(results["errno"]).to eq([true, Errno::EACCES::Errno, "egress.metadata"])
  end

  it "applies host rules to names learnt from the resolver hooks" do
    results = GuardChild.run(<<~'RUBY')
      server = CountingServer.new
      # allow_hosts with loopback opened by CIDR: only the named host may connect.
      Portcullis.guard!(egress: Portcullis::EgressPolicy.new(allow_hosts: ["localhost"], allow_cidrs: ["127.0.0.0/8", "::1/128"]))
      # (before the name is learnt: afterwards 127.0.0.1 is attributed to localhost, best effort)
      result(:by_address, outcome { Socket.tcp("127.0.0.1", server.port) { :connected } })
      result(:by_name, outcome { Socket.tcp("localhost", server.port) { |s| s.write("x"); :connected } })
      Portcullis.guard!(egress: Portcullis::EgressPolicy.new(deny_hosts: ["localhost"], allow_cidrs: ["127.0.0.0/8", "::1/128"]))
      result(:denied_name, outcome { TCPSocket.new("localhost", server.port) })
      result(:denied_name_socket_tcp, outcome { Socket.tcp("localhost", server.port) })
    RUBY
    expect(results["by_name"]).to eq(["ok", "connected"])
    expect(results["by_address"]).to match(["refused", anything, "egress.host_not_allowed"])
    expect(results["denied_name"]).to match(["refused", anything, "egress.host_denied"])
    expect(results["denied_name_socket_tcp"]).to match(["refused", anything, "egress.host_denied"])
  end

  it "cannot be rebound: TCPSocket connects to the very answer it checked" do
    skip "needs `unshare -n` so the public answer cannot leave the machine" unless GuardChild.unshare?

    results = GuardChild.run(<<~'RUBY')
      server = CountingServer.new
      answers = [["93.184.216.34"], ["127.0.0.1"], ["93.184.216.34", "127.0.0.1"]]
      calls = 0
      Portcullis.guard!(resolver: ->(_host) { answers[(calls += 1) - 1] })
      result(:first, outcome { TCPSocket.new("rebind.test", server.port) })
      result(:second, outcome { TCPSocket.new("rebind.test", server.port) })
      result(:mixed, outcome { TCPSocket.new("rebind.test", server.port) })
      sleep 0.05
      result(:hits, server.hits)
      result(:calls, calls)
    RUBY
    expect(results["first"][1]).to match(/Network is unreachable/) # tried the public answer, nothing else
    expect(results["second"]).to match(["refused", a_string_including("rebind.test"), "egress.reserved_address"])
    expect(results["mixed"][1]).to match(/Network is unreachable/) # the private answer is dropped
    expect(results["hits"]).to eq(0)
    expect(results["calls"]).to eq(3)
  end

  it "judges sends that carry a destination: MSG_FASTOPEN and UDP" do
    results = GuardChild.run(<<~'RUBY')
      server = CountingServer.new
      udp = UDPSocket.new
      udp.bind("127.0.0.1", 0)
      udp_port = udp.addr[1]
      received = 0
      Thread.new { loop { udp.recvfrom(100); received += 1 } }
      dest = Socket.sockaddr_in(server.port, "127.0.0.1")
      # Ruby's sockets are non-blocking: without a cookie the kernel sends the SYN and
      # answers EINPROGRESS; either way a connection was opened without connect().
      fastopen = lambda do
        s = Socket.new(:INET, :STREAM)
        begin
          s.send("GET / HTTP/1.0\r\n\r\n", Socket::MSG_FASTOPEN, dest)
        rescue Errno::EINPROGRESS
          IO.select(nil, [s], nil, 2)
          s.write("GET / HTTP/1.0\r\n\r\n")
        end
        IO.select([s], nil, nil, 2)
        s.read
      ensure
        s&.close
      end
      udp_sends = {
        "UDPSocket#send host" => -> { UDPSocket.new.send("x", 0, "127.0.0.1", udp_port) },
        "UDPSocket#send sockaddr" => -> { UDPSocket.new.send("x", 0, Socket.sockaddr_in(udp_port, "127.0.0.1")) },
        "UDPSocket#connect" => -> { u = UDPSocket.new; u.connect("127.0.0.1", udp_port); u.send("x", 0) },
        "Socket#send" => -> { Socket.new(:INET, :DGRAM).send("x", 0, Socket.sockaddr_in(udp_port, "127.0.0.1")) },
        "Socket#sendmsg" => -> { Socket.new(:INET, :DGRAM).sendmsg("x", 0, Addrinfo.udp("127.0.0.1", udp_port)) },
        "Socket#sendmsg_nonblock" => -> { Socket.new(:INET, :DGRAM).sendmsg_nonblock("x", 0, Socket.sockaddr_in(udp_port, "127.0.0.1")) },
        "Socket#connect udp" => -> { s = Socket.new(:INET, :DGRAM); s.connect(Socket.sockaddr_in(udp_port, "127.0.0.1")); s.send("x", 0) }
      }
      result(:fastopen_unguarded, outcome(&fastopen))
      sleep 0.05
      result(:fastopen_unguarded_hits, server.hits)
      Portcullis.guard!
      hits = server.hits
      result(:fastopen, outcome(&fastopen))
      udp_sends.each { |name, call| result(name, outcome(&call)) }
      sleep 0.1
      result(:tcp_hits_guarded, server.hits - hits)
      result(:udp_received_guarded, received)
      Portcullis.guard!(egress: Portcullis::EgressPolicy.new(allow_cidrs: ["127.0.0.1/32"]))
      result(:fastopen_allowed, outcome(&fastopen))
      udp_sends.each { |name, call| result("allowed #{name}", outcome(&call)) }
      sleep 0.1
      result(:udp_received_allowed, received)
    RUBY
    expect(results["fastopen_unguarded"]).to match(["ok", a_string_including("ok")]) # MSG_FASTOPEN really connects
    expect(results["fastopen_unguarded_hits"]).to eq(1)
    expect(results["fastopen"]).to match(["refused", anything, "egress.reserved_address"])
    %w[UDPSocket#send\ host UDPSocket#send\ sockaddr UDPSocket#connect Socket#send Socket#sendmsg
       Socket#sendmsg_nonblock Socket#connect\ udp].each do |name|
      expect(results[name]).to match(["refused", anything, "egress.reserved_address"]), name
      expect(results["allowed #{name}"][0]).to eq("ok"), "#{name}: #{results["allowed #{name}"]}"
    end
    expect(results["tcp_hits_guarded"]).to eq(0)
    expect(results["udp_received_guarded"]).to eq(0)
    expect(results["fastopen_allowed"]).to match(["ok", a_string_including("ok")])
    expect(results["udp_received_allowed"]).to eq(7)
  end

  it "holds in new threads, fibers and Ractors, and leaves UNIX sockets alone" do
    results = GuardChild.run(<<~'RUBY')
      require "tmpdir"
      server = CountingServer.new
      Portcullis.guard!
      result(:thread, Thread.new { outcome { TCPSocket.new("127.0.0.1", server.port) } }.value)
      result(:fiber, Fiber.new { outcome { Socket.tcp("127.0.0.1", server.port) } }.resume)
      Warning[:experimental] = false
      result(:shareable, Ractor.shareable?(Portcullis.guard_status[:egress]))
      result(:ractor, Ractor.new(server.port) { |port|
        begin
          TCPSocket.new("127.0.0.1", port)
          "connected"
        rescue SystemCallError => e
          [e.class.name, e.code]
        end
      }.take)
      Dir.mktmpdir do |dir|
        path = File.join(dir, "s")
        unix = UNIXServer.new(path)
        Thread.new { c = unix.accept; c.write("unix ok"); c.close }
        result(:unix, outcome { UNIXSocket.new(path).read })
        path2 = File.join(dir, "t")
        unix2 = UNIXServer.new(path2)
        Thread.new { c = unix2.accept; c.write("socket ok"); c.close }
        result(:unix_socket, outcome { s = Socket.new(:UNIX, :STREAM); s.connect(Socket.sockaddr_un(path2)); s.read })
      end
      sleep 0.05
      result(:hits, server.hits)
    RUBY
    expect(results["thread"][0]).to eq("refused")
    expect(results["fiber"][0]).to eq("refused")
    expect(results["ractor"]).to eq(["Portcullis::EgressRefused", "egress.reserved_address"])
    expect(results["shareable"]).to be(true)
    expect(results["unix"]).to eq(["ok", "unix ok"])
    expect(results["unix_socket"]).to eq(["ok", "socket ok"])
    expect(results["hits"]).to eq(0)
  end

  it "hooks Ethon even when Typhoeus is loaded after guard!" do
    results = GuardChild.run(<<~'RUBY')
      server = CountingServer.new
      Portcullis.guard!
      require "typhoeus"
      result(:ethon, Portcullis.guard_status[:ethon])
      response = Typhoeus.get("http://127.0.0.1:#{server.port}/")
      result(:code, response.return_code.to_s)
      sleep 0.05
      result(:hits, server.hits)
      result(:refused, Portcullis.guard_status[:counts][:egress][:refused])
    RUBY
    expect(results).to include("ethon" => true, "code" => "couldnt_connect", "hits" => 0)
    expect(results["refused"]).to be >= 1
  end

  it "lets DNS reach the resolv.conf nameservers only" do
    results = GuardChild.run(<<~'RUBY')
      Portcullis.guard!(nameservers: ["127.0.0.53"])
      dns = UDPSocket.new
      dns.bind("127.0.0.53", 53) rescue (result(:bind, $!.message); exit)
      result(:to_nameserver, outcome { UDPSocket.new.send("q", 0, "127.0.0.53", 53) })
      result(:other_port, outcome { UDPSocket.new.send("q", 0, "127.0.0.53", 54) })
      result(:status_ns, Portcullis.guard_status[:nameservers])
    RUBY
    expect(results["to_nameserver"]).to eq(["ok", 1])
    expect(results["other_port"][0]).to eq("refused")
    expect(results["status_ns"]).to eq(["127.0.0.53"])
  end
end

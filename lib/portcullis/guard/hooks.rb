# frozen_string_literal: true

module Portcullis
  module Guard
    # The hooks themselves: prepended modules, each a few lines that hand the call's
    # destination or command to Portcullis::Guard and then call the original.
    module Hooks
      # TCPSocket.open/new resolve and connect in C; #initialize is the one Ruby-level
      # entry. Resolve once here, judge every answer, connect to the allowed addresses
      # (numeric, so C does not resolve again). Keyword arguments pass through untouched.
      module TCPSocketHook
        def initialize(host, port, *rest, **kw)
          addrs = Portcullis::Guard.pin!(host, port, :STREAM, "TCPSocket#initialize", kw[:resolv_timeout])
          last = nil
          addrs.each do |ip|
            return super(ip, port, *rest, **kw)
          rescue SystemCallError => e
            last = e
          end
          raise last
        end
      end

      module SocketHook
        def connect(addr)
          Portcullis::Guard.check_sockaddr!(addr, "Socket#connect")
          super
        end

        # Socket#connect_nonblock(addr, exception: true) in every Ruby since 2.3; an
        # explicit keyword costs no Hash per call.
        def connect_nonblock(addr, exception: true)
          Portcullis::Guard.check_sockaddr!(addr, "Socket#connect_nonblock")
          super
        end
      end

      # A send with a destination opens a path without connect (UDP, and TCP Fast Open
      # with MSG_FASTOPEN).
      module BasicSocketHook
        def send(mesg, flags, *rest)
          Portcullis::Guard.check_sockaddr!(rest[0], "BasicSocket#send") if rest.size == 1 && rest[0]
          super
        end

        def sendmsg(mesg, *rest)
          Portcullis::Guard.check_sockaddr!(rest[1], "BasicSocket#sendmsg") if rest[1]
          super
        end

        def sendmsg_nonblock(mesg, *rest, **kw)
          Portcullis::Guard.check_sockaddr!(rest[1], "BasicSocket#sendmsg_nonblock") if rest[1]
          super
        end
      end

      module UDPSocketHook
        def connect(host, port)
          addrs = Portcullis::Guard.pin!(host, port, :DGRAM, "UDPSocket#connect")
          super(same_family(addrs), port)
        end

        def send(mesg, flags, *rest)
          case rest.size
          when 2
            addrs = Portcullis::Guard.pin!(rest[0], rest[1], :DGRAM, "UDPSocket#send")
            return super(mesg, flags, same_family(addrs), rest[1])
          when 1
            Portcullis::Guard.check_sockaddr!(rest[0], "UDPSocket#send")
          end
          super
        end

        private

        def same_family(addrs)
          family = local_address.afamily
          addrs.find { |ip| (ip.include?(":") ? Socket::AF_INET6 : Socket::AF_INET) == family } || addrs.first
        end
      end

      # --- name attribution (best effort; address rules never depend on it) -----------

      module AddrinfoClassHook
        # ruby2_keywords: keywords (timeout: on 3.2+) pass through without a Hash per call.
        def getaddrinfo(node, *rest)
          list = super
          Portcullis::Guard.record(node, list, &:ip_address)
          list
        end
        ruby2_keywords :getaddrinfo

        %i[tcp udp ip].each do |name|
          define_method(name) do |host, *rest|
            ai = super(host, *rest)
            Portcullis::Guard.record(host, [ai], &:ip_address) if ai.ip?
            ai
          end
        end
      end

      module SocketClassHook
        def getaddrinfo(host, *rest)
          list = super
          Portcullis::Guard.record(host, list) { |entry| entry[3] }
          list
        end
      end

      module IPSocketClassHook
        def getaddress(host)
          ip = super
          Portcullis::Guard.record(host, [ip], &:itself)
          ip
        end
      end

      module ResolvHook
        def each_address(name)
          return super unless block_given?

          super do |addr|
            Portcullis::Guard.record(name.to_s, [addr], &:to_s)
            yield addr
          end
        end
      end

      # --- spawn -----------------------------------------------------------------------

      module KernelHook
        private

        def system(*args, **kw)
          Portcullis::Guard.check_command!(kw.empty? ? args : [*args, kw], "Kernel#system")
          super
        end

        def spawn(*args, **kw)
          Portcullis::Guard.check_command!(kw.empty? ? args : [*args, kw], "Kernel#spawn")
          super
        end

        def exec(*args, **kw)
          Portcullis::Guard.check_command!(kw.empty? ? args : [*args, kw], "Kernel#exec")
          super
        end

        def `(cmd)
          Portcullis::Guard.check_command!([cmd], "Kernel#`")
          super
        end

        def open(path, *rest, **kw, &block)
          Portcullis::Guard.check_pipe_path!(path, "Kernel#open")
          super
        end
      end

      module ProcessHook
        def spawn(*args, **kw)
          Portcullis::Guard.check_command!(kw.empty? ? args : [*args, kw], "Process.spawn")
          super
        end

        def exec(*args, **kw)
          Portcullis::Guard.check_command!(kw.empty? ? args : [*args, kw], "Process.exec")
          super
        end
      end

      module IOClassHook
        def popen(*args, **kw, &block)
          Portcullis::Guard.check_popen!(args, "IO.popen")
          super
        end

        %i[read write binread binwrite readlines foreach].each do |name|
          via = "IO.#{name}"
          define_method(name) do |path, *rest, **kw, &block|
            # Only IO itself opens pipes; File.read("|x") reads a file named "|x".
            Portcullis::Guard.check_pipe_path!(path, via) if equal?(::IO)
            super(path, *rest, **kw, &block)
          end
        end
      end

      module PTYHook
        def spawn(*args, **kw, &block)
          Portcullis::Guard.check_command!(kw.empty? ? args : [*args, kw], "PTY.spawn")
          super
        end

        def getpty(*args, **kw, &block)
          Portcullis::Guard.check_command!(kw.empty? ? args : [*args, kw], "PTY.getpty")
          super
        end
      end

      # libcurl resolves and connects in C: its open-socket callback hands every address
      # to the same check before a socket exists.
      module EthonHook
        def set_callbacks
          super
          Portcullis::Guard::Curl.attach(self)
        end
      end

      class << self
        def install
          return if @installed

          @installed = true
          ::TCPSocket.prepend(TCPSocketHook)
          ::Socket.prepend(SocketHook)
          ::BasicSocket.prepend(BasicSocketHook)
          ::UDPSocket.prepend(UDPSocketHook)
          ::Addrinfo.singleton_class.prepend(AddrinfoClassHook)
          ::Socket.singleton_class.prepend(SocketClassHook)
          ::IPSocket.singleton_class.prepend(IPSocketClassHook)
          require "resolv"
          ::Resolv.prepend(ResolvHook)
          ::Resolv::DNS.prepend(ResolvHook)
          ::Kernel.prepend(KernelHook)
          ::Kernel.singleton_class.prepend(KernelHook.dup.tap { |m| m.send(:public, :system, :spawn, :exec, :`, :open) })
          ::Process.singleton_class.prepend(ProcessHook)
          ::IO.singleton_class.prepend(IOClassHook)
          begin
            require "pty"
            ::PTY.singleton_class.prepend(PTYHook)
          rescue LoadError
            nil
          end
          install_ethon
        end

        def ethon_hooked?
          @ethon_hooked ? true : false
        end

        private

        # Ethon may load after guard!: hook Ethon::Easy the moment its class body opens.
        def install_ethon
          if defined?(::Ethon::Easy)
            hook_ethon
          else
            @ethon_trace = TracePoint.new(:class) do |tp|
              if tp.self.name == "Ethon::Easy"
                hook_ethon
                @ethon_trace.disable
              end
            end
            @ethon_trace.enable
          end
        end

        def hook_ethon
          require_relative "curl"
          ::Ethon::Easy.prepend(EthonHook)
          @ethon_hooked = true
        end
      end
    end
  end
end

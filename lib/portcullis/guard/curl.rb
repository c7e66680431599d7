# frozen_string_literal: true

require "ffi"

module Portcullis
  module Guard
    # CURLOPT_OPENSOCKETFUNCTION for Ethon (Typhoeus): libcurl resolves and connects in C,
    # and calls this before it creates each socket. The address goes through the same
    # check as every Ruby connect; a refused one gets CURL_SOCKET_BAD, which libcurl
    # reports as "couldn't connect" (Typhoeus: return_code :couldnt_connect).
    module Curl
      # curl_easy_setopt with a function pointer, bound to the libcurl Ethon loaded (on
      # first use: Ethon may still be loading when the hook is installed).
      module LibCurl
        extend FFI::Library
      end

      # libc's socket(2), for the allowed case (libcurl closes it).
      module LibC
        extend FFI::Library
        ffi_lib FFI::Library::LIBC
        attach_function :socket, %i[int int int], :int
      end

      CURLOPT_OPENSOCKETFUNCTION = 20_163
      CURLSOCKTYPE_IPCXN = 0
      CURL_SOCKET_BAD = -1
      # struct curl_sockaddr { int family; int socktype; int protocol; unsigned addrlen; struct sockaddr addr; }
      SOCKADDR_OFFSET = 16

      class << self
        def attach(easy)
          setup
          callback = FFI::Function.new(:int, %i[pointer int pointer]) do |_clientp, purpose, address|
            open_socket(easy, purpose, address)
          end
          # Keep the function alive as long as the handle uses it.
          easy.instance_variable_set(:@portcullis_opensocket, callback)
          setopt_function(easy.handle, CURLOPT_OPENSOCKETFUNCTION, callback)
        end

        def setup
          return if LibCurl.respond_to?(:setopt_function)

          LibCurl.ffi_lib(%w[libcurl libcurl.so.4]) # the names Ethon loads
          LibCurl.attach_function :setopt_function, :curl_easy_setopt, %i[pointer int pointer], :int
        end

        def setopt_function(*args)
          LibCurl.setopt_function(*args)
        end

        # Never raises into libcurl: any failure is CURL_SOCKET_BAD.
        def open_socket(easy, purpose, address)
          family, socktype, protocol, addrlen = address.read_array_of_int(4)
          if purpose == CURLSOCKTYPE_IPCXN
            raw = (address + SOCKADDR_OFFSET).read_bytes(addrlen)
            begin
              Portcullis::Guard.check_sockaddr!(raw, "Ethon::Easy(libcurl)", host_of(easy))
            rescue Portcullis::EgressRefused => e
              easy.instance_variable_set(:@portcullis_refusal, e)
              return CURL_SOCKET_BAD
            end
          end
          LibC.socket(family, socktype, protocol)
        rescue Exception # rubocop:disable Lint/RescueException -- must not unwind through C
          CURL_SOCKET_BAD
        end

        def host_of(easy)
          url = easy.url
          url && URI.parse(url.to_s).host
        rescue StandardError
          nil
        end
      end
    end
  end
end

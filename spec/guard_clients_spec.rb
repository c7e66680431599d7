# frozen_string_literal: true

require_relative "spec_helper"

# Every client library the issue names, against servers on 127.0.0.1: refused under the
# default policy (loopback is reserved) before any byte reaches the server, allowed once
# `allow_cidrs: ["127.0.0.1/32"]` opens it.
RSpec.describe "Portcullis.guard! with real client libraries" do
  script = <<~'RUBY'
    require "net/http"
    require "open-uri"
    require "faraday"
    require "httparty"
    require "rest-client"
    require "excon"
    require "http"
    require "httpclient"
    require "net/http/persistent"
    require "redis"
    require "net/smtp"
    require "resolv"
    require "typhoeus"

    http = CountingServer.new
    redis = CountingServer.new { |_req| "+PONG\r\n" }
    # SMTP: greeting first, then one reply per command.
    smtp_server = TCPServer.new("127.0.0.1", 0)
    smtp_hits = 0
    Thread.new do
      loop do
        c = smtp_server.accept
        smtp_hits += 1
        Thread.new(c) do |s|
          s.write("220 fake ESMTP\r\n")
          while (line = s.gets)
            if line.start_with?("EHLO", "HELO") then s.write("250 fake\r\n")
            elsif line.start_with?("QUIT") then s.write("221 bye\r\n"); break
            else s.write("250 ok\r\n")
            end
          end
          s.close
        rescue StandardError
          nil
        end
      end
    end
    # DNS over UDP answering every A query with 192.0.2.7.
    dns = UDPSocket.new
    dns.bind("127.0.0.1", 0)
    dns_port = dns.addr[1]
    dns_hits = 0
    Thread.new do
      loop do
        data, from = dns.recvfrom(512)
        dns_hits += 1
        query = Resolv::DNS::Message.decode(data)
        reply = Resolv::DNS::Message.new(query.id)
        reply.qr = 1
        reply.rd = query.rd
        reply.ra = 1
        query.each_question { |name, typeclass| reply.add_question(name, typeclass) }
        query.each_question { |name, _| reply.add_answer(name, 60, Resolv::DNS::Resource::IN::A.new("192.0.2.7")) }
        dns.send(reply.encode, 0, from[3], from[1])
      end
    end

    url = "http://127.0.0.1:#{http.port}/"
    clients = {
      "Net::HTTP" => -> { Net::HTTP.get(URI(url)) },
      "open-uri" => -> { URI.open(url, &:read) },
      "Faraday" => -> { Faraday.get(url).body },
      "HTTParty" => -> { HTTParty.get(url).body },
      "RestClient" => -> { RestClient.get(url).body },
      "Excon" => -> { Excon.get(url).body },
      "http.rb" => -> { HTTP.get(url).to_s },
      "httpclient" => -> { HTTPClient.new.get_content(url) },
      "net-http-persistent" => -> { Net::HTTP::Persistent.new(name: "spec").request(URI(url)).body },
      "Typhoeus" => lambda {
        response = Typhoeus.get(url)
        raise "libcurl: #{response.return_code}" unless response.return_code == :ok

        response.body
      },
      "redis" => -> { Redis.new(host: "127.0.0.1", port: redis.port, reconnect_attempts: 0).ping },
      "Net::SMTP" => -> { Net::SMTP.start("127.0.0.1", smtp_server.addr[1]) { |s| s.helo("x") && "smtp" } },
      "Resolv::DNS" => lambda {
        Resolv::DNS.new(nameserver_port: [["127.0.0.1", dns_port]]).tap { |r| r.timeouts = 1 }.getaddress("x.test").to_s
      }
    }
    hits = -> { http.hits + redis.hits + smtp_hits + dns_hits }

    Portcullis.guard!
    clients.each do |name, call|
      before = hits.call
      result("denied #{name}", outcome(&call) + [hits.call - before])
    end
    Portcullis.guard!(egress: Portcullis::EgressPolicy.new(allow_cidrs: ["127.0.0.1/32"]))
    clients.each do |name, call|
      before = hits.call
      result("allowed #{name}", outcome(&call) + [hits.call - before])
    end
    result(:status, Portcullis.guard_status[:counts])
    result(:ethon, Portcullis.guard_status[:ethon])
  RUBY

  results = nil
  before(:context) { results = GuardChild.run(script) }

  clients = ["Net::HTTP", "open-uri", "Faraday", "HTTParty", "RestClient", "Excon", "http.rb", "httpclient",
             "net-http-persistent", "Typhoeus", "redis", "Net::SMTP", "Resolv::DNS"]
  clients.each do |name|
    it "#{name}: refused by default before reaching the server, allowed with allow_cidrs" do
      denied = results.fetch("denied #{name}")
      if name == "Typhoeus"
        # libcurl does not raise: the open-socket callback returned CURL_SOCKET_BAD
        expect(denied[0..1]).to eq(["error", "RuntimeError: libcurl: couldnt_connect"]), denied.inspect
      else
        expect(denied[0]).to eq("refused"), denied.inspect
      end
      expect(denied.last).to eq(0), "#{name} reached the server: #{denied.inspect}"
      allowed = results.fetch("allowed #{name}")
      expect(allowed[0]).to eq("ok"), allowed.inspect
      expect(allowed.last).to be >= 1
    end
  end

  it "hooks Ethon and counts every judgement" do
    expect(results["ethon"]).to be(true)
    expect(results["status"]["egress"]["refused"]).to be >= clients.size
    expect(results["status"]["egress"]["allowed"]).to be >= clients.size
  end
end

# frozen_string_literal: true

require "openssl"

module Portcullis
  module Rails
    # Integration tests through the real middleware, with real certificates from a throwaway
    # CA: nothing in the app is stubbed, so a test that passes here passes against Puma.
    #
    #   # test/test_helper.rb
    #   require "portcullis/rails/test_helper"
    #   PORTCULLIS_CA = Portcullis::Rails::TestHelper::CA.new
    #   PORTCULLIS_CA.write(Rails.root.join("tmp/portcullis-test-ca.pem"))  # the test trust store's `ca`
    #
    #   class DeploysTest < ActionDispatch::IntegrationTest
    #     include Portcullis::Rails::TestHelper
    #     test "a deployer may deploy" do
    #       post "/deploys", env: portcullis_client_env(PORTCULLIS_CA.issue(cn: "deployer"))
    #       assert_response :success
    #     end
    #   end
    #
    # The env is what Puma gives the app for a TLS client (`puma.peercert`), so it exercises
    # `source = "tls"`. For a proxy source, send the proxy's header from a trusted address:
    # `headers: { "x-ssl-client-cert" => CGI.escape(cert.to_pem) }, env: { "REMOTE_ADDR" => "127.0.0.1" }`.
    module TestHelper
      # The Rack env entries of a request whose TLS client presented `cert`.
      def portcullis_client_env(cert)
        { "puma.peercert" => cert }
      end

      # A throwaway client CA. Its key lives only in this process.
      class CA
        attr_reader :certificate

        def initialize(name: "CN=Portcullis Test Client CA,O=Portcullis Test")
          @key = OpenSSL::PKey::EC.generate("prime256v1")
          @serial = 1
          @certificate = build(OpenSSL::X509::Name.parse_rfc2253(name), @key, ca: true) do |ext, cert|
            cert.add_extension(ext.create_extension("basicConstraints", "CA:TRUE", true))
            cert.add_extension(ext.create_extension("keyUsage", "keyCertSign,cRLSign", true))
          end
        end

        def pem = @certificate.to_pem

        # Writes the CA certificate (PEM) where the test trust store's `ca` points.
        def write(path)
          File.write(path.to_s, pem)
          path
        end

        # A client certificate (clientAuth) issued by this CA. `spiffe_id:` adds a URI SAN.
        def issue(cn:, org: "Portcullis Test", spiffe_id: nil, dns: [], emails: [], days: 1)
          key = OpenSSL::PKey::EC.generate("prime256v1")
          name = OpenSSL::X509::Name.new([["CN", cn], ["O", org]])
          sans = Array(dns).map { |d| "DNS:#{d}" } + Array(emails).map { |e| "email:#{e}" }
          sans << "URI:#{spiffe_id}" if spiffe_id
          build(name, key, days: days) do |ext, cert|
            cert.add_extension(ext.create_extension("basicConstraints", "CA:FALSE", true))
            cert.add_extension(ext.create_extension("keyUsage", "digitalSignature", true))
            cert.add_extension(ext.create_extension("extendedKeyUsage", "clientAuth"))
            cert.add_extension(ext.create_extension("subjectAltName", sans.join(","))) unless sans.empty?
          end
        end

        private

        def build(subject, key, ca: false, days: 365)
          cert = OpenSSL::X509::Certificate.new
          cert.version = 2
          cert.serial = (@serial += 1)
          cert.subject = subject
          cert.issuer = ca ? subject : @certificate.subject
          cert.public_key = key
          cert.not_before = Time.now - 60
          cert.not_after = Time.now + (days * 86_400)
          ext = OpenSSL::X509::ExtensionFactory.new
          ext.subject_certificate = cert
          ext.issuer_certificate = ca ? cert : @certificate
          cert.add_extension(ext.create_extension("subjectKeyIdentifier", "hash"))
          cert.add_extension(ext.create_extension("authorityKeyIdentifier", "keyid:always"))
          yield ext, cert
          cert.sign(@key, OpenSSL::Digest.new("SHA256"))
          cert
        end
      end
    end
  end
end

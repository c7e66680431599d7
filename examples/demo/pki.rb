# frozen_string_literal: true

require "openssl"

module Demo
  # A throwaway PKI, minted fresh on every run: root CA -> "Ops CA" and "Dev CA"
  # intermediates -> client certificates; a foreign CA nobody trusts; a server certificate
  # for 127.0.0.1; and a CRL from Ops CA revoking one client.
  class Pki
    Client = Struct.new(:name, :cert, :key, :description)

    attr_reader :root, :ops_ca, :dev_ca, :foreign_ca, :server, :clients, :ops_crl

    def initialize
      @root = mint("/O=Demo Corp/CN=Demo Root CA", ca: true)
      @ops_ca = mint("/O=Demo Corp/CN=Ops CA", ca: true, issuer: @root)
      @dev_ca = mint("/O=Demo Corp/CN=Dev CA", ca: true, issuer: @root)
      @foreign_ca = mint("/O=Elsewhere/CN=Foreign CA", ca: true)
      @server = mint("/CN=127.0.0.1", issuer: @root, san: "IP:127.0.0.1,DNS:localhost", eku: "serverAuth")
      @clients = {}
      add_client(:deployer, "/O=Demo Corp/CN=deployer", @ops_ca, "DNS:deployer.ops.demo.internal", "Ops CA, CN=deployer")
      add_client(:workload, "/O=Demo Corp", @ops_ca, "URI:spiffe://demo.internal/ops/builder", "SPIFFE workload")
      add_client(:viewer, "/O=Demo Corp/CN=viewer", @ops_ca, "DNS:viewer.ops.demo.internal", "Ops CA, CN=viewer")
      add_client(:revoked, "/O=Demo Corp/CN=laptop-42", @ops_ca, "DNS:laptop-42.ops.demo.internal", "revoked by Ops CA")
      add_client(:wrong_issuer, "/O=Demo Corp/CN=deployer", @dev_ca, "DNS:deployer.ops.demo.internal", "CN=deployer, but from Dev CA")
      add_client(:foreign, "/O=Demo Corp/CN=deployer", @foreign_ca, nil, "from a CA the server does not know")
      @ops_crl = crl(@ops_ca, [@clients[:revoked].cert])
    end

    # What Puma (OpenSSL) accepts at the handshake: the root and both intermediates.
    def tls_ca_pem
      [@root, @ops_ca, @dev_ca].map { |c, _| c.to_pem }.join
    end

    private

    def add_client(name, subject, issuer, san, description)
      cert, key = mint(subject, issuer: issuer, san: san)
      @clients[name] = Client.new(name, cert, key, description)
    end

    def mint(subject, issuer: nil, ca: false, san: nil, eku: "clientAuth")
      key = OpenSSL::PKey::EC.generate("prime256v1")
      cert = OpenSSL::X509::Certificate.new
      cert.version = 2
      cert.serial = OpenSSL::BN.rand(64)
      cert.subject = OpenSSL::X509::Name.parse(subject)
      cert.issuer = issuer ? issuer[0].subject : cert.subject
      cert.public_key = key
      cert.not_before = Time.now - 60
      cert.not_after = Time.now + 3600
      ef = OpenSSL::X509::ExtensionFactory.new(issuer ? issuer[0] : cert, cert)
      if ca
        cert.add_extension(ef.create_extension("basicConstraints", "CA:TRUE", true))
        cert.add_extension(ef.create_extension("keyUsage", "keyCertSign,cRLSign", true))
      else
        cert.add_extension(ef.create_extension("basicConstraints", "CA:FALSE", true))
        cert.add_extension(ef.create_extension("keyUsage", "digitalSignature", true))
        cert.add_extension(ef.create_extension("extendedKeyUsage", eku, false))
        cert.add_extension(ef.create_extension("subjectAltName", san, false)) if san
      end
      cert.add_extension(ef.create_extension("subjectKeyIdentifier", "hash", false))
      cert.add_extension(ef.create_extension("authorityKeyIdentifier", "keyid:always", false)) if issuer
      cert.sign(issuer ? issuer[1] : key, OpenSSL::Digest.new("SHA256"))
      [cert, key]
    end

    def crl(issuer, revoked)
      crl = OpenSSL::X509::CRL.new
      crl.version = 1
      crl.issuer = issuer[0].subject
      crl.last_update = Time.now - 60
      crl.next_update = Time.now + 3600
      revoked.each do |cert|
        entry = OpenSSL::X509::Revoked.new
        entry.serial = cert.serial
        entry.time = Time.now - 30
        crl.add_revoked(entry)
      end
      ef = OpenSSL::X509::ExtensionFactory.new
      ef.issuer_certificate = issuer[0]
      ef.crl = crl
      crl.add_extension(OpenSSL::X509::Extension.new("crlNumber", OpenSSL::ASN1::Integer(1)))
      crl.add_extension(ef.create_extension("authorityKeyIdentifier", "keyid:always", false))
      crl.sign(issuer[1], OpenSSL::Digest.new("SHA256"))
      crl
    end
  end
end

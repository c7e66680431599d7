# frozen_string_literal: true

require "openssl"
require "tmpdir"

# A throwaway PKI for the egress specs: a CA, server certificates for chosen DNS names and a
# client certificate. EC P-256 keys keep minting fast. (spec/support/pki.rb belongs to the
# identity specs; this file is independent of it.)
module EgressPKI
  module_function

  def key
    OpenSSL::PKey::EC.generate("prime256v1")
  end

  def name(cn)
    OpenSSL::X509::Name.new([["CN", cn]])
  end

  def ca
    @ca ||= begin
      k = key
      cert = base_cert(name("Portcullis Egress Test CA"), name("Portcullis Egress Test CA"), k)
      ef = OpenSSL::X509::ExtensionFactory.new(cert, cert)
      cert.add_extension(ef.create_extension("basicConstraints", "CA:TRUE", true))
      cert.add_extension(ef.create_extension("keyUsage", "keyCertSign,cRLSign", true))
      cert.add_extension(ef.create_extension("subjectKeyIdentifier", "hash", false))
      cert.sign(k, OpenSSL::Digest.new("SHA256"))
      [cert, k]
    end
  end

  # A leaf signed by the CA. `dns` names go into the SAN; `usage` is serverAuth or clientAuth.
  def leaf(cn, dns: [], ips: [], usage: "serverAuth")
    ca_cert, ca_key = ca
    k = key
    cert = base_cert(name(cn), ca_cert.subject, k)
    ef = OpenSSL::X509::ExtensionFactory.new(ca_cert, cert)
    cert.add_extension(ef.create_extension("basicConstraints", "CA:FALSE", true))
    cert.add_extension(ef.create_extension("keyUsage", "digitalSignature", true))
    cert.add_extension(ef.create_extension("extendedKeyUsage", usage, false))
    sans = dns.map { |d| "DNS:#{d}" } + ips.map { |i| "IP:#{i}" }
    cert.add_extension(ef.create_extension("subjectAltName", sans.join(","), false)) unless sans.empty?
    cert.sign(ca_key, OpenSSL::Digest.new("SHA256"))
    [cert, k]
  end

  def base_cert(subject, issuer, k)
    cert = OpenSSL::X509::Certificate.new
    cert.version = 2
    cert.serial = OpenSSL::BN.rand(64)
    cert.subject = subject
    cert.issuer = issuer
    cert.public_key = k
    cert.not_before = Time.now - 60
    cert.not_after = Time.now + 3600
    cert
  end

  # The CA certificate written to a file, for ca_file:.
  def ca_file
    @ca_file ||= begin
      dir = Dir.mktmpdir("portcullis-egress-pki")
      path = File.join(dir, "ca.pem")
      File.write(path, ca.first.to_pem)
      path
    end
  end

  def store
    s = OpenSSL::X509::Store.new
    s.add_cert(ca.first)
    s
  end
end

# frozen_string_literal: true

require "openssl"

# Throwaway PKI for the Rack specs (until spec/support/pki.rb lands from the identity
# branch): a root CA, an intermediate, and client certificates signed by either.
module RackPki
  module_function

  def key
    OpenSSL::PKey::EC.generate("prime256v1")
  end

  def name(str)
    OpenSSL::X509::Name.parse(str)
  end

  # Mints a certificate. `issuer` is [cert, key] or nil for self-signed.
  def cert(subject:, key:, issuer: nil, ca: false, san: nil, serial: rand(1 << 64),
           not_before: Time.now - 60, not_after: Time.now + 3600, eku: "clientAuth")
    c = OpenSSL::X509::Certificate.new
    c.version = 2
    c.serial = serial
    c.subject = name(subject)
    c.issuer = issuer ? issuer[0].subject : c.subject
    c.public_key = key
    c.not_before = not_before
    c.not_after = not_after
    ef = OpenSSL::X509::ExtensionFactory.new
    ef.subject_certificate = c
    ef.issuer_certificate = issuer ? issuer[0] : c
    if ca
      c.add_extension(ef.create_extension("basicConstraints", "CA:TRUE", true))
      c.add_extension(ef.create_extension("keyUsage", "keyCertSign,cRLSign", true))
    else
      c.add_extension(ef.create_extension("basicConstraints", "CA:FALSE", true))
      c.add_extension(ef.create_extension("keyUsage", "digitalSignature", true))
      c.add_extension(ef.create_extension("extendedKeyUsage", eku, false)) if eku
      c.add_extension(ef.create_extension("subjectAltName", san, false)) if san
    end
    c.add_extension(ef.create_extension("subjectKeyIdentifier", "hash", false))
    c.add_extension(ef.create_extension("authorityKeyIdentifier", "keyid:always", false)) if issuer
    c.sign(issuer ? issuer[1] : key, OpenSSL::Digest.new("SHA256"))
    c
  end

  # A root, an intermediate and assorted leaves, memoized per process.
  def world
    @world ||= begin
      root_key = key
      root = cert(subject: "/O=MyOrg/CN=Root CA", key: root_key, ca: true)
      int_key = key
      int = cert(subject: "/O=MyOrg/CN=Ops CA", key: int_key, ca: true, issuer: [root, root_key])
      other_key = key
      other = cert(subject: "/O=Elsewhere/CN=Other CA", key: other_key, ca: true)
      leaf = lambda do |subject, san, signer = [int, int_key]|
        k = key
        [cert(subject: subject, key: k, issuer: signer, san: san), k]
      end
      {
        root: [root, root_key], intermediate: [int, int_key], other_ca: [other, other_key],
        good: leaf.call("/O=MyOrg/CN=deployer", "DNS:deployer.ops.example.org"),
        spiffe: leaf.call("/O=MyOrg", "URI:spiffe://example.org/ops/deployer"),
        dev: leaf.call("/O=MyOrg/CN=dev", "URI:spiffe://example.org/dev/web"),
        stranger: leaf.call("/O=MyOrg/CN=deployer", "DNS:deployer.ops.example.org", [other, other_key])
      }
    end
  end
end

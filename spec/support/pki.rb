# frozen_string_literal: true

require "openssl"
require "ipaddr"

# A small test PKI minted with Ruby's OpenSSL, for any spec (or script) that needs real
# certificates: root CA, intermediates, leaves with SANs / SPIFFE IDs / EKUs, and CRLs.
#
#   root  = TestPKI::CA.root
#   inter = root.intermediate("Spec Intermediate")
#   leaf  = inter.issue(cn: "api", dns: ["api.example.com"], uris: ["spiffe://example.org/api"])
#   leaf.cert # => OpenSSL::X509::Certificate; leaf.pem; leaf.der; leaf.key
#   crl   = inter.crl(revoked: [leaf])
module TestPKI
  # A certificate with its private key.
  Issued = Struct.new(:cert, :key) do
    def pem = cert.to_pem
    def der = cert.to_der
    def serial = cert.serial.to_i
  end

  VALID_FROM = Time.utc(2020, 1, 1)
  VALID_UNTIL = Time.utc(2040, 1, 1)
  @serial = 0x1000
  @serial_lock = Mutex.new

  def self.next_serial
    @serial_lock.synchronize { @serial += 1 }
  end

  def self.new_key(kind = :ec)
    case kind
    when :ec then OpenSSL::PKey::EC.generate("prime256v1")
    when :ec384 then OpenSSL::PKey::EC.generate("secp384r1")
    when :rsa then OpenSSL::PKey::RSA.new(2048)
    else raise ArgumentError, "unknown key kind #{kind.inspect}"
    end
  end

  def self.name(cn)
    OpenSSL::X509::Name.new([["O", "Portcullis Spec"], ["CN", cn]])
  end

  # A certificate authority that can issue intermediates, leaves and CRLs.
  class CA
    attr_reader :cert, :key

    def initialize(cert, key)
      @cert = cert
      @key = key
    end

    def pem = cert.to_pem
    def der = cert.to_der

    def self.root(cn = "Spec Root", key: :ec, not_before: VALID_FROM, not_after: VALID_UNTIL)
      k = TestPKI.new_key(key)
      cert = TestPKI.build(subject: TestPKI.name(cn), public_key: k, not_before: not_before,
                           not_after: not_after)
      ef = OpenSSL::X509::ExtensionFactory.new(cert, cert)
      TestPKI.add_ca_extensions(cert, ef)
      cert.sign(k, OpenSSL::Digest.new("SHA256"))
      new(cert, k)
    end

    def intermediate(cn = "Spec Intermediate", key: :ec, not_before: VALID_FROM, not_after: VALID_UNTIL)
      k = TestPKI.new_key(key)
      cert = TestPKI.build(subject: TestPKI.name(cn), issuer: @cert.subject, public_key: k,
                           not_before: not_before, not_after: not_after)
      ef = OpenSSL::X509::ExtensionFactory.new(@cert, cert)
      TestPKI.add_ca_extensions(cert, ef)
      cert.sign(@key, OpenSSL::Digest.new("SHA256"))
      CA.new(cert, k)
    end

    # Issues a leaf. eku: [:client], [:server], [:client, :server] or [] (no EKU extension).
    def issue(cn: "spec-client", dns: [], uris: [], ips: [], emails: [], eku: [:client], key: :ec,
              key_usage: %w[digitalSignature], ca: false, not_before: Time.utc(2021, 1, 1),
              not_after: Time.utc(2035, 1, 1), serial: TestPKI.next_serial)
      k = TestPKI.new_key(key)
      cert = TestPKI.build(subject: TestPKI.name(cn), issuer: @cert.subject, public_key: k,
                           not_before: not_before, not_after: not_after, serial: serial)
      ef = OpenSSL::X509::ExtensionFactory.new(@cert, cert)
      cert.add_extension(ef.create_extension("basicConstraints", ca ? "CA:TRUE" : "CA:FALSE", true))
      cert.add_extension(ef.create_extension("keyUsage", key_usage.join(","), true)) unless key_usage.empty?
      unless eku.empty?
        names = eku.map { |e| { client: "clientAuth", server: "serverAuth" }.fetch(e) }
        cert.add_extension(ef.create_extension("extendedKeyUsage", names.join(","), false))
      end
      cert.add_extension(ef.create_extension("subjectKeyIdentifier", "hash", false))
      cert.add_extension(ef.create_extension("authorityKeyIdentifier", "keyid:always", false))
      sans = dns.map { |d| "DNS:#{d}" } + uris.map { |u| "URI:#{u}" } +
             ips.map { |i| "IP:#{i}" } + emails.map { |e| "email:#{e}" }
      cert.add_extension(ef.create_extension("subjectAltName", sans.join(","), false)) unless sans.empty?
      cert.sign(@key, OpenSSL::Digest.new("SHA256"))
      Issued.new(cert, k)
    end

    # A CRL revoking the given certificates (Issued objects or serial Integers).
    def crl(revoked: [], this_update: Time.utc(2024, 1, 1), next_update: Time.utc(2030, 1, 1), number: 1)
      crl = OpenSSL::X509::CRL.new
      crl.version = 1
      crl.issuer = @cert.subject
      crl.last_update = this_update
      crl.next_update = next_update
      revoked.each do |r|
        rev = OpenSSL::X509::Revoked.new
        rev.serial = OpenSSL::BN.new(r.is_a?(Integer) ? r : r.serial)
        rev.time = Time.utc(2024, 6, 1)
        crl.add_revoked(rev)
      end
      ef = OpenSSL::X509::ExtensionFactory.new
      ef.issuer_certificate = @cert
      ef.crl = crl
      crl.add_extension(OpenSSL::X509::Extension.new("crlNumber", OpenSSL::ASN1::Integer.new(number).to_der))
      crl.add_extension(ef.create_extension("authorityKeyIdentifier", "keyid:always", false))
      crl.sign(@key, OpenSSL::Digest.new("SHA256"))
      crl
    end
  end

  def self.build(subject:, public_key:, not_before:, not_after:, issuer: subject, serial: next_serial)
    cert = OpenSSL::X509::Certificate.new
    cert.version = 2
    cert.serial = serial
    cert.subject = subject
    cert.issuer = issuer
    cert.public_key = public_key
    cert.not_before = not_before
    cert.not_after = not_after
    cert
  end

  def self.add_ca_extensions(cert, ef)
    cert.add_extension(ef.create_extension("basicConstraints", "CA:TRUE", true))
    cert.add_extension(ef.create_extension("keyUsage", "keyCertSign,cRLSign,digitalSignature", true))
    cert.add_extension(ef.create_extension("subjectKeyIdentifier", "hash", false))
    cert.add_extension(ef.create_extension("authorityKeyIdentifier", "keyid:always", false)) unless cert.subject == cert.issuer
  end
end

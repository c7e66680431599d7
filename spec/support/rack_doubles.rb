# frozen_string_literal: true

require "openssl"

# Stand-ins for Portcullis::TrustStore / AccessPolicy while the identity binding is not
# merged: they let the middleware's own logic (sources, statuses, requirements, skip) be
# exercised. Removed once the real classes are available.
module RackDoubles
  Identity = Struct.new(:subject, :issuer, :spiffe_id, :fingerprint, keyword_init: true)

  class Store
    def initialize(issuer_cert)
      @issuer = issuer_cert
    end

    def verify(der, chain: [])
      cert = OpenSSL::X509::Certificate.new(der)
      raise Portcullis::CertificateError.new("unknown issuer", code: "cert.unknown_issuer") unless cert.verify(@issuer.public_key)

      uri = cert.extensions.find { |e| e.oid == "subjectAltName" }&.value.to_s[%r{URI:(spiffe://\S+)}, 1]
      Identity.new(fingerprint: OpenSSL::Digest::SHA256.hexdigest(cert.to_der), subject: cert.subject.to_s(OpenSSL::X509::Name::RFC2253), issuer: cert.issuer.to_s(OpenSSL::X509::Name::RFC2253), spiffe_id: uri)
    rescue OpenSSL::X509::CertificateError, OpenSSL::PKey::PKeyError
      raise Portcullis::CertificateError.new("bad", code: "cert.bad_encoding")
    end
  end

  class Policy
    def permissions(identity)
      perms = []
      perms += ["containers:deploy", "status:read"] if identity.spiffe_id.to_s.start_with?("spiffe://example.org/ops/")
      perms << "status:read" if identity.issuer == "CN=Ops CA,O=MyOrg"
      perms.uniq.sort
    end

    def allowed?(identity, permission)
      permissions(identity).include?(permission)
    end

    def authorize!(identity, permission)
      return true if allowed?(identity, permission)

      raise Portcullis::Forbidden.new("not granted #{permission}", code: "authz.forbidden")
    end
  end
end

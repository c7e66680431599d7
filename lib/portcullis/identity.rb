# frozen_string_literal: true

module Portcullis
  # Trust anchors, intermediates, CRLs and the purpose to verify for. Build one per
  # application and share it across threads: its verification cache is shared too.
  #
  #   store = Portcullis::TrustStore.new(ca: "config/ca.pem")
  #   id = store.verify(env["puma.peercert"], chain: [], at: Time.now)
  #   id.spiffe_id # => "spiffe://example.org/ns/prod/sa/api"
  class TrustStore
    # ca:            PEM bundle text, DER, a path to a PEM/DER file, an
    #                OpenSSL::X509::Certificate, or an Array of those.
    # intermediates: extra intermediates (same forms), used to build paths, never trusted alone.
    # crls:          CRLs: PEM text, DER, paths or OpenSSL::X509::CRL objects. Per issuer the
    #                highest cRLNumber is used (any order, so Dir["crls/*.pem"] mid-rotation
    #                works); see #crls for what is in force.
    # usage:         :client (TLS client auth, default) or :server.
    # cache_size:    verified chains to remember; 0 disables the cache.
    # deny_unknown_revocation: with CRLs loaded, refuse certificates whose issuer has no CRL
    #                or whose issuer's CRL has lapsed (past nextUpdate). Off: such chains are
    #                accepted and, for a lapsed CRL, Identity#revocation_warning says so.
    # require_spiffe: every leaf must be a SPIFFE X509-SVID.
    # max_intermediates: at most this many (logical) intermediates in a path; nil: no extra limit.
    # crl_urls:      CRL distribution points (http:// URLs) to fetch through crl_egress:, once
    #                at construction and then in the background before each CRL's nextUpdate
    #                (crl_refresh: false to refresh only when #refresh_crls is called).
    # crl_distribution_points: also fetch the CRLs named by the configured CAs' cRLDistributionPoints.
    # crl_egress:    a Portcullis::EgressPolicy the fetches must pass (required with URLs).
    # crl_max_bytes / crl_timeout: caps on one fetch (16 MiB, 15 s).
    def self.new(ca:, intermediates: [], crls: [], usage: :client, cache_size: 10_000,
                 deny_unknown_revocation: false, require_spiffe: false, max_intermediates: nil,
                 crl_urls: [], crl_distribution_points: false, crl_egress: nil,
                 crl_max_bytes: nil, crl_timeout: nil, crl_refresh: true)
      urls = Array(crl_urls).map { |u| String(u) }
      network = if urls.empty? && !crl_distribution_points
                  nil
                else
                  unless crl_egress.nil? || crl_egress.is_a?(EgressPolicy)
                    raise TypeError, "crl_egress: must be a Portcullis::EgressPolicy, not #{crl_egress.class}"
                  end

                  { urls: urls, from_distribution_points: crl_distribution_points ? true : false,
                    egress: crl_egress, max_bytes: crl_max_bytes.nil? ? nil : Integer(crl_max_bytes),
                    timeout: crl_timeout.nil? ? nil : Float(crl_timeout), refresh: crl_refresh ? true : false }
                end
      _build(sources(ca), sources(intermediates), sources(crls), usage.to_s, Integer(cache_size),
             deny_unknown_revocation ? true : false, require_spiffe ? true : false,
             max_intermediates.nil? ? nil : Integer(max_intermediates), network)
    end

    # Fetches every CRL URL now; returns one frozen Hash per URL (:url, :at, :error,
    # :kept_previous, :bytes, :message). A failed fetch keeps the last good CRL.
    def refresh_crls
      _refresh_crls
    end

    # Verifies a leaf certificate (PEM, DER, or OpenSSL::X509::Certificate) with the chain the
    # peer presented, at `at` (a Time; default now). Returns a frozen Portcullis::Identity or
    # raises Portcullis::CertificateError with #code.
    def verify(leaf, chain: [], at: nil)
      _verify(TrustStore.bytes(leaf), TrustStore.chain_bytes(chain), TrustStore.seconds(at), nil)
    end

    # Verifies a server certificate for TLS server authentication and the expected
    # `server_name` (DNS name or IP address).
    def verify_server(leaf, server_name, chain: [], at: nil)
      _verify(TrustStore.bytes(leaf), TrustStore.chain_bytes(chain), TrustStore.seconds(at),
              String(server_name))
    end

    # Replaces the loaded CRLs and clears the verification cache. Same rules as crls: at
    # construction: the highest cRLNumber per issuer is kept, ambiguous sets and CRLs whose
    # signature does not verify are refused (CertificateError "cert.bad_trust_store").
    def reload_crls(crls)
      _reload_crls(TrustStore.sources(crls))
    end

    def inspect
      "#<Portcullis::TrustStore usage=#{usage.inspect} cache_size=#{cache_size}>"
    end

    class << self
      # Turns one configured input (or an Array of them) into byte strings.
      def sources(input)
        (input.is_a?(Array) ? input : [input]).map { |item| source(item) }
      end

      # PEM and DER pass through; a path is read. Which one a String is, the core decides
      # (Certificates.input_form): DER only when it is one well-formed DER frame (so
      # "0ca.pem" is a path), PEM when it holds a BEGIN line, a path when it is one line.
      def source(item)
        return item.to_der if item.respond_to?(:to_der)
        return File.binread(item.to_path) if item.respond_to?(:to_path)
        raise TypeError, "expected a String, Pathname or OpenSSL object, got #{item.class}" unless item.is_a?(String)

        case Certificates.input_form(item)
        when :der, :pem then item
        when :path
          return File.binread(item) if File.file?(item)

          raise CertificateError.new("#{item.inspect} is not a readable file (and not PEM or DER)",
                                     code: "cert.bad_trust_store")
        else
          raise CertificateError.new("#{item.inspect[0, 80]} is neither PEM, DER, nor a file name",
                                     code: "cert.bad_trust_store")
        end
      end

      def bytes(cert)
        return cert.to_der if cert.respond_to?(:to_der)
        raise TypeError, "expected a certificate String or OpenSSL::X509::Certificate, got #{cert.class}" unless cert.is_a?(String)

        cert
      end

      def chain_bytes(chain)
        raise TypeError, "chain: must be an Array" unless chain.is_a?(Array)

        chain.map { |c| bytes(c) }
      end

      def seconds(at)
        case at
        when nil then nil
        when Time then at.to_i
        when Integer then at
        else
          # Date/DateTime (and ActiveSupport's TimeWithZone) convert; Strings never do, even
          # where ActiveSupport adds String#to_time (which answers nil for garbage).
          time = at.to_time if at.respond_to?(:to_time) && !at.is_a?(String)
          raise TypeError, "at: must be a Time or Integer seconds, got #{at.class}" unless time.is_a?(Time)

          time.to_i
        end
      end
    end
  end
end

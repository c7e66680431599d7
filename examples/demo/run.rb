# frozen_string_literal: true

# Placeholder demo (`make demo`): mint a throwaway PKI in Ruby, verify a client chain through
# Portcullis, print the Identity, then show a refusal. The Rack issue replaces this with
# the mTLS demo app.
require "portcullis"
require_relative "../../spec/support/pki"

root = TestPKI::CA.root("Demo Root CA")
inter = root.intermediate("Demo Issuing CA")
client = inter.issue(cn: "billing-api", dns: ["billing.internal"],
                     uris: ["spiffe://demo.example/ns/prod/sa/billing"])
store = Portcullis::TrustStore.new(ca: root.pem, require_spiffe: true)

identity = store.verify(client.cert, chain: [inter.cert])
puts "verified client:"
identity.to_h.each { |k, v| puts format("  %-19s %s", k, v.inspect) }

impostor = TestPKI::CA.root("Demo Root CA").intermediate("Demo Issuing CA")
                      .issue(cn: "billing-api", uris: ["spiffe://demo.example/ns/prod/sa/billing"])
begin
  store.verify(impostor.cert, chain: [])
rescue Portcullis::CertificateError => e
  puts "refused look-alike from another CA: #{e.code}: #{e.message}"
end

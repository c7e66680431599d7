# frozen_string_literal: true

# The clients the Rack, Rails, Hanami and Puma specs call with, minted once per process with
# TestPKI (spec/support/pki.rb): a root, the "Ops CA" intermediate, and leaves. Each entry
# is [OpenSSL::X509::Certificate, key].
module MtlsClients
  OPS_CA_DN = "CN=Ops CA,O=Portcullis Spec"

  module_function

  def world
    @world ||= begin
      root = TestPKI::CA.root("Root CA")
      ops = root.intermediate("Ops CA")
      other = TestPKI::CA.root("Other CA")
      pair = ->(issued) { [issued.cert, issued.key] }
      {
        root: [root.cert, root.key], intermediate: [ops.cert, ops.key], other_ca: [other.cert, other.key],
        good: pair.call(ops.issue(cn: "deployer", dns: ["deployer.ops.example.org"])),
        spiffe: pair.call(ops.issue(cn: "builder", uris: ["spiffe://example.org/ops/deployer"])),
        stranger: pair.call(other.issue(cn: "deployer", dns: ["deployer.ops.example.org"])),
        server: pair.call(root.issue(cn: "127.0.0.1", ips: ["127.0.0.1"], eku: [:server]))
      }
    end
  end

  def trust_store
    Portcullis::TrustStore.new(ca: world[:root][0].to_pem, intermediates: [world[:intermediate][0].to_pem])
  end

  # ops/ SPIFFE workloads may deploy; everything from Ops CA may read status.
  def policy
    Portcullis::AccessPolicy.new(rules: [
      { match: { spiffe_prefix: "spiffe://example.org/ops/" }, grant: ["containers:deploy", "status:read"] },
      { match: { issuer: OPS_CA_DN }, grant: ["status:read"] }
    ])
  end
end

# frozen_string_literal: true

require "tmpdir"

# CRL sets (highest cRLNumber per issuer, ambiguous and forged CRLs refused, lapsed CRLs
# are unknown status) and how TrustStore.new tells a path from PEM and DER.
RSpec.describe "Portcullis::TrustStore CRLs and inputs" do
  let(:now) { Time.utc(2025, 6, 1) }
  let(:root) { TestPKI::CA.root }
  let(:inter) { root.intermediate }
  let(:leaf) { inter.issue(cn: "api-client") }
  let(:stale) { inter.crl(number: 1, this_update: Time.utc(2025, 1, 1)) }
  let(:fresh) { inter.crl(revoked: [leaf], number: 2, this_update: Time.utc(2025, 5, 1)) }

  def error_of
    yield
    raise "expected Portcullis::CertificateError"
  rescue Portcullis::CertificateError => e
    e
  end

  def verify(store, at: now)
    store.verify(leaf.cert, chain: [inter.cert], at: at)
  end

  it "uses the highest cRLNumber per issuer, whatever the order (a rotation mid-way)" do
    [[stale, fresh], [fresh, stale]].each do |crls|
      [Portcullis::TrustStore.new(ca: root.pem, crls: crls),
       Portcullis::TrustStore.new(ca: root.pem, intermediates: [inter.cert], crls: crls)].each do |store|
        expect(error_of { verify(store) }.code).to eq("cert.revoked")
        expect(store.crls.map { |c| c[:number] }).to eq(["2"])
        expect(store.crls.first[:superseded]).to eq(1)
      end
      store = Portcullis::TrustStore.new(ca: root.pem)
      store.reload_crls(crls)
      expect(error_of { verify(store) }.code).to eq("cert.revoked")
    end
    Dir.mktmpdir do |dir|
      File.write(File.join(dir, "a.pem"), stale.to_pem)
      File.write(File.join(dir, "b.pem"), fresh.to_pem)
      store = Portcullis::TrustStore.new(ca: root.pem, crls: Dir[File.join(dir, "*.pem")].sort)
      expect(error_of { verify(store) }.code).to eq("cert.revoked")
    end
  end

  it "refuses two different CRLs with the same number, naming them" do
    twin = inter.crl(number: 2, this_update: Time.utc(2025, 5, 2))
    err = error_of { Portcullis::TrustStore.new(ca: root.pem, crls: [fresh, twin]) }
    expect(err.code).to eq("cert.bad_trust_store")
    expect(err.message).to include("ambiguous", "cRLNumber 2", "CN=Spec Intermediate")
    store = Portcullis::TrustStore.new(ca: root.pem, crls: [fresh, fresh.to_der])
    expect(store.crls.size).to eq(1)
    expect(error_of { store.reload_crls([fresh, twin]) }.code).to eq("cert.bad_trust_store")
    expect(error_of { verify(store) }.code).to eq("cert.revoked") # the reload changed nothing
  end

  it "treats a lapsed CRL as unknown status: refused with deny_unknown_revocation, a warning without" do
    lapsed = inter.crl(number: 3, this_update: Time.utc(2025, 4, 1), next_update: Time.utc(2025, 5, 1))
    strict = Portcullis::TrustStore.new(ca: root.pem, crls: [lapsed, root.crl], deny_unknown_revocation: true)
    err = error_of { verify(strict) }
    expect(err.code).to eq("cert.revocation_unknown")
    expect(err.message).to include("lapsed", "cRLNumber 3")
    expect(verify(strict, at: Time.utc(2025, 4, 15)).revocation_warning).to be_nil

    lenient = Portcullis::TrustStore.new(ca: root.pem, crls: [lapsed, root.crl])
    id = verify(lenient)
    expect(id.revocation_warning).to include("lapsed", "deny_unknown_revocation")
    expect(id.to_h[:revocation_warning]).to eq(id.revocation_warning)
    lapsed_info = lenient.crls.find { |c| c[:number] == "3" }
    expect(lapsed_info[:next_update]).to eq(Time.utc(2025, 5, 1))
    expect(lapsed_info[:next_update]).to be < now

    # What a lapsed CRL lists stays revoked.
    listing = inter.crl(revoked: [leaf], number: 4, this_update: Time.utc(2025, 4, 1), next_update: Time.utc(2025, 5, 1))
    [true, false].each do |deny|
      store = Portcullis::TrustStore.new(ca: root.pem, crls: [listing, root.crl], deny_unknown_revocation: deny)
      expect(error_of { verify(store) }.code).to eq("cert.revoked")
    end
  end

  it "reports a CRL whose signature does not verify as a store error naming the CRL" do
    impostor = TestPKI::CA.root # same name ("Spec Root"), another key
    err = error_of { Portcullis::TrustStore.new(ca: root.pem, crls: [impostor.crl(number: 9)]) }
    expect(err.code).to eq("cert.bad_trust_store")
    expect(err.message).to include("signature does not verify", "cRLNumber 9", "CN=Spec Root")

    # Issuer not configured (only presented by the peer): found when a chain is judged.
    fake_inter = root.intermediate # same name, another key
    store = Portcullis::TrustStore.new(ca: root.pem, crls: [fake_inter.crl(number: 5)])
    err = error_of { verify(store) }
    expect(err.code).to eq("cert.bad_trust_store")
    expect(err.message).to include("cRLNumber 5", "signature does not verify")
  end

  describe "ca: spellings" do
    it "reads a file whose name starts with 0 (once taken for DER)" do
      Dir.mktmpdir do |dir|
        %w[0ca.pem 0 00.pem 0é.pem 0\ ca.pem].each do |name|
          path = File.join(dir, name)
          File.write(path, root.pem)
          Dir.chdir(dir) do
            expect(Portcullis::TrustStore.new(ca: name).verify(leaf.cert, chain: [inter.cert], at: now).common_name)
              .to eq("api-client")
          end
          expect(Portcullis::TrustStore.new(ca: path, crls: [fresh]).crls.size).to eq(1)
        end
        File.write(File.join(dir, "0crl.pem"), fresh.to_pem)
        Dir.chdir(dir) do
          store = Portcullis::TrustStore.new(ca: "0ca.pem", crls: ["0crl.pem"])
          expect(error_of { verify(store) }.code).to eq("cert.revoked")
        end
      end
    end

    it "classifies PEM, DER and paths by the core's rule" do
      expect(Portcullis::Certificates.input_form("0ca.pem")).to eq(:path)
      expect(Portcullis::Certificates.input_form("0\n#{root.pem}")).to eq(:pem)
      expect(Portcullis::Certificates.input_form(root.der)).to eq(:der)
      expect(Portcullis::Certificates.input_form(fresh.to_der)).to eq(:der)
      expect(Portcullis::Certificates.input_form(root.der[0, 50])).to eq(:der) # broken DER stays DER
      expect(Portcullis::Certificates.input_form("two\nlines")).to be_nil
      expect(Portcullis::Certificates.input_form("")).to be_nil
      # PEM text with a leading "0" line is PEM, not DER.
      store = Portcullis::TrustStore.new(ca: "0 bundle\n#{root.pem}")
      expect(store.verify(leaf.cert, chain: [inter.cert], at: now).common_name).to eq("api-client")
      err = error_of { Portcullis::TrustStore.new(ca: "0missing.pem") }
      expect(err.code).to eq("cert.bad_trust_store")
      expect(err.message).to include("0missing.pem", "not a readable file")
      err = error_of { Portcullis::TrustStore.new(ca: "no\nsuch") }
      expect(err.message).to include("neither PEM, DER, nor a file name")
    end
  end
end

# frozen_string_literal: true

RSpec.describe Portcullis do
  it "loads the native extension" do
    expect(Portcullis::VERSION).to match(/\A\d+\.\d+\.\d+\z/)
  end

  it "has one error class per capability, all with a code" do
    %i[CertificateError Forbidden EgressDenied PathError CommandError ConfigError].each do |name|
      klass = Portcullis.const_get(name)
      expect(klass.ancestors).to include(Portcullis::Error, StandardError)
      expect(klass.new("m", code: "x.y").code).to eq("x.y")
    end
  end
end

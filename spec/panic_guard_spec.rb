# frozen_string_literal: true

require "open3"
require "rbconfig"
require "tmpdir"

# No Rust panic may cross into Ruby: magnus 0.8 would turn one into `fatal` (the process
# dies). The bindings register through errors.rs's guarded macros; a panic becomes a
# rescuable Portcullis::Error with code "internal.panic".
RSpec.describe "the panic guard" do
  let(:lib) { File.expand_path("../lib", __dir__) }

  it "caps max_certs with a typed error instead of aborting (2**62 once did)" do
    [2**62, 50_000_000, 65, 0].each do |n|
      expect { Portcullis::CertSource.new(:tls, max_certs: n) }
        .to raise_error(Portcullis::CertificateError) { |e|
          expect(e.code).to eq("cert.bad_limit")
          expect(e.message).to include("max_certs", "between 1 and 64")
        }
    end
    expect { Portcullis::CertSource.new(:tls, max_certs: 2**64) }.to raise_error(RangeError)
    expect { Portcullis::CertSource.new(:tls, max_certs: -1) }.to raise_error(RangeError)
    expect { Portcullis::CertSource.new(:nginx, trusted_proxies: ["10.0.0.1"], max_cert_bytes: 0) }
      .to raise_error(Portcullis::CertificateError, /max_cert_bytes/)
    expect(Portcullis::CertSource.new(:tls, max_certs: 64).kind).to eq(:tls)
  end

  it "refuses max_certs past the cap in portcullis.toml" do
    Dir.mktmpdir do |dir|
      path = File.join(dir, "portcullis.toml")
      File.write(path, "[source.s]\nkind = \"tls\"\nmax_certs = 9223372036854775807\n")
      expect { Portcullis.load(path) }.to raise_error(Portcullis::ConfigError) { |e|
        expect(e.code).to eq("config.invalid_value")
        expect(e.message).to include("max_certs", "64")
      }
    end
  end

  it "turns a panic anywhere in the extension into a rescuable Portcullis::Error" do
    script = <<~RUBY
      require "portcullis"
      results = %w[binding without_gvl each].map do |place|
        begin
          Portcullis::TestHooks.panic(place)
          "\#{place}: no error"
        rescue Portcullis::Error => e
          "\#{place}: \#{e.class} \#{e.code} \#{e.message.include?('the operation was not performed')}"
        end
      end
      # The process is still usable after three panics.
      results << Portcullis::Certificates.input_form("ca.pem").inspect
      puts results
    RUBY
    out, err, status = Open3.capture3({ "PORTCULLIS_TEST_PANIC_HOOK" => "1" },
                                      RbConfig.ruby, "-I", lib, "-e", script)
    expect(status.exitstatus).to eq(0), "stdout: #{out}\nstderr: #{err}"
    expect(out.lines.map(&:chomp)).to eq([
                                           "binding: Portcullis::Error internal.panic true",
                                           "without_gvl: Portcullis::Error internal.panic true",
                                           "each: Portcullis::Error internal.panic true",
                                           ":path"
                                         ])
  end

  it "registers the panic hooks only when asked to" do
    out, _err, status = Open3.capture3({ "PORTCULLIS_TEST_PANIC_HOOK" => nil }, RbConfig.ruby, "-I", lib,
                                       "-e", 'require "portcullis"; p defined?(Portcullis::TestHooks)')
    expect(status.success?).to be(true)
    expect(out.chomp).to eq("nil")
  end

  it "is used by every binding: no file registers methods through magnus's own macros" do
    sources = Dir[File.expand_path("../ext/portcullis/src/*.rs", __dir__)]
    expect(sources).not_to be_empty
    sources.each do |file|
      text = File.read(file)
      imports = text.scan(/use magnus::\{[^;]*\};|use magnus::[^;{]*;/m).join("\n")
      expect(imports).not_to match(/\b(method|function)\b\s*[,}]/), "#{file} imports magnus's method!/function!"
      expect(text).not_to match(/magnus::(method|function)!/), "#{file} calls magnus's macros directly"
      expect(text).not_to match(/\.foreach\(\s*\|/), "#{file}: wrap foreach callbacks in errors::each"
      uses = text.scan(/\b(method|function)!\(/).size
      next if uses.zero? || File.basename(file) == "errors.rs"

      expect(text).to match(/use crate::errors::\{[^}]*\b(function|method)\b[^}]*\}/), "#{file} must import the guarded macros"
    end
  end
end

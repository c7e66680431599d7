# frozen_string_literal: true

# Portcullis::Error#http_status: the core's one table (portcullis::Answer), the same the
# Rack middleware and the Rails concern answer with.
RSpec.describe "Portcullis::Error#http_status" do
  def status(code) = Portcullis::Error.new("x", code: code).http_status

  it "answers refusals 403, malformed values 400, missing things 404, server failures 500" do
    expect(status("path.escape")).to eq(403)
    expect(status("egress.metadata")).to eq(403)
    expect(status("command.option_injection")).to eq(403)
    expect(status("path.absolute")).to eq(400)
    expect(status("path.not_a_string")).to eq(400)
    expect(status("command.invalid_value")).to eq(400)
    expect(status("egress.bad_url")).to eq(400)
    expect(status("path.not_found")).to eq(404)
    expect(status("path.exists")).to eq(409)
    expect(status("path.io")).to eq(500)
    expect(status("command.spawn_failed")).to eq(500)
    expect(status("internal.panic")).to eq(500)
    expect(status("egress.resolve_failed")).to eq(502)
    expect(status("command.timeout")).to eq(504)
    expect(status("cert.expired")).to eq(401)
    expect(status("cert.untrusted_proxy")).to eq(403)
  end

  it "refuses what it does not know, and says 500 for an error without a code" do
    expect(status("no.such_code")).to eq(403)
    expect(status("")).to eq(403)
    expect(status(:"path.escape")).to eq(403)
    expect(Portcullis::Error.new("x").http_status).to eq(500)
  end

  it "is what the errors the library raises carry" do
    root = Portcullis::SafeRoot.new(Dir.tmpdir)
    expect { root.read("/etc/passwd") }.to raise_error(Portcullis::PathError) { |e| expect(e.http_status).to eq(400) }
    expect { root.read("../etc/passwd") }.to raise_error(Portcullis::PathError) { |e| expect(e.http_status).to eq(403) }
    expect { root.read("no-such-file-#{Process.pid}") }
      .to raise_error(Portcullis::PathError) { |e| expect(e.http_status).to eq(404) }
  end
end

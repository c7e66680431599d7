# frozen_string_literal: true

require "spec_helper"
require "tmpdir"
require "pathname"
require "rack/test"
require "rack/lint"

RSpec.describe Portcullis::Rack::Files do
  include Rack::Test::Methods

  marker = "PORTCULLIS-OUTSIDE-MARKER-rack"

  around do |example|
    Dir.mktmpdir("portcullis-rack") do |tmp|
      @base = Pathname(File.realpath(tmp))
      example.run
    end
  end

  let(:public_dir) { @base.join("public") }
  let(:body) { (0...100).map { |i| (i % 10).to_s }.join }

  before do
    public_dir.join("css").mkpath
    public_dir.join("css/site.css").write("body{}")
    public_dir.join("data.txt").write(body)
    public_dir.join("page.html").write("<p>hi</p>")
    @base.join("public2").mkpath
    @base.join("public2/secret").write(marker)
    @base.join("outside").mkpath
    @base.join("outside/secret.txt").write(marker)
    File.symlink("../outside", public_dir.join("to_outside"))
    File.symlink("/etc/passwd", public_dir.join("passwd"))
  end

  def app
    Rack::Lint.new(described_class.new(public_dir.to_s))
  end

  it "serves a file with type, length, last-modified and accept-ranges" do
    get "/css/site.css"
    expect(last_response.status).to eq(200)
    expect(last_response.body).to eq("body{}")
    expect(last_response.headers["content-type"]).to eq("text/css")
    expect(last_response.headers["content-length"]).to eq("6")
    expect(last_response.headers["accept-ranges"]).to eq("bytes")
    expect(Time.httpdate(last_response.headers["last-modified"]).to_i)
      .to eq(File.mtime(public_dir.join("css/site.css")).to_i)
  end

  it "uses the default mime type for unknown extensions" do
    public_dir.join("noext").write("x")
    get "/noext"
    expect(last_response.headers["content-type"]).to eq("text/plain")
  end

  it "answers HEAD with headers and no body" do
    head "/page.html"
    expect(last_response.status).to eq(200)
    expect(last_response.headers["content-length"]).to eq("9")
    expect(last_response.body).to eq("")
  end

  it "refuses other methods with 405 and allow" do
    %i[post put delete patch options].each do |verb|
      send(verb, "/page.html")
      expect(last_response.status).to eq(405)
      expect(last_response.headers["allow"]).to eq("GET, HEAD")
    end
  end

  [
    "/../public2/secret",
    "/%2e%2e/public2/secret",
    "/%2E%2E/outside/secret.txt",
    "/css/..%2f..%2fpublic2/secret",
    "/to_outside/secret.txt",
    "/passwd",
    "/%00",
    "/page.html%00.txt",
    "/css",
    "/",
    "/missing",
    "/..%5c..%5cpublic2%5csecret",
    "/%ff"
  ].each do |path|
    it "answers #{path} with a bare 404 that leaks nothing" do
      get path
      expect(last_response.status).to eq(404)
      expect(last_response.body).to eq("Not Found")
      expect(last_response.body).not_to include(marker)
      expect(last_response.headers.keys).not_to include("last-modified")
    end
  end

  it "serves a UTF-8 name however PATH_INFO spells it, under Rack::Lint" do
    public_dir.join("caf\u00E9.txt").write("cafe")
    ["/caf%C3%A9.txt", "/caf\u00E9.txt".b].each do |path|
      get "/", {}, { "PATH_INFO" => path }
      expect(last_response.status).to eq(200), path.inspect
      expect(last_response.body).to eq("cafe")
    end
  end

  # Rack::Lint refuses non-ASCII in a string that is not binary, but servers and middleware
  # in front do hand such strings over: answer them, never raise.
  it "answers PATH_INFO strings whose encoding does not match their bytes with 404, not a 500" do
    public_dir.join("caf\u00E9.txt").write("cafe")
    files = described_class.new(public_dir.to_s)
    utf8 = ->(s) { (+s).force_encoding(Encoding::UTF_8) }
    [utf8.call("/\xFF"), utf8.call("/%FF\xFF"), "/\xFF".b, utf8.call("/caf\xC3\xA9.txt\xFF")].each do |path|
      env = Rack::MockRequest.env_for("/").merge("PATH_INFO" => path)
      status, headers, body = files.call(env)
      expect(status).to eq(404), path.inspect
      Rack::Lint.new(->(_) { [status, headers, body] }).call(Rack::MockRequest.env_for("/"))
    end
    env = Rack::MockRequest.env_for("/").merge("PATH_INFO" => "/caf\u00E9.txt")
    expect(files.call(env)[0]).to eq(200)
  end

  it "answers HEAD for a refused name with an empty 404" do
    head "/../public2/secret"
    expect(last_response.status).to eq(404)
    expect(last_response.body).to eq("")
  end

  it "answers 304 when not modified since, 200 when modified" do
    mtime = File.mtime(public_dir.join("page.html"))
    get "/page.html", {}, "HTTP_IF_MODIFIED_SINCE" => mtime.httpdate
    expect(last_response.status).to eq(304)
    expect(last_response.body).to eq("")
    get "/page.html", {}, "HTTP_IF_MODIFIED_SINCE" => (mtime - 3600).httpdate
    expect(last_response.status).to eq(200)
    get "/page.html", {}, "HTTP_IF_MODIFIED_SINCE" => "garbage"
    expect(last_response.status).to eq(200)
  end

  it "serves a single byte range with 206" do
    get "/data.txt", {}, "HTTP_RANGE" => "bytes=10-19"
    expect(last_response.status).to eq(206)
    expect(last_response.body).to eq(body[10..19])
    expect(last_response.headers["content-range"]).to eq("bytes 10-19/100")
    expect(last_response.headers["content-length"]).to eq("10")

    get "/data.txt", {}, "HTTP_RANGE" => "bytes=-5"
    expect(last_response.status).to eq(206)
    expect(last_response.body).to eq(body[-5..])
  end

  it "answers an unsatisfiable range with 416 and serves multiple ranges whole" do
    get "/data.txt", {}, "HTTP_RANGE" => "bytes=500-600"
    expect(last_response.status).to eq(416)
    expect(last_response.headers["content-range"]).to eq("bytes */100")

    get "/data.txt", {}, "HTTP_RANGE" => "bytes=0-1,5-6"
    expect(last_response.status).to eq(200)
    expect(last_response.body).to eq(body)
  end

  it "accepts a SafeRoot with its own policy" do
    File.symlink("page.html", public_dir.join("alias.html"))
    deny = Rack::Lint.new(described_class.new(Portcullis::SafeRoot.new(public_dir, symlinks: :deny)))
    within = Rack::Lint.new(described_class.new(public_dir))
    expect(Rack::MockRequest.new(deny).get("/alias.html").status).to eq(404)
    expect(Rack::MockRequest.new(within).get("/alias.html").body).to eq("<p>hi</p>")
  end

  it "streams large files in chunks from the descriptor" do
    big = "x" * (300 * 1024)
    public_dir.join("big.bin").binwrite(big)
    app = described_class.new(public_dir.to_s)
    status, _headers, response = app.call(Rack::MockRequest.env_for("/big.bin"))
    chunks = []
    response.each { |c| chunks << c }
    response.close
    expect(status).to eq(200)
    expect(chunks.size).to be > 1
    expect(chunks.join).to eq(big)
    expect(response.to_io).to be_closed
  end

  it "shows that Rack's own Files follows a symlink out of its root" do
    rack_app = Rack::Files.new(public_dir.to_s)
    status, _h, rack_body = rack_app.call(Rack::MockRequest.env_for("/to_outside/secret.txt"))
    content = +""
    rack_body.each { |c| content << c }
    expect([status, content]).to eq([200, marker])

    get "/to_outside/secret.txt"
    expect(last_response.status).to eq(404)
  end
end

# frozen_string_literal: true

require "spec_helper"
require "tmpdir"
require "pathname"

RSpec.describe Portcullis::SafeRoot do
  marker = "PORTCULLIS-OUTSIDE-MARKER-spec"

  around do |example|
    Dir.mktmpdir("portcullis-fs") do |tmp|
      @base = Pathname(File.realpath(tmp))
      example.run
    end
  end

  let(:base) { @base }
  let(:public_dir) { base.join("public") }

  before do
    public_dir.join("css").mkpath
    public_dir.join("css/site.css").write("body{}")
    public_dir.join("index.html").write("INDEX")
    base.join("public2").mkpath
    base.join("public2/secret").write(marker)
    base.join("outside").mkpath
    base.join("outside/secret.txt").write(marker)
    File.symlink("../outside", public_dir.join("to_outside"))
    File.symlink(base.join("outside/secret.txt").to_s, public_dir.join("abs_outside"))
    File.symlink(public_dir.join("index.html").to_s, public_dir.join("abs_inside"))
    File.symlink("/proc/self/root", public_dir.join("proc_root"))
    File.symlink("index.html", public_dir.join("home.html"))
    File.symlink(".", public_dir.join("self"))
    File.symlink("loop", public_dir.join("loop"))
  end

  subject(:root) { described_class.new(public_dir) }

  def code_of
    yield
    nil
  rescue Portcullis::PathError => e
    e.code
  end

  describe "the seed's prefix check versus SafeRoot" do
    it "shows start_with? accepting ../public2/secret while SafeRoot refuses it" do
      base_path = public_dir # BASE in the seed's Assets::Show
      full_path = base_path.join("../public2/secret").expand_path
      # The seed's guard passes: "/tmp/x/public2/secret".start_with?("/tmp/x/public")
      expect(full_path.to_s.start_with?(base_path.to_s)).to be(true)
      expect(File.read(full_path)).to eq(marker) # ...and it would serve the secret.

      expect { root.read("../public2/secret") }
        .to raise_error(Portcullis::PathError) { |e| expect(e.code).to eq("path.escape") }
    end
  end

  describe "#open" do
    it "returns a real File from the checked descriptor, closed after the block" do
      io = nil
      content = root.open("css/site.css") { |f| io = f; f.read }
      expect(content).to eq("body{}")
      expect(io).to be_a(File)
      expect(io).to be_closed
    end

    it "returns an open File without a block, binary in 'rb'" do
      file = root.open("index.html", "rb")
      expect(file.binmode?).to be(true)
      expect(file.read.encoding).to eq(Encoding::BINARY)
    ensure
      file&.close
    end

    it "writes with 'w' (0640 minus umask, never executable) and appends with 'a'" do
      root.open("new.txt", "w") { |f| f.write("a") }
      root.open("new.txt", "a") { |f| f.write("b") }
      expect(public_dir.join("new.txt").read).to eq("ab")
      expect(public_dir.join("new.txt").stat.mode & 0o7137).to eq(0)
      expect(code_of { root.open("new.txt", "w", exclusive: true) }).to eq("path.exists")
    end

    it "respects the process umask for new files" do
      old = File.umask(0o077)
      root.write("private.txt", "x")
      expect(public_dir.join("private.txt").stat.mode & 0o777).to eq(0o600)
    ensure
      File.umask(old)
    end

    it "rejects unsupported modes before touching the disk" do
      expect { root.open("index.html", "r+") }.to raise_error(ArgumentError)
    end

    it "accepts Pathname names and refuses non-strings" do
      expect(root.open(Pathname("index.html"), &:read)).to eq("INDEX")
      expect { root.open(42) }.to raise_error(TypeError)
    end
  end

  describe "refusals" do
    {
      "" => "path.empty",
      "a\0b" => "path.nul",
      "a\nb" => "path.control",
      "a\\b" => "path.backslash",
      "C:/x" => "path.drive",
      "//server/share" => "path.drive",
      "/etc/passwd" => "path.absolute",
      "../etc/passwd" => "path.escape",
      "css/../../outside/secret.txt" => "path.escape",
      "to_outside/secret.txt" => "path.escape",
      "abs_outside" => "path.escape",
      "abs_inside" => "path.escape",
      "proc_root/etc/passwd" => "path.escape",
      "self/../public2/secret" => "path.escape",
      "loop" => "path.symlink",
      "missing" => "path.not_found",
      "css" => "path.not_a_file",
      "index.html/" => "path.not_a_directory",
      "%2e%2e/public2/secret" => "path.not_found" # never URL-decoded
    }.each do |name, code|
      it "refuses #{name.inspect} with #{code}" do
        expect(code_of { root.read(name) }).to eq(code)
      end
    end

    it "refuses invalid UTF-8 with path.not_utf8" do
      expect(code_of { root.read("caf\xE9".b) }).to eq("path.not_utf8")
    end

    it "raises PathError, a Portcullis::Error, whose message names the input" do
      root.read("../x")
    rescue Portcullis::PathError => e
      expect(e).to be_a(Portcullis::Error)
      expect(e.message).to include('"../x"')
    end

    it "under symlinks: :deny refuses even links that stay inside" do
      deny = described_class.new(public_dir, symlinks: :deny)
      expect(deny.symlinks).to eq(:deny)
      expect(code_of { deny.read("home.html") }).to eq("path.symlink")
      expect(root.read("home.html")).to eq("INDEX")
    end

    it "behaves the same with the portable resolver forced" do
      walk = described_class.new(public_dir, force_walk: true)
      expect(code_of { walk.read("to_outside/secret.txt") }).to eq("path.escape")
      expect(code_of { walk.read("self/../public2/secret") }).to eq("path.escape")
      expect(walk.read("self/home.html")).to eq("INDEX")
    end

    it "rejects an unknown symlink policy" do
      expect { described_class.new(public_dir, symlinks: :follow) }.to raise_error(ArgumentError)
    end

    it "raises PathError for a missing root, saying it is the root that is missing" do
      error = (described_class.new(base.join("nope")) rescue $!)
      expect(error).to be_a(Portcullis::PathError)
      expect(error.code).to eq("path.root_missing")
      expect(error.message).to include("root directory").and include("does not exist; create it")
    end

    it "refuses a name that is not a String (name[]=x arrives as an Array) with a PathError" do
      root = described_class.new(public_dir)
      [["a.txt"], { "a" => "b" }, nil, 7].each do |name|
        error = (root.read(name) rescue $!)
        expect(error).to be_a(Portcullis::PathError), name.inspect
        expect(error.code).to eq("path.not_a_string")
      end
    end
  end

  describe "the other methods" do
    it "#read returns binary content" do
      expect(root.read("index.html")).to eq("INDEX")
    end

    it "#write writes, and refuses an existing name when exclusive" do
      expect(root.write("out.bin", "\x00\xFF".b)).to eq(2)
      expect(public_dir.join("out.bin").binread).to eq("\x00\xFF".b)
      expect(code_of { root.write("out.bin", "x", exclusive: true) }).to eq("path.exists")
      expect(code_of { root.write("to_outside/new", "x") }).to eq("path.escape")
      expect(base.join("outside/new")).not_to exist
    end

    it "#exist? answers for missing names and raises for hostile ones" do
      expect(root.exist?("index.html")).to be(true)
      expect(root.exist?("css")).to be(true)
      expect(root.exist?("nope")).to be(false)
      expect(code_of { root.exist?("../public2/secret") }).to eq("path.escape")
    end

    it "#entries lists a directory, sorted" do
      expect(root.entries("css")).to eq(["site.css"])
      expect(root.entries).to include("index.html", "css")
      expect(code_of { root.entries("to_outside") }).to eq("path.escape")
    end

    it "#mkdir_p and #remove" do
      root.mkdir_p("a/b/c")
      expect(public_dir.join("a/b/c")).to be_directory
      expect(public_dir.join("a/b").stat.mode & 0o7027).to eq(0)
      root.remove("a/b/c")
      expect(public_dir.join("a/b/c")).not_to exist
      root.remove("to_outside") # the link, not its target
      expect(base.join("outside/secret.txt")).to exist
      expect(code_of { root.mkdir_p("../evil") }).to eq("path.escape")
    end

    it "#metadata and #stat" do
      meta = root.metadata("index.html")
      expect(meta.size).to eq(5)
      expect(meta).to be_file
      expect(meta.mtime).to be_within(2).of(File.mtime(public_dir.join("index.html")))
      expect(root.metadata("css")).to be_directory
      stat = root.stat("css/site.css")
      expect(stat).to be_a(File::Stat)
      expect(stat.size).to eq(6)
      expect(stat.ino).to eq(File.stat(public_dir.join("css/site.css")).ino)
      expect(code_of { root.stat("abs_outside") }).to eq("path.escape")
    end

    it "#store_upload stores under the content hash with an allowed extension" do
      name = root.store_upload("../../evil.PHP.png", "PNGDATA", extensions: %w[.png .jpg])
      expect(name).to match(/\A\h{64}\.png\z/)
      expect(public_dir.join(name).read).to eq("PNGDATA")
      expect(root.store_upload("other.png", "PNGDATA", extensions: %w[.png])).to eq(name)
      expect(code_of { root.store_upload("shell.php", "x", extensions: %w[.png]) }).to eq("path.extension")
    end

    it "#join is lexical, for logs" do
      expect(root.join("css/../index.html")).to eq(public_dir.join("index.html").to_s)
      expect(code_of { root.join("../x") }).to eq("path.escape")
    end

    it "#resolve_for_argv returns the real path beneath the root" do
      expect(root.resolve_for_argv("self/index.html")).to eq(public_dir.join("index.html").to_s)
      expect(code_of { root.resolve_for_argv("to_outside/secret.txt") }).to eq("path.escape")
    end

    it "#path and #inspect" do
      expect(root.path).to eq(public_dir.to_s)
      expect(root.inspect).to include(public_dir.to_s)
    end
  end

  it "survives GC.stress with 8 threads opening, reading and refusing" do
    errors = Queue.new
    GC.stress = true
    threads = Array.new(8) do |i|
      Thread.new do
        5.times do
          root.open("index.html") { |f| errors << "bad read" unless f.read == "INDEX" }
          errors << "bad read" unless root.read("css/site.css") == "body{}"
          begin
            root.read("to_outside/secret.txt")
            errors << "escaped"
          rescue Portcullis::PathError => e
            errors << "wrong code #{e.code}" unless e.code == "path.escape"
          end
          root.write("t#{i}.txt", "x")
          root.entries(".")
        end
      end
    end
    threads.each(&:join)
    GC.stress = false
    expect(errors.size).to eq(0)
  ensure
    GC.stress = false
  end
end

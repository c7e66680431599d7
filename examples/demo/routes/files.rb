# frozen_string_literal: true

require "tmpdir"
require "fileutils"
require "digest"

# GET /files?name= and POST /upload?name= — files strictly beneath a root, through SafeRoot.
module Demo
  # The fixture tree, fresh for every run and removed by Demo.stop!:
  #
  #   public/hello.txt               served
  #   public/to_outside -> ../outside   a symlink out of the root
  #   public2/secret                 a sibling whose path starts with ".../public"
  #   outside/secret.txt             reached only through the symlink
  #   uploads/                       where uploads land, under content-hash names
  #
  # Made by the server (beneath its TMPDIR, which its lockdown lets it write).
  module Files
    class << self
      attr_reader :public_dir, :root, :uploads

      def start
        fixtures = Dir.mktmpdir("portcullis-demo-files")
        Demo.on_stop { FileUtils.remove_entry(fixtures) }
        %w[public public2 outside uploads].each { |d| Dir.mkdir(File.join(fixtures, d)) }
        File.write(File.join(fixtures, "public", "hello.txt"), "hello from public/\n")
        File.write(File.join(fixtures, "public2", "secret"), "public2 secret\n")
        File.write(File.join(fixtures, "outside", "secret.txt"), "outside secret\n")
        File.symlink("../outside", File.join(fixtures, "public", "to_outside"))
        @public_dir = File.join(fixtures, "public")
        @root = Portcullis::SafeRoot.new(@public_dir)
        @uploads = Portcullis::SafeRoot.new(File.join(fixtures, "uploads"))
      end
    end
  end
  on_start { Files.start }

  UPLOAD_EXTENSIONS = %w[.png .jpg .pdf .txt].freeze
  UPLOAD_BODY = "quarterly report\n"

  # The seed article's check, for contrast: expand, then compare string prefixes. It says
  # "inside" for public2/ (a prefix of the string, not a child directory) and for anything
  # reached through a symlink (it never looks at the disk).
  def self.seed_check(name)
    public_dir = Files.public_dir
    File.expand_path(name, public_dir).start_with?(public_dir) ? "inside" : "outside"
  end

  route "GET", "/files", permission: "files:read" do |request, _identity|
    name = request.params["name"].to_s # decoded once, by Rack; SafeRoot never decodes
    body = Files.root.open(name, "rb", &:read)
    [200, body.strip]
  rescue Portcullis::PathError => e
    [403, "refused: #{e.code} (seed's start_with?: #{seed_check(name)})"]
  end

  route "POST", "/upload", permission: "files:write" do |request, _identity|
    stored = Files.uploads.store_upload(request.params["name"].to_s, request.body.read, extensions: UPLOAD_EXTENSIONS)
    [201, "stored as #{stored}"]
  rescue Portcullis::PathError => e
    [403, "refused: #{e.code}"]
  end

  call :viewer, "GET", "/files?name=hello.txt", status: 200, outcome: "hello from public/", note: "a file beneath the root"
  call :viewer, "GET", "/files?name=../etc/passwd",
       status: 403, outcome: "path.escape (seed's start_with?: outside)", note: "climbs above the root"
  call :viewer, "GET", "/files?name=../public2/secret",
       status: 403, outcome: "path.escape (seed's start_with?: inside)",
       note: "sibling dir: the prefix bug"
  call :viewer, "GET", "/files?name=%2e%2e/public2/secret",
       status: 403, outcome: "path.escape (seed's start_with?: inside)",
       note: "Rack decodes %2e%2e to .. once"
  call :viewer, "GET", "/files?name=to_outside/secret.txt",
       status: 403, outcome: "path.escape (seed's start_with?: inside)",
       note: "symlink out of the root"
  call :wrong_issuer, "GET", "/files?name=hello.txt", status: 403, outcome: "authz.forbidden", note: "no files:read"
  call :workload, "POST", "/upload?name=evil.php", body: "<?php system($_GET['c']);",
       status: 403, outcome: "path.extension", note: "extension not on the allowlist"
  call :workload, "POST", "/upload?name=report.txt", body: UPLOAD_BODY,
       status: 201, outcome: "stored as #{Digest::SHA256.hexdigest(UPLOAD_BODY)}.txt",
       note: "stored as sha256(content), not the client's name"
  call :viewer, "POST", "/upload?name=report.txt", body: UPLOAD_BODY,
       status: 403, outcome: "authz.forbidden", note: "no files:write"
end

# frozen_string_literal: true

require "time"
require "rack"

module Portcullis
  module Rack
    # A drop-in for Rack::Files that serves through a Portcullis::SafeRoot, so `../`,
    # `%2e%2e/`, the sibling-prefix trick and symlinks out of the root all end in a plain
    # 404 (Rack's own Files follows symlinks out of its root). GET and HEAD only;
    # Content-Type from the extension (Rack::Mime), Last-Modified / If-Modified-Since,
    # single byte ranges (206/416). The body streams from the checked descriptor.
    #
    #   use Portcullis::Rack::Files, "/var/app/public"   # or run it as an endpoint
    #   run Portcullis::Rack::Files.new(Portcullis::SafeRoot.new("public", symlinks: :deny))
    class Files
      ALLOWED_VERBS = %w[GET HEAD].freeze
      CHUNK_SIZE = 64 * 1024

      attr_reader :root

      # `root` is a Portcullis::SafeRoot or a directory for one (symlinks: :within).
      def initialize(root, headers = {}, default_mime = "text/plain")
        @root = root.is_a?(Portcullis::SafeRoot) ? root : Portcullis::SafeRoot.new(root)
        @headers = headers.transform_keys { |k| k.to_s.downcase }
        @default_mime = default_mime
      end

      def call(env)
        method = env["REQUEST_METHOD"]
        return method_not_allowed unless ALLOWED_VERBS.include?(method)

        head = method == "HEAD"
        name = file_name(env["PATH_INFO"])
        file = name && open_file(name)
        return not_found(head) unless file

        serve(env, name, file, head: head)
      end

      private

      # PATH_INFO arrives percent-encoded; decode exactly once, as Rack::Files does, and let
      # SafeRoot judge the result (it never decodes again). Decoded as bytes, whatever the
      # string's encoding claims; nil (404) unless the name is UTF-8, as SafeRoot names are.
      def file_name(path_info)
        name = ::Rack::Utils.unescape_path(path_info.to_s.b).force_encoding(Encoding::UTF_8)
        name.valid_encoding? ? name.sub(%r{\A/+}, "") : nil
      end

      def open_file(name)
        return nil if name.empty?

        @root.open(name, "rb")
      rescue Portcullis::PathError, TypeError, ArgumentError, Encoding::CompatibilityError
        nil
      end

      def serve(env, name, file, head:)
        stat = file.stat
        mtime = stat.mtime
        if not_modified?(env["HTTP_IF_MODIFIED_SINCE"], mtime)
          file.close
          return [304, {}, []]
        end

        headers = @headers.merge(
          "last-modified" => mtime.httpdate,
          "content-type" => ::Rack::Mime.mime_type(::File.extname(name), @default_mime),
          "accept-ranges" => "bytes"
        )
        size = stat.size
        status, offset, length = byte_range(env, size, headers)
        if status == 416
          file.close
          return [416, headers.merge("content-length" => "0"), []]
        end

        headers["content-length"] = length.to_s
        if head
          file.close
          return [status, headers, []]
        end
        [status, headers, Body.new(file, offset, length)]
      end

      def not_modified?(since, mtime)
        return false unless since

        mtime.to_i <= Time.httpdate(since).to_i
      rescue ArgumentError
        false
      end

      # [status, offset, length]; 206 for one satisfiable range, 416 for none, else 200.
      def byte_range(env, size, headers)
        ranges = ::Rack::Utils.get_byte_ranges(env["HTTP_RANGE"], size)
        if ranges.nil? || ranges.length > 1
          [200, 0, size]
        elsif ranges.empty?
          headers["content-range"] = "bytes */#{size}"
          [416, 0, 0]
        else
          range = ranges.first
          headers["content-range"] = "bytes #{range.begin}-#{range.end}/#{size}"
          [206, range.begin, range.end - range.begin + 1]
        end
      end

      def method_not_allowed
        [405, { "allow" => ALLOWED_VERBS.join(", "), "content-type" => "text/plain", "content-length" => "18" },
         ["Method Not Allowed"]]
      end

      # Deliberately the same answer for missing, refused and hostile names.
      def not_found(head)
        [404, { "content-type" => "text/plain", "content-length" => "9", "x-cascade" => "pass" },
         head ? [] : ["Not Found"]]
      end

      # Streams `length` bytes from `offset` of an open File, then closes it.
      class Body
        def initialize(file, offset, length)
          @file = file
          @offset = offset
          @length = length
        end

        def each
          @file.seek(@offset)
          remaining = @length
          while remaining.positive?
            chunk = @file.read([CHUNK_SIZE, remaining].min)
            break unless chunk

            remaining -= chunk.bytesize
            yield chunk
          end
        end

        def close
          @file.close unless @file.closed?
        end

        # For servers that can sendfile from a descriptor.
        def to_io = @file
      end
    end
  end
end

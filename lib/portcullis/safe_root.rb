# frozen_string_literal: true

module Portcullis
  # Opens, reads and writes files strictly beneath one directory, on disk: `../`,
  # absolute names, the `start_with?` prefix bug, symlinks out of the root and
  # directories swapped for symlinks mid-request are all refused with
  # Portcullis::PathError (`#code` such as "path.escape"). The checks and the opening
  # happen in the native core (openat2 with RESOLVE_BENEATH); this class only adapts
  # descriptors to Ruby File objects.
  #
  #   root = Portcullis::SafeRoot.new("/var/app/public", symlinks: :within)
  #   root.open("css/site.css") { |io| io.read }
  #   root.read("../etc/passwd") # => raises Portcullis::PathError (code "path.escape")
  #
  # Names are used as given: never URL-decoded, never stripped. Pass what your
  # framework decoded.
  class SafeRoot
    # File metadata as returned by #metadata. `type` is :file, :directory or :other.
    Metadata = Struct.new(:size, :mtime, :mode, :type, keyword_init: true) do
      def file? = type == :file
      def directory? = type == :directory
    end

    # mode string => [native open kind, File.for_fd mode]. Kinds match ext/portcullis/src/fs.rs.
    OPEN_READ = 0
    OPEN_TRUNCATE = 1
    OPEN_APPEND = 2
    OPEN_EXCLUSIVE = 3
    private_constant :OPEN_READ, :OPEN_TRUNCATE, :OPEN_APPEND, :OPEN_EXCLUSIVE

    # The common modes, looked up without a regexp on the hot path.
    SIMPLE_MODES = { "r" => OPEN_READ, "rb" => OPEN_READ, "w" => OPEN_TRUNCATE, "wb" => OPEN_TRUNCATE,
                     "a" => OPEN_APPEND, "ab" => OPEN_APPEND }.freeze
    private_constant :SIMPLE_MODES

    MODE_PATTERN = /\A(?<access>[rwa])(?<binary>b)?(?<encoding>:.+)?\z/.freeze
    private_constant :MODE_PATTERN

    class << self
      # `dir` is the root (String or Pathname). `symlinks:` is :within (follow links
      # that stay beneath the root, the default) or :deny (refuse any symlink).
      # `force_walk:` makes the portable resolver run instead of openat2 (for tests).
      def new(dir, symlinks: :within, force_walk: false)
        _new(File.path(dir), symlinks.to_s, force_walk ? true : false)
      end
    end

    # Opens a file beneath the root and returns a real File (or yields it and closes it
    # after the block, returning the block's value). Modes: "r", "w", "a", each with an
    # optional "b" and ":encoding"; `exclusive: true` with "w" refuses an existing file.
    # Files are created with mode 0640 (minus umask), never executable.
    def open(name, mode = "r", exclusive: false)
      mode = mode.to_str
      kind = (exclusive ? nil : SIMPLE_MODES[mode]) || open_kind(mode, exclusive)
      fd = _open_fd(name.is_a?(String) ? name : name_string(name), kind)
      file = File.for_fd(fd, mode) # autoclose is the default: the File owns the descriptor
      return file unless block_given?

      begin
        yield file
      ensure
        file.close unless file.closed?
      end
    end

    # The whole content of a file beneath the root, as a binary String.
    def read(name) = _read(name_string(name))

    # Writes `data` (truncating), or refuses an existing name when `exclusive:`.
    # Returns the number of bytes written.
    def write(name, data, exclusive: false)
      _write(name_string(name), String(data), exclusive ? true : false)
    end

    # True when `name` resolves to something beneath the root; false when it does not
    # exist. Hostile names (escapes, NUL, …) still raise PathError.
    def exist?(name) = _exist?(name_string(name))

    # Sorted entry names of a directory beneath the root, without "." and "..".
    def entries(dir = ".") = _entries(name_string(dir))

    # Creates the directory and its missing parents (mode 0750 minus umask).
    def mkdir_p(name)
      _mkdir_p(name_string(name))
      nil
    end

    # Removes a file, a symlink (not its target) or an empty directory.
    def remove(name)
      _remove(name_string(name))
      nil
    end

    # Size, mtime, permission bits and type of what `name` resolves to.
    def metadata(name)
      size, seconds, nanoseconds, mode, type = _metadata(name_string(name))
      Metadata.new(size: size, mtime: Time.at(seconds, nanoseconds, :nsec), mode: mode, type: type)
    end

    # A File::Stat of what `name` resolves to, read from a checked descriptor.
    def stat(name)
      fd = _open_path_fd(name_string(name))
      File.for_fd(fd, "r", autoclose: true).then do |handle|
        handle.stat
      ensure
        handle.close
      end
    end

    # Stores an upload under the SHA-256 of its content plus its extension, which must
    # be in `extensions` (e.g. %w[.png .jpg]). The client's name is never used on disk.
    # Returns the stored name.
    def store_upload(original_name, data, extensions:)
      _store_upload(String(original_name), String(data), Array(extensions).map(&:to_s))
    end

    # The absolute path root/name, lexically normalized: for logs only. It is not
    # race-safe and does not look at the disk; open through the SafeRoot instead.
    def join(name) = _join(name_string(name))

    # Resolves `name` beneath the root (like #open) and returns the absolute path it
    # resolved to, for passing to another program as an argument. Residual race: that
    # program opens the path later; only use it where untrusted parties cannot write
    # inside the root.
    def resolve_for_argv(name) = _resolve_for_argv(name_string(name))

    def inspect = "#<#{self.class} #{path} symlinks=#{symlinks}>"

    private

    def name_string(name)
      name = name.to_path if name.respond_to?(:to_path)
      # An Array or Hash here is usually a request parameter (`name[]=x`): a refusal, not a 500.
      unless name.is_a?(String)
        raise PathError.new("a file name must be a String, not #{name.class}; pass one name (params[:name] " \
                            "may be an Array or Hash when the client sends name[]=…)", code: "path.not_a_string")
      end

      name
    end

    def open_kind(mode, exclusive)
      match = MODE_PATTERN.match(mode.to_s)
      raise ArgumentError, "unsupported mode #{mode.inspect}; use r, w or a (with b and :encoding)" unless match

      case match[:access]
      when "r" then OPEN_READ
      when "a" then OPEN_APPEND
      else exclusive ? OPEN_EXCLUSIVE : OPEN_TRUNCATE
      end
    end
  end
end

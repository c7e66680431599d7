# frozen_string_literal: true

module Portcullis
  # Base class of every Portcullis failure. `#code` is a stable, machine-readable reason
  # such as "cert.expired" or "egress.reserved_address"; `#message` says what was wrong.
  class Error < StandardError
    attr_reader :code

    def initialize(message = nil, code: nil)
      super(message)
      @code = code
    end
  end

  # A client certificate (or chain) failed to decode or verify. Codes: "cert.*".
  class CertificateError < Error; end

  # An identity lacks a permission. Codes: "authz.*".
  class Forbidden < Error; end

  # An outbound destination is refused. Codes: "egress.*".
  class EgressDenied < Error; end

  # A file name does not stay beneath its root. Codes: "path.*".
  class PathError < Error; end

  # A command template or its parameters were refused, or running it failed. Codes: "command.*".
  class CommandError < Error; end

  # A configuration file is invalid. Codes: "config.*".
  class ConfigError < Error; end
end

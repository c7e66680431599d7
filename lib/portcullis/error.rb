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

    # The HTTP status a web app should answer with, from the core's one table
    # (Portcullis::Answer): 400 for a malformed value, 401 for no or a bad certificate, 403
    # for a policy refusal (and any code the table does not know), 404 for nothing there,
    # 409 for a file that exists, 500 for the server's own failure, 502 and 504 for an
    # upstream that failed or ran out of time. 500 when there is no code.
    def http_status
      code ? Portcullis._http_status(code.to_s) : 500
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

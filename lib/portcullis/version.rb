# frozen_string_literal: true

module Portcullis
  VERSION = "0.1.0"
end

# frozen_string_literal: true

module Portcullis
  # ActiveSupport::Notifications events, when ActiveSupport is loaded (nothing otherwise):
  #
  #   verify.portcullis   a client certificate verified      {identity:, permissions:, path:, method:}
  #   reject.portcullis   the middleware turned a request away {status:, code:, message:, path:, method:}
  #   egress.portcullis   an outbound URL or address refused  {code:, message:, via:}
  #   path.portcullis     a SafeRoot name refused             {code:, message:, via:}
  #   command.portcullis  a command refused or failed         {code:, message:, via:}
  #   spawn.portcullis    the guard refused (or reported) a spawn {code:, message:, via:, ...}
  #   reload.portcullis   portcullis.toml reloaded (or not)   {path:, reloaded:, code:, message:, error:}
  #
  # Payloads carry codes, messages and identity facts (subject, SPIFFE ID, fingerprint),
  # never key material or certificate bytes. The Railtie subscribes a logger that writes each
  # refusal and reload failure to Rails.logger as one line.
  module Instrumentation
    # Events whose payload carries a `code` when something was refused.
    REFUSALS = %w[reject egress spawn path command reload].freeze

    module_function

    def enabled?
      defined?(::ActiveSupport::Notifications) ? true : false
    end

    # Whether anyone subscribed to `event.portcullis`: hot paths ask before building a payload.
    def listening?(event)
      enabled? && ::ActiveSupport::Notifications.notifier.listening?("#{event}.portcullis")
    end

    # Publishes `event.portcullis`. A subscriber that raises, or that makes Portcullis publish
    # again (a logger that fetches a URL), never reaches the caller or recurses.
    def instrument(event, payload)
      return unless enabled?
      return if Thread.current[:portcullis_instrumenting]

      return unless listening?(event)

      begin
        Thread.current[:portcullis_instrumenting] = true
        ::ActiveSupport::Notifications.instrument("#{event}.portcullis", payload)
      rescue StandardError => e
        warn "portcullis: a #{event}.portcullis subscriber raised #{e.class}: #{e.message}"
      ensure
        Thread.current[:portcullis_instrumenting] = false
      end
    end

    # A refusal raised by a Portcullis method: `via` is "Class#method".
    def refused(event, error, via)
      # An error published once (HTTP#request raising what EgressPolicy#check! raised).
      return if error.frozen? || error.instance_variable_get(:@portcullis_published)

      error.instance_variable_set(:@portcullis_published, true)
      instrument(event, { code: error.code, message: error.message, via: via, error: error.class.name })
    end

    # Wraps `methods` of `klass` so each Portcullis::Error they raise is published as `event`
    # before it propagates. The success path pays one Ruby method frame.
    def watch(klass, event, methods)
      wrapper = Module.new
      methods.each do |name|
        wrapper.module_eval(<<~RUBY, __FILE__, __LINE__ + 1)
          def #{name}(...)
            super
          rescue Portcullis::Error => e
            Portcullis::Instrumentation.refused(#{event.inspect}, e, "#{klass.name}##{name}")
            raise
          end
        RUBY
      end
      klass.prepend(wrapper)
    end
  end
end

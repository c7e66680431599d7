# frozen_string_literal: true

namespace :portcullis do
  desc "Validate config/portcullis.toml (or PORTCULLIS_FILE) the way `portcullis check` does, and print what it allows"
  task :check do
    require "portcullis"
    root = defined?(Rails) && Rails.respond_to?(:root) && Rails.root ? Rails.root.to_s : Dir.pwd
    path = File.expand_path(ENV.fetch("PORTCULLIS_FILE", "config/portcullis.toml"), root)
    begin
      config = Portcullis.load(path)
    rescue Portcullis::ConfigError => e
      abort "portcullis: #{e.message}"
    end
    summary = config.summary
    puts "#{path}: OK#{' (empty: it allows nothing)' if summary.empty?}"
    summary.each do |entry|
      header = case entry[:kind].to_s
               when "access" then "[[access]] #{entry[:name]}"
               when "rack" then "[rack]"
               else "[#{entry[:kind]}.#{entry[:name]}]"
               end
      puts "", header
      entry[:details].each { |line| puts "  - #{line}" }
    end
  end
end

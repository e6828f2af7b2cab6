# Sidekiq's Web UI over the same Redis the jobs use. Serve with:
#   rackup -s puma -o 127.0.0.1 -p PORT config.ru      (Sidekiq 6.4.1, 7.3.2 and 8.1.7)
require_relative "jobs"
require "securerandom"
require "sidekiq/web"
begin
  require "rack/session" # rack 3 (Sidekiq 7/8 images): sessions are a separate gem
rescue LoadError
  require "rack/session/cookie" # rack 2.2 (Sidekiq 6.4.1) still ships them
end

# The UI keeps its CSRF token in the session; a random secret per boot is enough for tests.
use Rack::Session::Cookie, secret: SecureRandom.hex(32), same_site: true, max_age: 86_400
run Sidekiq::Web

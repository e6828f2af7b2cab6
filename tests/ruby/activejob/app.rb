# The Rails-less ActiveJob app (require "active_job", queue_adapter :sidekiq) gokogeri's tests run
# on the host's Debian Ruby (ruby-activejob 6.1 + ruby-sidekiq 6.4.1). The app itself lives in
# interop/ruby/activejob.rb, the one copy the interop containers mount (Rails 6.1/7.2): the same
# jobs, sample values and assertions on every Rails version. Loaded by `sidekiq -r` (it runs
# AjSampleJob, AjRecordJob, AjFailJob and records each perform to the Redis list aj:done), and
# run as a script for the command line described there:
#   REDIS_URL=... ruby tests/ruby/activejob/app.rb enqueue AjSampleJob QUEUE [WAIT] [ARGS_JSON]
require_relative "../../../interop/ruby/activejob"

AjInterop.main(ARGV) if $PROGRAM_NAME == __FILE__

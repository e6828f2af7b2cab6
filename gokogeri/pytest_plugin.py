"""gokogeri's pytest plugin (entry point ``pytest11``); fixtures are opt-in by name."""

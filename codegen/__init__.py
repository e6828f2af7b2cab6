"""gokogeri.codegen: compiles JSON Schema job contracts into typed Python."""

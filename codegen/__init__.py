"""gokogeri.codegen: compiles JSON Schema job contracts into typed Python.

``gokogeri generate`` (``codegen.cli.generate``) is the entry point; generated
modules import only ``gokogeri`` and ``gokogeri.codegen.runtime``.
"""

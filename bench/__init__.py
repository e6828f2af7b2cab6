"""gokogeri's benchmark harness (not part of the library; see bench/README.md).

``python -m bench`` runs everything and writes bench/results/; ``--quick`` is a
small smoke run of the harness itself for CI.
"""

"""Fault-injection suite: real redis-server and node processes under faults.

harness.py starts and breaks things (Redis with AOF, restarts, CLIENT KILL
storms, maxmemory, SIGKILL, a restarting supervisor), app.py is the node the
tests run in child processes, fuzz.py builds hostile payloads, and the test
modules assert zero loss and count duplicates against a ledger kept in a
second Redis that no fault touches.
"""

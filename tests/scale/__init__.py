"""Helpers for the scale tests: real Sentinel clusters, TLS servers, a swarm app."""

"""Fixtures shared by the real-server tests."""

from tests.realservers.redis_nodes import cluster

__all__ = ["cluster"]

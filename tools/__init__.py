"""Offline tooling: the whole-stack mock harness and the `plan` command."""

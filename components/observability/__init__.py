"""Observability: monitoring stack, the plan's alert rules and Alertmanager routing."""

"""Data layer: namespace, placement, Redis, Postgres, Qdrant, service certificates and their config renderers."""

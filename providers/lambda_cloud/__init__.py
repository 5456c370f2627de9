"""Lambda Cloud: an HTTP client for the v1 API and Pulumi dynamic providers built on it."""

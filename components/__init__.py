"""ComponentResources, one per file, and the pure helpers they use."""

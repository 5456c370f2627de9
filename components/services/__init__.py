"""The service fleet: the platform's services on the GPU pools, routed, scaled and traced."""

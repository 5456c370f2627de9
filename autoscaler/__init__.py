"""The Lambda Cloud node-group service for cluster-autoscaler's `externalgrpc` cloud provider."""

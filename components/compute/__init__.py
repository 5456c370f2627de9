"""Compute: the GPU instance pools on Lambda Cloud and the cloud-init that joins them to the cluster."""

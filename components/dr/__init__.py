"""DR region on AWS: region root, network, audit trail, cache, failover, EKS, Postgres replica, Qdrant mirror."""

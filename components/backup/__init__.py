"""Backups: the hardened backup buckets, the restore-check jobs and the jobs' shell scripts."""

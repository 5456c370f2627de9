"""Automated, fenced promotion of the DR PostgreSQL: the lease both regions respect, the promoter that
runs in the DR region (an AWS Lambda), the guard that fences the primary, and the failback command.

Self-contained on purpose: the Lambda's code archive is this package alone (boto3 comes with the
Python runtime), and the guard is `guard.sh`, run by the pinned aws-cli image.
"""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
"""What the promoter's code archive holds and where the guard's script lives."""

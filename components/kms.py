"""Pieces of KMS key policies every domain's keys share."""

from __future__ import annotations


def account_administers(account: str) -> dict[str, object]:
    """The key policy statement that keeps the key manageable: the account (and so its IAM policies)
    may do everything with it (KMS Developer Guide, "Default key policy")."""
    return {
        "Sid": "AccountAdministers",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }

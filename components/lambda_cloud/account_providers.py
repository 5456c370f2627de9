"""Alias of `providers.lambda_cloud.account_providers` for `__provider` values pickled before the move."""

from providers.lambda_cloud.account_providers import FilesystemProvider, FirewallRulesetProvider, SshKeyProvider

__all__ = ["FilesystemProvider", "FirewallRulesetProvider", "SshKeyProvider"]

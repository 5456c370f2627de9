"""Alias of `providers.lambda_cloud.provider` for `__provider` values pickled before the move."""

from providers.lambda_cloud.provider import InstanceProvider

__all__ = ["InstanceProvider"]

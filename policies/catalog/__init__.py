"""Dated price and region data: the one source of Lambda Cloud prices for settings, cost estimates and policies."""

from policies.catalog.lambda_catalog import (
    HOURS_PER_MONTH,
    InstanceType,
    LambdaCatalog,
    load_lambda_catalog,
)

__all__ = ["HOURS_PER_MONTH", "InstanceType", "LambdaCatalog", "load_lambda_catalog"]

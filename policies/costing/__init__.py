"""The cost model: monthly and hourly cost of a set of resources, from the dated price tables.

Standard library only: the policy pack imports it from its own virtualenv.
"""

from policies.costing.model import CostItem, CostReport, ResourceLike, estimate

__all__ = ["CostItem", "CostReport", "ResourceLike", "estimate"]

"""The cost model: monthly and hourly cost of a set of resources, from the dated price tables.

One model for the plan's cost table, settings-independent, and the budget policies: the policy pack
ships it, and the program imports it from the pack.
"""

from policies.costing.model import CostItem, CostReport, ResourceLike, UnpricedItem, Verdict, estimate, price

__all__ = ["CostItem", "CostReport", "ResourceLike", "UnpricedItem", "Verdict", "estimate", "price"]

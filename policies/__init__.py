"""The sophia-guardrails CrossGuard policy pack, with the price catalog and cost model it shares
with the program (`policies.catalog`, `policies.costing`)."""

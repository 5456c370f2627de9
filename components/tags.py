"""Tag sets every billable resource carries (pure helper, no resources)."""

from __future__ import annotations

from settings.model import StackSettings


def cost_tags(settings: StackSettings) -> dict[str, str]:
    """AWS-style tags; the AWS provider applies them as `default_tags`."""
    return {
        "project": "sophia",
        "environment": settings.environment.value,
        "owner": settings.tags.owner,
        "cost-centre": settings.tags.cost_centre,
        "managed-by": "pulumi",
    }

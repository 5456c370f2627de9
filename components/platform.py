"""`SophiaPlatform`: the root component every resource of a stack hangs under."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.tags import cost_tags
from settings.model import StackSettings


@dataclass(frozen=True)
class PlatformArgs:
    """Inputs of `SophiaPlatform`."""

    settings: StackSettings
    """The stack's validated settings."""


class SophiaPlatform(pulumi.ComponentResource):
    """One environment of the platform; children are named `<name>-<role>`."""

    aws_provider: aws.Provider | None
    """Explicit AWS provider for the DR region (default providers are disabled), or None."""

    def __init__(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sophia:platform:Platform", name, None, opts)
        settings = args.settings
        self.aws_provider = None
        if settings.dr is not None:
            self.aws_provider = aws.Provider(
                f"{name}-aws",
                aws.ProviderArgs(
                    region=settings.dr.aws_region,
                    default_tags=aws.ProviderDefaultTagsArgs(tags=cost_tags(settings)),
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({})

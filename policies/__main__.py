"""Entry point the Pulumi CLI runs: `pulumi preview --policy-pack policies --policy-pack-config <file>`.

The CLI starts it in `policies/` with the pack's own virtualenv; the project root goes on the
path so the rules can use the stdlib-only `catalog` and `costing` packages.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import PolicyPack

from policies.pack import PACK_ENFORCEMENT, PACK_NAME, all_policies

# Starts the analyzer's gRPC server and never returns: nothing may import this module.
PolicyPack(name=PACK_NAME, enforcement_level=PACK_ENFORCEMENT, policies=all_policies())

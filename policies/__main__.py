"""Entry point the Pulumi CLI runs: `pulumi preview --policy-pack policies --policy-pack-config <file>`.

The CLI's Python language host starts `<pack>/venv/bin/python -u -m pulumi.policy <engine> <pack>`
in the pack's directory, and `pulumi.policy` runs this file. The pack needs nothing outside its own
directory and virtualenv: the directory is bound here as the `policies` package, whatever it is
called (a published pack is unpacked under another name), and nothing else joins the path.
"""

import importlib.util
import sys
from pathlib import Path

_PACK_DIR = Path(__file__).resolve().parent
if "policies" not in sys.modules:
    _spec = importlib.util.spec_from_file_location(
        "policies", _PACK_DIR / "__init__.py", submodule_search_locations=[str(_PACK_DIR)]
    )
    assert _spec is not None
    assert _spec.loader is not None
    sys.modules["policies"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules["policies"])

from policies.analyzer import serve  # noqa: E402 - the package is bound above
from policies.pack import analyzer  # noqa: E402

# Starts the analyzer's gRPC server and never returns: nothing may import this module.
serve(analyzer())

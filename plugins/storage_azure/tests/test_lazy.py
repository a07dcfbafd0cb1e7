"""The plugin's entry point module and its resolvers load without azure-storage-blob or azure-identity."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
import clearml_core_storage_azure as plugin
specs = [*plugin.clearml_storage_backends(), *plugin.clearml_credential_resolvers()]
from clearml_core_storage_azure import resolvers, settings  # what `plugins list` and the chain need
print(json.dumps(sorted(m for m in sys.modules if m == "azure" or m.startswith("azure."))))
"""


def test_entry_point_and_resolvers_import_no_azure_sdk() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == []

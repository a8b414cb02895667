"""The offload core must stay importable and testable without Dagster."""

import subprocess
import sys


def test_core_does_not_import_dagster():
    code = (
        "import sys, offload_pipeline.core.offload, offload_pipeline.core.reconcile, "
        "offload_pipeline.core.status, offload_pipeline.config, offload_pipeline.demo.feed; "
        "print('dagster' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

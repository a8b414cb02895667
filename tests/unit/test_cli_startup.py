"""What the command line loads before it needs it, and its garbage-collection policy."""

import gc
import subprocess
import sys

import pytest

from offload_pipeline.cli import _startup_uncollected

HEAVY = ("dagster", "pyiceberg", "pyarrow", "pandas", "sqlalchemy")


def loaded_after(*args: str) -> list[str]:
    """The heavy libraries a fresh process has imported after running ``main(args)``."""
    code = (
        "import sys\n"
        "from offload_pipeline.cli import main\n"
        "try:\n"
        f"    main({list(args)!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stderr.split()


@pytest.mark.parametrize("args", [("--help",), ("--version",), ("run", "--help")])
def test_help_and_version_import_no_heavy_library(args):
    assert loaded_after(*args) == []


def test_startup_freezes_its_objects_and_collects_again_after():
    assert gc.isenabled() and gc.get_freeze_count() == 0
    with _startup_uncollected() as started:
        assert not gc.isenabled()
        started()
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0
    # a process that goes on (tests, an embedding caller) collects everything again
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_startup_failing_before_it_ends_restores_collection():
    with pytest.raises(RuntimeError), _startup_uncollected():
        raise RuntimeError("import failed")
    assert gc.isenabled() and gc.get_freeze_count() == 0

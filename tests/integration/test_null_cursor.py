"""Hot-tier rows with a NULL cursor column are in no window: they are refused, never skipped.

Every read of the offload, the reconciliation and the lag filters on the cursor, and a NULL
compares as unknown, so such rows would silently never reach Iceberg.
"""

from __future__ import annotations

import dagster as dg
import pytest

from offload_pipeline.core.reconcile import check_closed_windows
from offload_pipeline.defs.checks import reconcile
from offload_pipeline.defs.resources import OffloadResource
from offload_pipeline.errors import NullCursorError, classify
from tests.hot_tiers import DEMO_TABLES

pytestmark = pytest.mark.integration
TABLE = DEMO_TABLES[0]


def test_a_null_event_time_refuses_the_first_run_before_anything_is_created(any_project):
    any_project.seed(50)
    any_project.hot.add_null_cursor_row(TABLE, "exchange_timestamp")
    with pytest.raises(NullCursorError) as caught:
        any_project.offload()
    message = str(caught.value)
    assert f"table '{TABLE}'" in message
    assert "1 row(s) with 'exchange_timestamp' NULL" in message
    assert classify(caught.value) == "schema_mismatch" and not caught.value.retryable
    assert any_project.catalog().load(any_project.spec()) is None


def test_null_rows_after_an_offload_fail_the_run_verify_and_the_check_until_fixed(any_project):
    any_project.seed(200)
    first = any_project.offload()
    assert first.rows == 200
    any_project.seed(30)
    any_project.hot.add_null_cursor_row(TABLE, "exchange_timestamp")
    any_project.hot.add_null_cursor_row(TABLE, "exchange_timestamp")

    with pytest.raises(NullCursorError, match="2 row"):
        any_project.offload()
    assert any_project.state().watermark == first.watermark  # nothing committed
    verdict = any_project.reconcile()
    assert verdict.null_cursor_rows == 2 and not verdict.ok
    check = check_closed_windows(any_project.table(), days=2)
    assert check.null_cursor_rows == 2 and check.severity == "error"

    any_project.hot.execute(f'DELETE FROM "{TABLE}" WHERE exchange_timestamp IS NULL')
    assert any_project.offload().rows == 30
    assert any_project.reconcile().ok
    assert check_closed_windows(any_project.table(), days=2).severity == "ok"


def test_a_null_tie_breaker_is_refused_too(project):
    project.seed(20)
    project.hot.add_null_cursor_row(TABLE, "sequence_number")
    with pytest.raises(NullCursorError, match="'sequence_number' NULL"):
        project.offload()


def test_the_reconciliation_check_reports_an_error_with_the_count(project):
    project.seed(40)
    project.offload()
    project.hot.add_null_cursor_row(TABLE, "exchange_timestamp")
    result = reconcile(OffloadResource(config_path=str(project.config_path)), project.spec())
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert result.metadata["null_cursor_rows"].value == 1
    assert "NULL cursor column" in result.description


def test_cli_run_fails_and_verify_reports_the_null_rows(project):
    project.seed(40)
    assert project.cli("run", "--table", TABLE).returncode == 0
    project.hot.add_null_cursor_row(TABLE, "exchange_timestamp")
    run = project.cli("run", "--table", TABLE)
    assert run.returncode == 1
    assert "error_type=schema_mismatch" in run.stderr and "'exchange_timestamp' NULL" in run.stderr
    verify = project.cli("verify", "--table", TABLE)
    assert verify.returncode == 1
    assert "null_cursor_rows=1" in verify.stdout

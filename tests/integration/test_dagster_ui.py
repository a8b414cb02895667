"""The Dagster UI in a real browser (Debian's chromium, driven by playwright) against
``dagster dev`` on a seeded project: Materialize on a table's page offloads, the days asset's
partition view shows every day Iceberg holds and no other, and a two-day backfill launched from
its dialog is one run replacing exactly those days. Screenshots go to ``test-artifacts/``."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from offload_pipeline.core.iceberg.commit import Range
from offload_pipeline.core.reconcile import iceberg_day_counts
from offload_pipeline.core.window import DAY, MICROS, to_micros
from offload_pipeline.defs.jobs import days_key, partition_of
from offload_pipeline.demo.stack import free_port
from tests.conftest import ROOT, Project, write_config
from tests.hot_tiers import DEMO_TABLES

pytestmark = [pytest.mark.integration, pytest.mark.browser]
TABLE = DEMO_TABLES[0]
DAYS = f"{TABLE}_days"
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts" / "dagster-ui"
STATUSES = """
query Statuses($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    ... on AssetNode {
      assetPartitionStatuses {
        ... on TimePartitionStatuses { ranges { status startKey endKey } }
      }
    }
  }
}"""


@pytest.fixture
def seeded(tmp_path: Path) -> Project:
    """Four UTC days of one table in the hot tier, nothing offloaded, the schedule off."""
    project = Project(tmp_path, write_config(tmp_path, schedule={"enabled": False}))
    project.seed(3_000, span_seconds=3 * 86_400)
    return project


@pytest.fixture
def dagster_dev(seeded: Project) -> Iterator[str]:
    """``dagster dev`` (webserver and daemon) on the workspace, on a free port."""
    port = free_port()
    log = (seeded.dir / "dagster-dev.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "dagster", "dev", "-w", str(ROOT / "workspace.yaml")]
        + ["-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT,
        env={**os.environ, "OFFLOAD_CONFIG": str(seeded.config_path)},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: _get(f"{url}/server_info"), 90, "the Dagster webserver")
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


@pytest.fixture
def page(dagster_dev: str) -> Iterator[Any]:
    """A chromium page; the system browser, never a downloaded one."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    print(f"screenshots: {ARTIFACTS}")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900}, base_url=dagster_dev)
            page.set_default_timeout(60_000)
            yield page
        finally:
            browser.close()


def test_materialize_offloads_partitions_tell_the_truth_and_a_range_backfill_is_one_run(
    seeded, page
):
    project = seeded
    # press Materialize on the table's page: no dialog, the run offloads everything
    page.goto(f"/assets/{TABLE}")
    _dismiss_newsletter(page)
    page.get_by_role("button", name=re.compile(r"Materialize$")).click()
    _wait(lambda: project.iceberg_rows() == 3_000, 120, "the offload's rows in Iceberg")
    (offload_run,) = _runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.SUCCESS]), wait=60)
    page.reload()
    page.get_by_text("Latest materialization").first.wait_for()
    page.screenshot(path=ARTIFACTS / "asset-page.png")

    # the days asset: every day Iceberg holds is materialized, none missing, no other day
    held = _days_held(project)
    assert len(held) == 4  # three days ago up to today
    page.goto(f"/assets/{DAYS}?view=partitions")
    page.get_by_text(f"Materialized ({len(held)})").wait_for()
    page.screenshot(path=ARTIFACTS / "days-partitions.png")
    assert _materialized_days(page) == set(held)

    # a two-day backfill from the dialog replaces exactly those days, in one run
    first, last = _day(2), _day(1)
    _duplicate_rows(project, [_day(3), first])
    damaged = iceberg_day_counts(*_counting(project))
    page.get_by_role("button", name=re.compile(r"Materialize…$")).click()
    dialog = page.get_by_role("dialog")
    selection = dialog.get_by_placeholder(re.compile("No matching partitions|ex: "))
    selection.fill(f"[{first}...{last}]")
    selection.press("Enter")
    dialog.get_by_text("2 partitions").wait_for()
    dialog.screenshot(path=ARTIFACTS / "backfill-dialog.png")
    dialog.get_by_role("button", name="Launch backfill").click()
    (run,) = _runs(dg.RunsFilter(tags={"dagster/backfill": _any_backfill()}), wait=120)
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert run.asset_selection == {days_key(TABLE)}
    assert run.tags["dagster/asset_partition_range_start"] == first
    assert run.tags["dagster/asset_partition_range_end"] == last
    page.goto(f"/runs/{run.run_id}")
    page.get_by_text("RUN_SUCCESS").first.wait_for()
    page.screenshot(path=ARTIFACTS / "backfill-run.png")

    repaired = iceberg_day_counts(*_counting(project))
    day = {name: to_micros(datetime.fromisoformat(name).replace(tzinfo=UTC)) for name in held}
    assert repaired[day[first]] == damaged[day[first]] - 5  # its duplicates are gone
    assert repaired[day[last]] == damaged[day[last]]
    assert repaired[day[_day(3)]] == damaged[day[_day(3)]]  # outside the range: untouched
    summary = project.catalog().load(project.spec()).current_snapshot().summary
    assert summary["offload.backfill"] == f"[{first}T00:00:00Z, {_day(0)}T00:00:00Z)"
    assert offload_run.run_id != run.run_id
    assert _materialized_days(page) == set(held)


def _dismiss_newsletter(page: Any) -> None:
    """The first visit of a fresh instance may open Dagster's newsletter dialog."""
    skip = page.get_by_role("button", name="Skip")
    try:
        skip.wait_for(timeout=5_000)
    except Exception:  # noqa: BLE001 - playwright's timeout: the dialog did not open
        return
    skip.click()


def _materialized_days(page: Any) -> set[str]:
    """The days the UI's partition status shows materialized (its GraphQL query)."""
    response = page.request.post(
        "/graphql",
        data=json.dumps({"query": STATUSES, "variables": {"key": {"path": [DAYS]}}}),
        headers={"Content-Type": "application/json"},
    )
    node = response.json()["data"]["assetNodeOrError"]
    days = set()
    for rng in node["assetPartitionStatuses"]["ranges"]:
        if rng["status"] != "MATERIALIZED":
            continue
        day = datetime.fromisoformat(rng["startKey"])
        while (key := day.strftime("%Y-%m-%d")) <= rng["endKey"]:
            days.add(key)
            day += timedelta(days=1)
    return days


def _days_held(project: Project) -> dict[str, int]:
    """Rows per day Iceberg holds, read with pyiceberg."""
    return {
        partition_of(datetime.fromtimestamp(us / MICROS, UTC)): rows
        for us, rows in iceberg_day_counts(*_counting(project)).items()
    }


def _counting(project: Project) -> tuple[Any, str, int, int]:
    iceberg = project.catalog().load(project.spec())
    end = (to_micros(datetime.now(UTC)) // DAY + 1) * DAY
    return iceberg, project.spec().cursor.event_time, end - 10 * DAY, end


def _duplicate_rows(project: Project, days: list[str]) -> None:
    """Append five rows of each of ``days`` again, as a broken writer would."""
    iceberg = project.catalog().load(project.spec())
    column = project.spec().cursor.event_time
    for name in days:
        start = to_micros(datetime.fromisoformat(name).replace(tzinfo=UTC))
        rows = iceberg.scan(row_filter=Range(column, start, start + DAY).row_filter(), limit=5)
        iceberg.append(rows.to_arrow())


def _runs(filters: dg.RunsFilter, wait: float) -> list[dg.DagsterRun]:
    """The runs matching ``filters`` once all have finished."""
    found: list[dg.DagsterRun] = []

    def finished() -> bool:
        with dg.DagsterInstance.get() as instance:
            found[:] = instance.get_runs(filters=filters)
        return bool(found) and all(r.is_finished for r in found)

    _wait(finished, wait, f"runs {filters}")
    return found


def _any_backfill() -> str:
    with dg.DagsterInstance.get() as instance:
        _wait(lambda: bool(instance.get_backfills()), 30, "the backfill")
        (backfill,) = instance.get_backfills()
    return backfill.backfill_id


def _day(days_ago: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days_ago)).strftime("%Y-%m-%d")


def _get(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _wait(ready: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not ready after {seconds:.0f}s")
        time.sleep(0.5)

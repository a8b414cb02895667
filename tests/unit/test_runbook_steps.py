"""The runbooks' operator steps agree with each other and with the code they name."""

import re
from pathlib import Path

from offload_pipeline.defs.sensors import METRICS_SENSOR

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = sorted((ROOT / "docs" / "runbooks").glob("*.md"))


def paragraphs(path: Path) -> list[str]:
    """List items and paragraphs, each joined onto one line."""
    blocks = re.split(r"\n\s*\n|\n(?=\s*(?:-|\d+\.) )", path.read_text())
    return [" ".join(block.split()) for block in blocks]


def test_every_offload_now_step_is_the_materialize_button_with_its_cli_equivalent():
    steps = [
        (path.name, text)
        for path in RUNBOOKS
        for text in paragraphs(path)
        # "Materialize… →" on a days asset opens the backfill dialog, which is another procedure
        if re.search(r"\bmateriali[sz]e\b", text, re.IGNORECASE)
        and not re.search(r"Materialize…? →", text)
    ]
    assert len(steps) >= 4
    for name, text in steps:
        assert "asset page" in text and "Materialize button" in text, f"{name}: {text}"
        assert "above the" in text and "watermark" in text, f"{name}: {text}"
        assert "`offload-pipeline run --table T`" in text, f"{name}: {text}"


def test_no_runbook_turns_the_schedule_back_on_without_turning_it_off():
    for path in RUNBOOKS:
        text = " ".join(path.read_text().split())
        back_on = text.find("schedule back on")
        if back_on >= 0:
            off = re.search(r"schedule (?:→ )?off|turn the schedule off|stop the schedule", text)
            assert off and off.start() < back_on, (
                f"{path.name} turns on a schedule it never stopped"
            )


def test_backfill_steps_agree_with_the_writer_lock():
    # a backfill waits for the table's writer lock (tests/integration/test_backfill.py), so no
    # runbook may send the on-call to stop the schedule for one
    for path in RUNBOOKS:
        for text in paragraphs(path):
            for sentence in re.split(r"(?<=\.) ", text):
                if "backfill" in sentence and re.search(r"schedule (?:→ )?off|back on", sentence):
                    raise AssertionError(f"{path.name}: {sentence}")


def test_push_metrics_is_never_called_safe_next_to_the_sensor():
    # both push the same groups and the later push wins: a counter can go back
    # (tests/e2e/test_push_metrics_next_to_sensor.py)
    for path in [*RUNBOOKS, ROOT / "docs" / "monitoring.md", ROOT / "README.md"]:
        for text in paragraphs(path):
            if "push-metrics" in text and re.search(r"\bsafe\b", text):
                raise AssertionError(f"{path.name}: {text}")
    metrics = " ".join((ROOT / "docs" / "runbooks" / "metrics.md").read_text().split())
    assert f"`{METRICS_SENSOR}` → stop" in metrics


def test_removed_tables_need_nothing_by_hand():
    # the metrics sensor deletes its own pipeline's stale groups at every tick
    # (tests/e2e/test_metrics.py::test_removed_table_has_its_group_deleted)
    scheduler = " ".join((ROOT / "docs" / "runbooks" / "scheduler.md").read_text().split())
    assert "curl -X DELETE" not in scheduler
    assert "nothing to delete by hand" in scheduler

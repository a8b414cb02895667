"""The Dagster names without a public import still mean what the code expects of them."""

import dagster as dg

from offload_pipeline.defs.dagster_internals import (
    CHECKED_AGAINST,
    StepEventStatus,
    UnresolvedAssetJobDefinition,
    has_log_record_metadata,
)


def test_the_installed_dagster_is_the_one_the_private_names_were_checked_against():
    assert dg.__version__ == CHECKED_AGAINST, (
        "dagster moved: re-check offload_pipeline/defs/dagster_internals.py, then its pin"
    )


def test_define_asset_job_returns_the_annotated_type():
    job = dg.define_asset_job("j", selection=dg.AssetSelection.all())
    assert isinstance(job, UnresolvedAssetJobDefinition)


def test_step_statuses_read_from_step_stats_exist():
    assert {s.name for s in StepEventStatus} >= {"SUCCESS", "FAILURE", "SKIPPED", "IN_PROGRESS"}


def test_records_dagster_has_handled_are_marked():
    import logging

    from dagster._core.log_manager import LOG_RECORD_METADATA_ATTR

    record = logging.makeLogRecord({"msg": "x"})
    assert not has_log_record_metadata(record)
    setattr(record, LOG_RECORD_METADATA_ATTR, {})
    assert has_log_record_metadata(record)

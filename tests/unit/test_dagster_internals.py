"""The Dagster names without a public import still mean what the code expects of them."""

import dagster as dg

from offload_pipeline.defs.dagster_internals import (
    CHECKED_AGAINST,
    StepEventStatus,
    UnresolvedAssetJobDefinition,
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

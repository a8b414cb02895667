"""Dagster names with no public import in the pinned dagster: the one place to look when it moves.

``tests/unit/test_dagster_internals.py`` fails when the installed version is not the one these were
checked against.
"""

from dagster._config import validate_config
from dagster._core.definitions.unresolved_asset_job_definition import (
    UnresolvedAssetJobDefinition,
)
from dagster._core.execution.stats import RunStepKeyStatsSnapshot, StepEventStatus
from dagster._core.log_manager import has_log_record_metadata
from dagster._utils.schedules import is_valid_cron_string

CHECKED_AGAINST = "1.13.27"

__all__ = [
    "CHECKED_AGAINST",
    "RunStepKeyStatsSnapshot",
    "StepEventStatus",
    "UnresolvedAssetJobDefinition",
    "has_log_record_metadata",
    "is_valid_cron_string",
    "validate_config",
]

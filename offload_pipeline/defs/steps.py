"""What every step writing a table shares, asset or op: the table's pool, the retry policy, how
an offload error fails the step, and a signature Dagster inspects once."""

import inspect
from collections.abc import Callable
from typing import TypeVar

import dagster as dg

from offload_pipeline.config import RunSpec
from offload_pipeline.defs.metadata import MetadataKey
from offload_pipeline.errors import OffloadError

F = TypeVar("F", bound=Callable[..., object])


def signed(fn: F) -> F:
    """``fn`` with its signature computed once (``__signature__``, which ``inspect`` and Dagster
    take as given): Dagster's decorators inspect a step's function some fifteen times, a tenth of
    the definitions load at 1,000 tables."""
    fn.__signature__ = inspect.signature(fn)  # type: ignore[attr-defined]
    return fn


def pool_name(table: str) -> str:
    """The Dagster pool holding the single writer slot of ``table`` (limit 1 in dagster.yaml)."""
    return f"offload_{table}"


def retry_policy(run: RunSpec) -> dg.RetryPolicy:
    """The configured retries, with exponential backoff."""
    return dg.RetryPolicy(
        max_retries=run.max_retries,
        delay=run.retry_delay_seconds,
        backoff=dg.Backoff.EXPONENTIAL,
    )


def step_failure(error: OffloadError, table: str) -> dg.Failure:
    """``error`` as a step failure carrying its ``error_type``.

    Config and schema errors fail for good; transient ones go to the retry policy.
    """
    return dg.Failure(
        description=str(error),
        metadata={MetadataKey.ERROR_TYPE: error.error_type, MetadataKey.TABLE: table},
        allow_retries=error.retryable,
    )

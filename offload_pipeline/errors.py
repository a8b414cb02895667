"""Typed failures of the offload: one class per contract ``error_type``.

Every failure the pipeline can explain is an ``OffloadError`` carrying its ``error_type`` (the
metric label) and whether retrying the attempt can help (Dagster's RetryPolicy only retries those).
Messages built from a driver's text pass through ``scrub`` first, so no secret reaches a log.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal, get_args

ErrorType = Literal[
    "source_unavailable",
    "source_query",
    "schema_mismatch",
    "catalog_unavailable",
    "commit_conflict",
    "write_failed",
    "timeout",
    "config_invalid",
    "run_failure",
    "unknown",
]
ERROR_TYPES: tuple[str, ...] = get_args(ErrorType)


class OffloadError(Exception):
    """Base of every error the pipeline raises on purpose."""

    error_type: ErrorType = "unknown"
    retryable: bool = False


class SourceUnavailableError(OffloadError):
    """Raised when the hot tier cannot be reached or opened."""

    error_type = "source_unavailable"
    retryable = True


class SourceQueryError(OffloadError):
    """Raised when a query against the hot tier fails (missing table, bad SQL, bad value)."""

    error_type = "source_query"


class SchemaMismatchError(OffloadError):
    """Raised when hot-tier columns cannot be mapped onto the Iceberg table's schema."""

    error_type = "schema_mismatch"


class NullCursorError(SchemaMismatchError):
    """Raised when hot-tier rows have a NULL cursor column: no window ever holds them, so they
    would never be offloaded; the hot tier's data must be fixed, retrying cannot help."""

    remedy = "fill the column or delete the rows in the hot tier"


class CatalogUnavailableError(OffloadError):
    """Raised when the Iceberg catalog cannot be reached or loaded."""

    error_type = "catalog_unavailable"
    retryable = True


class LostTableError(CatalogUnavailableError):
    """Raised when a table's warehouse location holds Iceberg metadata the catalog does not account
    for (its entry was lost): creating a table or removing files there would lose data, and
    retrying cannot bring the entry back (``offload-pipeline register`` does)."""

    retryable = False


class CommitConflictError(OffloadError):
    """Raised when another writer committed to the table between plan and commit."""

    error_type = "commit_conflict"
    # a retry re-plans from the newly committed watermark, so it can never duplicate rows
    retryable = True


class WriteFailedError(OffloadError):
    """Raised when data or metadata files cannot be written to the warehouse."""

    error_type = "write_failed"
    retryable = True


class OffloadTimeoutError(OffloadError):
    """Raised when an attempt exceeds its time budget (e.g. waiting for the table's writer lock)."""

    error_type = "timeout"
    retryable = True


class ConfigInvalidError(OffloadError):
    """Raised when the table config is malformed or does not match the hot tier."""

    error_type = "config_invalid"


class OffloadCancelledError(OffloadError):
    """Raised at the core's next safe point after the process was asked to stop (SIGINT or
    SIGTERM): the operator ended the run, so it is never retried.

    Typed ``run_failure`` (the run was ended from outside the offload code, like a kill) rather
    than a new error type, so the contract's closed label set and the alert rules stay as they are.
    """

    error_type = "run_failure"


class BackfillRefusedError(ConfigInvalidError):
    """Raised when a backfill range is empty, reaches beyond the watermark, or would drop rows
    the hot tier no longer holds: the request is wrong, retrying cannot help."""


def classify(exc: BaseException) -> ErrorType:
    """Map any exception to a contract error type (``unknown`` for the unexplained)."""
    if isinstance(exc, OffloadError):
        return exc.error_type
    if isinstance(exc, TimeoutError):
        return "timeout"
    return "unknown"


def first_line(error: BaseException) -> str:
    """The first line of an error's message (drivers append server context), or its type name."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``***``, whether raw or URL-encoded.

    Drivers echo connection URLs in their errors and each encodes a password its own way
    (``quote``, ``quote_plus``, other safe characters, lower-case hex), so every character of a
    secret is matched raw or percent-encoded, and a space also as ``+``.
    """
    patterns = [
        "".join(_char_pattern(char) for char in secret)
        for secret in sorted({s for s in secrets if s}, key=len, reverse=True)
    ]
    return re.sub("|".join(patterns), "***", text) if patterns else text


def _char_pattern(char: str) -> str:
    """A regex matching ``char`` raw or percent-encoded (UTF-8, either hex case)."""
    encoded = "".join(
        "%" + "".join(f"[{d}{d.lower()}]" if d.isalpha() else d for d in f"{byte:02X}")
        for byte in char.encode()
    )
    forms = [re.escape(char), encoded, *([r"\+"] if char == " " else [])]
    return "(?:" + "|".join(forms) + ")"

"""The commit: rows staged as data files, landing together with the new state or not at all.

Every commit is built on the table version its run planned from, and tables refuse pyiceberg's
silent commit retry, so a writer that lost a race fails with ``CommitConflictError`` instead of
re-appending on top of the winner. A backfill's commit first deletes its range in the same
transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow as pa
from pyiceberg.exceptions import CommitFailedException, ValidationError
from pyiceberg.expressions import And, BooleanExpression, GreaterThanOrEqual, LessThan, Reference
from pyiceberg.expressions.literals import literal
from pyiceberg.table import Table

from offload_pipeline.config import TableSpec
from offload_pipeline.core.failpoints import failpoint
from offload_pipeline.core.iceberg.schema import write_schema
from offload_pipeline.core.iceberg.state import (
    SUMMARY_BACKFILL,
    SUMMARY_ROWS,
    SUMMARY_RUN_ID,
    decode_state,
)
from offload_pipeline.core.window import Watermark, from_micros, iso
from offload_pipeline.errors import CommitConflictError, SchemaMismatchError, WriteFailedError


@dataclass(frozen=True)
class Range:
    """Event times ``[start_ts, end_ts)`` of one table (µs), as an Iceberg row filter."""

    column: str
    start_ts: int
    end_ts: int

    def row_filter(self) -> BooleanExpression:
        return And(
            GreaterThanOrEqual(
                term=Reference(self.column), value=literal(_timestamp_literal(self.start_ts))
            ),
            LessThan(term=Reference(self.column), value=literal(_timestamp_literal(self.end_ts))),
        )

    def __str__(self) -> str:
        return f"[{iso(self.start_ts)}, {iso(self.end_ts)})"


def _timestamp_literal(us: int) -> str:
    return from_micros(us).isoformat()


def begin_commit(
    spec: TableSpec,
    table: Table,
    planned_from: Watermark | None,
    run_id: str,
    replacing: Range | None = None,
) -> PendingCommit:
    """Start a commit on ``table``, the version the run planned from; with ``replacing``, the
    commit first deletes every row of that range (same transaction).

    Raises:
        CommitConflictError: the committed watermark is no longer ``planned_from``.
    """
    if decode_state(table.properties).watermark != planned_from:
        raise CommitConflictError(
            f"table '{spec.name}': the committed watermark moved since this run planned"
        )
    pending = PendingCommit(spec, table, run_id)
    if replacing is not None:
        pending.delete(replacing)
    return pending


class PendingCommit:
    """Rows staged as data files, committed together with the new state properties.

    The transaction is built on the table version the run planned from, so the catalog rejects
    the commit if anything was committed since; that rejection surfaces as ``CommitConflictError``.
    """

    def __init__(self, spec: TableSpec, table: Table, run_id: str) -> None:
        self._spec = spec
        self._table = table
        self._tx = table.transaction()
        self._summary = {SUMMARY_RUN_ID: run_id}

    def delete(self, rng: Range) -> None:
        """Stage the deletion of every row in ``rng`` (whole files where partitions allow)."""
        self._summary[SUMMARY_BACKFILL] = str(rng)
        try:
            self._tx.delete(rng.row_filter(), snapshot_properties=dict(self._summary))
        except OSError as e:
            raise WriteFailedError(f"table '{self._spec.name}': rewriting data files: {e}") from e

    def append(self, rows: pa.Table) -> None:
        """Write ``rows`` as data files (nothing is visible until ``commit``).

        Raises:
            SchemaMismatchError: a value the table cannot take (retrying cannot help).
            WriteFailedError: the data files cannot be written.
        """
        schema = write_schema(self._table, rows.schema)
        self._check_fits(rows, schema)
        rows = rows.cast(schema)
        summary = {**self._summary, SUMMARY_ROWS: str(len(rows))}
        try:
            self._tx.append(rows, snapshot_properties=summary)
        except ValidationError as e:
            # e.g. a partition transform that does not fit its column's type
            raise SchemaMismatchError(
                f"table '{self._spec.name}': {self._spec.iceberg_identifier} cannot take the "
                f"rows: {e}"
            ) from e
        except OSError as e:
            raise WriteFailedError(f"table '{self._spec.name}': writing data files: {e}") from e

    def _check_fits(self, rows: pa.Table, schema: pa.Schema) -> None:
        """Refuse values the writer would fail on halfway, leaving data files behind: NULL in a
        required column, text that is not UTF-8 (drivers pass SQLite's bytes through)."""
        where = f"table '{self._spec.name}'"
        for field in schema:
            column = rows.column(field.name)
            if column.null_count and not field.nullable:
                raise SchemaMismatchError(
                    f"{where}: column '{field.name}': {column.null_count} row(s) hold NULL, but "
                    f"{self._spec.iceberg_identifier} requires a value: fill them in the hot tier "
                    "(nothing of this chunk was written)"
                )
            if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
                try:
                    column.validate(full=True)
                except pa.ArrowInvalid as e:
                    raise SchemaMismatchError(
                        f"{where}: column '{field.name}': text that is not valid UTF-8 ({e}): fix "
                        "the rows in the hot tier (nothing of this chunk was written)"
                    ) from e

    def commit(self, properties: Mapping[str, str]) -> Table:
        """Commit the staged rows and ``properties`` atomically; return the new table version."""
        self._tx.set_properties(dict(properties))
        failpoint("commit.before")
        try:
            committed = self._tx.commit_transaction()
        except CommitFailedException as e:
            raise CommitConflictError(
                f"table '{self._spec.name}': another writer committed to "
                f"{self._spec.iceberg_identifier} first; nothing of this attempt was "
                f"committed ({e})"
            ) from e
        except OSError as e:
            raise WriteFailedError(f"table '{self._spec.name}': writing table metadata: {e}") from e
        failpoint("commit.after")
        return committed

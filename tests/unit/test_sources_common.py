"""The helpers every hot-tier backend shares: scrubbing, schema, error shaping, batch casting."""

from decimal import Decimal
from urllib.parse import quote, quote_plus

import pyarrow as pa
import pytest

from offload_pipeline.config import Cursor, SourceSpec, TableSpec
from offload_pipeline.core.sources import _common
from offload_pipeline.core.sources._common import (
    arrow_schema,
    conform_batch,
    driver_error,
)
from offload_pipeline.errors import (
    OffloadTimeoutError,
    SchemaMismatchError,
    SourceQueryError,
    SourceUnavailableError,
    first_line,
    scrub,
)

PASSWORD = "p@ss:/w%rd x"  # every character URLs treat specially
TYPES = {"TIMESTAMP": _common.TIMESTAMP, "BIGINT": pa.int64(), "TEXT": pa.string()}


def arrow_type(table: str, column: str, declared: str) -> pa.DataType:
    if declared not in TYPES:
        raise SchemaMismatchError(f"table '{table}': column '{column}': {declared}")
    return TYPES[declared]


def spec(timeout: float = 600) -> TableSpec:
    source = SourceSpec(
        name="hot",
        kind="postgres",
        host="pg.internal",
        password=PASSWORD,
        statement_timeout_seconds=timeout,
    )
    return TableSpec(
        name="trades",
        source=source,
        source_table="bronze_trades",
        cursor=Cursor(event_time="ts", tie_breaker="seq"),
        primary_key=("trade_id",),
        namespace="bronze",
        iceberg_table="trades",
        partition_transform="day",
        partition_column="ts",
    )


@pytest.mark.parametrize(
    "encoded",
    [
        PASSWORD,
        quote(PASSWORD),
        quote(PASSWORD, safe=""),
        quote_plus(PASSWORD),
        quote(PASSWORD, safe="").lower(),  # some drivers write lower-case hex
    ],
    ids=["raw", "quote", "quote-safe-none", "quote_plus", "lower-case-hex"],
)
def test_scrub_removes_the_password_raw_and_url_encoded(encoded):
    text = f"could not connect to postgresql://offload:{encoded}@pg.internal:5432/market"
    assert (
        scrub(text, [PASSWORD])
        == "could not connect to postgresql://offload:***@pg.internal:5432/market"
    )


def test_scrub_leaves_text_without_the_secret_unchanged():
    text = 'FATAL: password authentication failed for user "offload" (p@ss is not it)'
    assert scrub(text, [PASSWORD]) == text
    assert scrub(text, [""]) == text
    assert scrub(text, []) == text


def test_scrub_removes_every_secret_and_every_occurrence():
    text = f"a={PASSWORD} b={quote_plus(PASSWORD)} c=token-1"
    assert scrub(text, [PASSWORD, "token-1"]) == "a=*** b=*** c=***"


def test_quote_doubles_the_quote_character_of_the_dialect():
    assert _common.quote('we"ird') == '"we""ird"'
    assert _common.quote("we`ird", "`") == "`we``ird`"


def test_first_line_keeps_only_the_first_line_or_names_the_type():
    assert first_line(RuntimeError("  connection refused\nDETAIL: x\nHINT: y")) == (
        "connection refused"
    )
    assert first_line(ConnectionResetError()) == "ConnectionResetError"


def test_schema_makes_cursor_and_key_columns_required():
    columns = [
        ("ts", "TIMESTAMP", False),
        ("seq", "BIGINT", False),
        ("trade_id", "BIGINT", False),
        ("symbol", "TEXT", True),
        ("note", "TEXT", False),
    ]
    schema = arrow_schema(
        spec(),
        columns,
        arrow_type,
        qualified_name="public.bronze_trades",
        location="postgresql://offload@pg.internal:5432/market",
    )
    assert schema == pa.schema(
        [
            pa.field("ts", _common.TIMESTAMP, nullable=False),
            pa.field("seq", pa.int64(), nullable=False),
            pa.field("trade_id", pa.int64(), nullable=False),
            pa.field("symbol", pa.string(), nullable=False),
            pa.field("note", pa.string(), nullable=True),
        ]
    )


def test_schema_of_a_missing_table_names_table_and_location():
    with pytest.raises(SourceQueryError) as caught:
        arrow_schema(spec(), [], arrow_type, qualified_name="public.gone", location="pg://h")
    assert str(caught.value) == "table 'trades': source table 'public.gone' not found in pg://h"
    assert not caught.value.retryable


def test_schema_passes_on_an_unmappable_type():
    with pytest.raises(SchemaMismatchError, match="table 'trades': column 'ts': GEOMETRY"):
        arrow_schema(
            spec(), [("ts", "GEOMETRY", True)], arrow_type, qualified_name="t", location="x"
        )


def test_conform_batch_casts_onto_the_declared_schema():
    schema = pa.schema(
        [pa.field("n", pa.int32(), nullable=False), pa.field("price", pa.decimal128(10, 2))]
    )
    batch = pa.RecordBatch.from_pydict({"n": pa.array([1, 2], pa.int64()), "p": ["1.25", None]})
    conformed = conform_batch(batch, schema, "trades")
    assert conformed.schema == schema
    assert conformed.column("price").to_pylist() == [Decimal("1.25"), None]
    assert conform_batch(conformed, schema, "trades") is conformed


def test_conform_batch_reads_an_extension_type_through_its_storage():
    class Numeric(pa.ExtensionType):
        def __init__(self) -> None:
            super().__init__(pa.string(), "test.numeric")

        def __arrow_ext_serialize__(self) -> bytes:
            return b""

        @classmethod
        def __arrow_ext_deserialize__(cls, storage_type, serialized):
            return cls()

    column = pa.ExtensionArray.from_storage(Numeric(), pa.array(["3.50"]))
    batch = pa.RecordBatch.from_arrays([column], names=["price"])
    schema = pa.schema([pa.field("price", pa.decimal128(10, 2))])
    assert conform_batch(batch, schema, "trades").column(0).to_pylist() == [Decimal("3.50")]


def test_conform_batch_names_table_and_column_when_values_do_not_fit():
    schema = pa.schema([pa.field("n", pa.int64()), pa.field("qty", pa.int32())])
    batch = pa.RecordBatch.from_pydict({"n": [1], "qty": pa.array([2**40], pa.int64())})
    with pytest.raises(
        SchemaMismatchError, match="table 'trades': column 'qty': values do not fit"
    ):
        conform_batch(batch, schema, "trades")


@pytest.mark.parametrize(
    ("failure", "error_class", "expected"),
    [
        ("connect", SourceUnavailableError, "cannot connect: no route to ***"),
        ("lost", SourceUnavailableError, "connection lost: no route to ***"),
        ("timeout", OffloadTimeoutError, "statement_timeout_seconds=1.5: no route to ***"),
        ("query", SourceQueryError, "pg://h: no route to ***"),
    ],
)
def test_driver_error_shapes_a_scrubbed_contract_error(failure, error_class, expected):
    raw = RuntimeError(f"no route to {quote_plus(PASSWORD)}\nCONTEXT: {PASSWORD}")
    error = driver_error(raw, spec(timeout=1.5), "pg://h", failure)
    assert type(error) is error_class
    assert str(error).startswith("table 'trades': hot tier pg://h: ")
    assert str(error).endswith(expected)
    assert PASSWORD not in str(error) and quote_plus(PASSWORD) not in str(error)
    assert error.retryable is (failure != "query")

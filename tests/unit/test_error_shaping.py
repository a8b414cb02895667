"""Every bad value is one typed line; every secret of the catalog is known so it can be scrubbed."""

import math
import re

import pytest
import yaml

from offload_pipeline.config import CatalogSpec, load_config
from offload_pipeline.core.window import MAX_MICROS, MIN_MICROS, checked_event_time, iso
from offload_pipeline.errors import ConfigInvalidError, SchemaMismatchError, scrub
from tests.conftest import write_config


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
@pytest.mark.parametrize(
    "path", ["run.batch_rows", "run.lock_timeout_seconds", "maintenance.snapshot_retention_days"]
)
def test_non_finite_numbers_are_refused_at_load(tmp_path, path, value):
    config = write_config(tmp_path)
    section, key = path.split(".")
    doc = yaml.safe_load(config.read_text())
    doc.setdefault(section, {})[key] = float(value.replace(".", ""))
    config.write_text(yaml.safe_dump(doc))
    assert math.isnan(doc[section][key]) or math.isinf(doc[section][key])
    with pytest.raises(ConfigInvalidError, match=f"{section}: {key}: .* must be a number"):
        load_config(config)


@pytest.mark.parametrize("day", ["2026-02-30", "2026-13-01"])
def test_an_impossible_backfill_start_date_is_one_line(tmp_path, day):
    config = write_config(tmp_path)
    # unquoted, as a user writes it: YAML itself builds the date and fails
    config.write_text(config.read_text() + f"backfill:\n  start_date: {day}\n")
    with pytest.raises(ConfigInvalidError, match="not a real date or time"):
        load_config(config)


def test_an_invalid_cron_is_refused_by_dagsters_parser():
    from offload_pipeline.defs.schedules import checked_cron

    assert checked_cron("*/15 * * * *", "schedule") == "*/15 * * * *"
    for cron in ("61 * * * *", "* * 31 2 *", "*/0 * * * *"):
        with pytest.raises(ConfigInvalidError, match=re.escape(f"schedule: cron: '{cron}'")):
            checked_cron(cron, "schedule")


def test_catalog_secrets_cover_key_named_properties_and_raw_or_encoded_url_passwords():
    spec = CatalogSpec(
        "c",
        {
            "type": "sql",
            "uri": "postgresql+psycopg2://u:Sup3r@Secr3t%23Tail@db.example:5432/cat?x=1",
            "adls.account-key": "KEY-VALUE",
            "rest.token": "tok-123",
            "warehouse": "s3://bucket/wh?secret_access=sec-456&region=eu",
        },
    )
    secrets = set(spec.secrets)
    assert {"KEY-VALUE", "tok-123", "sec-456"} <= secrets
    assert {"Sup3r@Secr3t%23Tail", "Sup3r@Secr3t#Tail", "Sup3r", "Secr3t%23Tail"} <= secrets
    assert "Tail" in secrets  # what a parser cutting at the decoded '#' leaves
    # what a driver prints after reading the raw '@' as the end of the password
    message = 'could not translate host name "Secr3t#Tail@db.example" to address'
    assert "Secr3t" not in scrub(message, spec.secrets)
    assert "Tail" not in scrub(message, spec.secrets)
    assert "db.example" in scrub(message, spec.secrets)


def test_short_pieces_of_a_password_are_not_scrubbed_from_ordinary_text():
    spec = CatalogSpec("c", {"uri": "postgresql://u:a@longer-piece@h/db"})
    assert "a" not in spec.secrets
    assert scrub("a table at h", spec.secrets) == "a table at h"


def test_event_times_beyond_a_date_are_refused_with_table_column_and_value():
    assert checked_event_time(MAX_MICROS, "t", "ts") == MAX_MICROS
    assert iso(MAX_MICROS) == "9999-12-31T23:59:59.999999Z"
    assert checked_event_time(None, "t", "ts") is None
    with pytest.raises(
        SchemaMismatchError, match=f"table 't': column 'ts': event time {MAX_MICROS + 1}"
    ):
        checked_event_time(MAX_MICROS + 1, "t", "ts")
    with pytest.raises(SchemaMismatchError, match="before year 1"):
        checked_event_time(MIN_MICROS - 1, "t", "ts")

"""Integer settings and the Pushgateway URL: refused at load with one line naming the field."""

import pytest

from offload_pipeline.config import load_config
from offload_pipeline.errors import ConfigInvalidError
from tests.unit.test_config import _with

NOT_WHOLE = {
    "batch rows": (lambda d: d["run"].update(batch_rows=1.5), "run: batch_rows: 1.5"),
    "max runtime": (
        lambda d: d["run"].update(max_runtime_seconds=90.5),
        "run: max_runtime_seconds: 90.5",
    ),
    "max retries": (lambda d: d["run"]["retry"].update(max_retries=2.5), "run.retry: max_retries"),
    "reconciliation days": (
        lambda d: d.update(reconciliation={"days": 1.5}),
        "reconciliation: days: 1.5",
    ),
    "target file size": (
        lambda d: d.update(maintenance={"target_file_size_bytes": 1e9 + 0.5}),
        "maintenance: target_file_size_bytes",
    ),
}


@pytest.mark.parametrize("case", sorted(NOT_WHOLE))
def test_a_fraction_in_an_integer_field_is_refused_not_truncated(tmp_path, case):
    mutate, expected = NOT_WHOLE[case]
    with pytest.raises(ConfigInvalidError) as err:
        load_config(_with(tmp_path, mutate))
    message = str(err.value)
    assert expected in message and "must be a whole number" in message
    assert "\n" not in message


def test_whole_numbers_written_as_floats_still_load(tmp_path):
    config = load_config(_with(tmp_path, lambda d: d["run"].update(batch_rows=2000.0)))
    assert config.run.batch_rows == 2000 and isinstance(config.run.batch_rows, int)


BAD_URLS = [
    "pushgateway:9091",  # no scheme: urllib reads "pushgateway" as the scheme
    "htp://pushgateway:9091",
    "http://",
    "http://pushgateway:90a1",
    "http://pushgateway:9091?x=1",
    "http://push gateway:9091",
    "ftp://pushgateway/",
]


@pytest.mark.parametrize("url", BAD_URLS)
def test_a_malformed_pushgateway_url_in_the_config_is_refused(tmp_path, monkeypatch, url):
    monkeypatch.delenv("OFFLOAD_PUSHGATEWAY_URL")
    path = _with(tmp_path, lambda d: d.update(metrics={"pushgateway_url": url}))
    with pytest.raises(ConfigInvalidError) as err:
        load_config(path)
    message = str(err.value)
    assert message.startswith("metrics: pushgateway_url: ") and "is not an http(s) URL" in message
    assert "\n" not in message


@pytest.mark.parametrize("url", BAD_URLS[:3])
def test_a_malformed_pushgateway_url_in_the_environment_is_refused(tmp_path, monkeypatch, url):
    monkeypatch.setenv("OFFLOAD_PUSHGATEWAY_URL", url)
    with pytest.raises(ConfigInvalidError, match=r"^OFFLOAD_PUSHGATEWAY_URL: .* is not an http"):
        load_config(_with(tmp_path, lambda d: None))


@pytest.mark.parametrize(
    "url", ["http://pushgateway:9091", "https://pg.example.com/prefix/", "http://127.0.0.1:9091"]
)
def test_well_formed_pushgateway_urls_load(tmp_path, monkeypatch, url):
    monkeypatch.setenv("OFFLOAD_PUSHGATEWAY_URL", url)
    assert load_config(_with(tmp_path, lambda d: None)).pushgateway_url == url.rstrip("/")

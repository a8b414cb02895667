"""The ``dagster.executor`` switch: Dagster's default unless asked, k8s_job through dagster-k8s,
and a wrong executor or executor config refused when the definitions load."""

import pytest
import yaml

from offload_pipeline.config import load_config
from offload_pipeline.definitions import build_definitions
from offload_pipeline.defs.jobs import BRONZE_JOB
from offload_pipeline.errors import ConfigInvalidError
from tests.conftest import write_config


def _config(tmp_path, dagster=None):
    path = write_config(tmp_path)
    if dagster is not None:
        doc = yaml.safe_load(path.read_text())
        doc["dagster"] = dagster
        path.write_text(yaml.safe_dump(doc))
    return load_config(path)


def test_without_the_key_the_jobs_keep_dagsters_default_executor(tmp_path):
    defs = build_definitions(_config(tmp_path))
    assert defs.resolve_job_def(BRONZE_JOB).executor_def.name == "multi_or_in_process_executor"


def test_k8s_job_runs_each_step_with_the_k8s_job_executor(tmp_path):
    config = _config(tmp_path, {"executor": "k8s_job", "executor_config": {"max_concurrent": 2}})
    job = build_definitions(config).resolve_job_def(BRONZE_JOB)
    assert job.executor_def.name == "k8s"


def test_an_unknown_executor_is_refused(tmp_path):
    with pytest.raises(ConfigInvalidError, match="dagster: executor: 'celery' must be one of"):
        _config(tmp_path, {"executor": "celery"})


@pytest.mark.parametrize("kind", ["k8s_job", "multiprocess"])
def test_a_wrong_executor_config_fails_when_the_definitions_load(tmp_path, kind):
    config = _config(tmp_path, {"executor": kind, "executor_config": {"max_concurent": 2}})
    with pytest.raises(ConfigInvalidError, match='dagster: executor_config: .*"max_concurent"'):
        build_definitions(config)

"""The executor of every job, chosen by the config's ``dagster.executor``.

``k8s_job`` runs each step (each table's offload) in its own Kubernetes pod through dagster-k8s,
an optional extra: it is imported only when the config asks for it, so a deployment without
Kubernetes never needs the package.
"""

from __future__ import annotations

import dagster as dg

from offload_pipeline.config import ExecutorSpec
from offload_pipeline.defs.dagster_internals import validate_config
from offload_pipeline.errors import ConfigInvalidError

K8S_EXTRA_HINT = "install the extra: pip install 'offload_pipeline[k8s]'"


def build_executor(spec: ExecutorSpec) -> dg.ExecutorDefinition | None:
    """The executor for ``spec``; None keeps Dagster's default (multiprocess, unconfigured).

    The executor config is checked against the executor's own schema here, so a wrong key fails
    when the code location loads, not when the first run starts (``configured`` defers it).
    """
    if spec.kind == "k8s_job":
        executor = _k8s_job_executor()
    elif spec.config:
        executor = dg.multiprocess_executor
    else:
        return None
    if not spec.config:
        return executor
    checked = validate_config(executor.config_schema.config_type, dict(spec.config))
    if not checked.success:
        problems = "; ".join(error.message for error in checked.errors or ())
        raise ConfigInvalidError(f"dagster: executor_config: {problems}")
    return executor.configured(dict(spec.config), name=executor.name)


def _k8s_job_executor() -> dg.ExecutorDefinition:
    try:
        from dagster_k8s import k8s_job_executor
    except ImportError as e:
        raise ConfigInvalidError(
            f"dagster: executor: k8s_job needs dagster-k8s; {K8S_EXTRA_HINT}"
        ) from e
    return k8s_job_executor

"""The docs stay true to the code: CLI verbs, metric names and alert names they mention exist."""

import re
from pathlib import Path

import yaml

from offload_pipeline.cli import main
from offload_pipeline.metrics.contract import BY_NAME

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


# contract verbs whose features are not built yet; the runbooks already describe them
def _mentions(pattern: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for doc in DOCS:
        for match in re.findall(pattern, doc.read_text()):
            found.setdefault(match, set()).add(doc.relative_to(ROOT).as_posix())
    return found


def test_every_cli_verb_in_the_docs_exists():
    verbs = set(main.commands)
    for verb, where in _mentions(
        r"offload-pipeline(?:\s+--config\s+\S+)?\s+([a-z][a-z-]+)"
    ).items():
        assert verb in verbs, f"`offload-pipeline {verb}` in {sorted(where)}"


def test_every_metric_in_the_docs_is_in_the_contract():
    for name, where in _mentions(r"\b(offload_[a-z_]+[a-z])\b").items():
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if base in BY_NAME or name.startswith("offload_pipeline"):
            continue
        if name.endswith(("_sensor", "_hook", "_job", "_schedule")):
            continue  # Dagster definitions, not metrics
        raise AssertionError(f"metric {name} in {sorted(where)} is not in the contract")


def test_every_alert_in_the_docs_exists_in_the_rules():
    rules = yaml.safe_load(
        (ROOT / "docker/prometheus/rules/iceberg-offload-alerts.yml").read_text()
    )
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    for name, where in _mentions(r"\b(IcebergOffload[A-Za-z]+)\b").items():
        assert name in alerts, f"alert {name} in {sorted(where)} is not in the rules"


def _architecture_tree() -> set[str]:
    """Module paths listed in the tree of docs/architecture.md (nesting by two-space indent)."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    stack: list[str] = []
    modules = set()
    for line in block.splitlines():
        if not line.strip():
            continue
        depth = (len(line) - len(line.lstrip())) // 2
        name = line.split()[0]
        stack = [*stack[:depth], name.rstrip("/")]
        if name.endswith(".py"):
            modules.add("/".join(stack))
    return modules


def test_the_architecture_tree_lists_every_module():
    package = ROOT / "offload_pipeline"
    actual = {
        p.relative_to(ROOT).as_posix()
        for p in package.rglob("*.py")
        if p.name != "__init__.py" or p.parent.name == "sources"
    }
    assert _architecture_tree() == actual

"""The fast test profile of the project's alert rules: generated from the rule file, never written
by hand. Only the waiting times shrink; expressions, thresholds, labels and annotations stay."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import DOCKER

RULES = DOCKER / "prometheus" / "rules" / "iceberg-offload-alerts.yml"
# `for` and `keep_firing_for` shrink by this factor, never below a few evaluations at 1 s
COMPRESSION = 60
FLOOR_SECONDS = 10
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(duration: str) -> float:
    return sum(int(n) * _UNITS[unit] for n, unit in _DURATION.findall(duration))


def fast_rules(rules: Path = RULES) -> dict[str, Any]:
    """The project's rule file with its waiting times compressed (``for``, ``keep_firing_for``)."""
    doc = yaml.safe_load(rules.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            for key in ("for", "keep_firing_for"):
                if key in rule:
                    compressed = max(FLOOR_SECONDS, seconds(rule[key]) / COMPRESSION)
                    rule[key] = f"{compressed:g}s"
    return doc


def use_fast_rules(config: dict[str, Any], directory: Path) -> dict[str, Any]:
    """``config`` (from ``prometheus_config``) loading the fast profile written to ``directory``."""
    path = directory / RULES.name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(fast_rules(), sort_keys=False))
    return {**config, "rule_files": [str(path)]}

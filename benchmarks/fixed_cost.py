"""The fixed cost of `offload-pipeline run` when there is nothing to offload, and where it goes.

Seeds --tables tables of 100 rows into a SQLite hot tier, brings them up to date with one run, then
times --repeat more runs as whole processes (median), each a real run in a real SQLite-backed
Dagster instance (this repository's dagster.yaml). Then one process times the phases of a run in
order: importing the command line, importing Dagster, opening the instance, building the
definitions and the cycle itself; the rest of the whole process is interpreter start and exit.

    python benchmarks/fixed_cost.py [--tables 3] [--repeat 5] [--python PATH]

``--python`` measures another installation (e.g. another checkout's virtualenv) on the same data.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from metrics_overhead import setup  # noqa: E402  (shared with that benchmark)

# the phases of `run` in one process, in the order the command line goes through them, with the
# command line's garbage-collection policy where it has one; printed at exit: the time from the
# last phase to the end of the process (interpreter teardown) is measured by the parent
PHASES = """
import contextlib, gc, sys, time
marks = [("start", time.perf_counter())]
def mark(name):
    marks.append((name, time.perf_counter()))
import offload_pipeline.cli as cli
mark("import of the CLI")
startup = getattr(cli, "_startup_uncollected", None)
with startup() if startup else contextlib.nullcontext(lambda: None) as started:
    import dagster as dg
    mark("import of dagster")
    from offload_pipeline.config import load_config
    from offload_pipeline.definitions import build_definitions
    from offload_pipeline.defs.runs import in_process_definitions, run_cycle
    config = load_config(sys.argv[1])
    mark("imports of the definitions")
    with dg.DagsterInstance.get() as instance:
        instance.get_runs(limit=1)
        mark("instance open")
        defs = in_process_definitions(build_definitions(config), False)
        mark("definitions")
        started()
        outcomes = run_cycle(defs, config, instance, [])
        mark("the cycle")
        assert all(o.success for o in outcomes), outcomes
        run = instance.get_runs(limit=1)[0]
        events = len(instance.all_logs(run.run_id))
for (_, before), (name, after) in zip(marks, marks[1:]):
    print(f"{name}\\t{after - before:.3f}")
print(f"total in process\\t{marks[-1][1] - marks[0][1]:.3f}")
print(f"events in the run\\t{events}")
if hasattr(cli, "entry"):
    gc.freeze()
print(f"ended at\\t{time.time()}", flush=True)
"""


def cpu_seconds() -> float:
    """User + system CPU seconds of the finished children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cli(python: str, config: Path, env: dict[str, str], *args: str) -> tuple[float, float]:
    """Wall and CPU seconds of one whole ``offload-pipeline`` process."""
    started, cpu = time.perf_counter(), cpu_seconds()
    cmd = [python, "-m", "offload_pipeline.cli", "--config", str(config), *args]
    # run from the data's directory: the interpreter's own checkout is what is measured, not
    # the one in the current directory
    subprocess.run(cmd, env=env, check=True, capture_output=True, cwd=config.parent)
    return time.perf_counter() - started, cpu_seconds() - cpu


def phases(python: str, config: Path, env: dict[str, str]) -> list[tuple[str, str]]:
    started = time.perf_counter()
    out = subprocess.run(
        [python, "-c", PHASES, str(config)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        cwd=config.parent,
    )
    ended, whole = time.time(), time.perf_counter() - started
    rows = [tuple(line.split("\t")) for line in out.stdout.splitlines()]
    in_process = float(dict(rows)["total in process"])
    teardown = ended - float(dict(rows)["ended at"])
    return [
        *rows[:-1],
        ("interpreter exit", f"{teardown:.3f}"),
        ("interpreter start", f"{whole - in_process - teardown:.3f}"),
        ("whole process", f"{whole:.3f}"),
    ]  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--python",
        action="append",
        help="Interpreter to measure (repeatable: runs alternate between them on the same data).",
    )
    parser.add_argument("--pushgateway-url", default="", help="Empty: metrics off.")
    args = parser.parse_args()
    pythons = args.python or [sys.executable]

    with tempfile.TemporaryDirectory(prefix="offload-fixed-cost-") as tmp:
        directory = Path(tmp)
        config = setup(directory, args.tables)  # 100 rows per table, the repository's dagster.yaml
        env = {**os.environ, "OFFLOAD_PUSHGATEWAY_URL": args.pushgateway_url}
        cli(pythons[0], config, env, "run")  # brings every table up to date
        walls: dict[str, list[float]] = {p: [] for p in pythons}
        cpus: dict[str, list[float]] = {p: [] for p in pythons}
        version: dict[str, list[float]] = {p: [] for p in pythons}
        for _ in range(args.repeat):
            for python in pythons:
                # the interpreter and the command line's own imports
                version[python].append(cli(python, config, env, "--version")[0])
                wall, cpu = cli(python, config, env, "run")
                walls[python].append(wall)
                cpus[python].append(cpu)
                print(f"  {python}: {wall:.2f} s, {cpu:.2f} s CPU (load {os.getloadavg()[0]:.2f})")
        for python in pythons:
            print(
                f"{python}: `run`, {args.tables} tables, nothing to offload: median "
                f"{statistics.median(walls[python]):.2f} s "
                f"({', '.join(f'{t:.2f}' for t in walls[python])}), "
                f"{statistics.median(cpus[python]):.2f} s CPU; "
                f"`--version` {statistics.median(version[python]):.2f} s"
            )
        for python in pythons:
            print(f"phases of one run (one process), {python}:")
            for name, value in phases(python, config, env):
                print(f"  {name:<28} {value}")
        print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

"""``scripts/bench``: run the benchmarks, print plain-text tables, write bench-results/*.json.

    scripts/bench                      # everything, SQLite and PostgreSQL (~20 min)
    scripts/bench --quick              # small sizes, a smoke run (~2 min)
    scripts/bench startup              # the same as --only startup (any benchmark name)
    scripts/bench --only overhead --backend sqlite --sizes 500
    scripts/bench --only ingest --profile bench-results/profiles   # pyinstrument profiles
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import (cluster, controller, dashboard, ingest, launch, output, overhead, scale, snakemake,
               startup, throughput)
from .common import BACKENDS, REPO, BenchError, Table, dbproc, postgres_reachable, say

Runner = Callable[[Sequence[str], Sequence[int], Path | None], tuple[Table, list[dict[str, Any]]]]
BENCHMARKS: dict[str, Runner] = {
    "startup": startup.run, "overhead": overhead.run, "throughput": throughput.run,
    "controller": controller.run, "launch": launch.run,
    "snakemake": snakemake.run, "cluster": cluster.run, "scale": scale.run, "ingest": ingest.run,
    "dashboard": dashboard.run, "output": output.run,
}
SIZES = {
    "startup": ([20], [5]),
    "overhead": ([100, 500, 2000], [20, 100]),
    "throughput": ([100, 500, 2000], [20, 100]),
    "controller": ([100, 500, 2000], [20, 100]),
    "launch": ([500], [100]),
    "snakemake": ([500], [20]),
    "cluster": ([100], [20]),
    "scale": ([10_000, 100_000, 1_000_000], [10_000]),
    "ingest": ([2000], [400]),
    "dashboard": ([10_000, 100_000, 1_000_000], [10_000]),
    "output": ([200], [20]),
}


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(prog="scripts/bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    p.add_argument("--only", choices=sorted(BENCHMARKS), action="append",
                   help="run only this benchmark (repeatable)")
    p.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    p.add_argument("--sizes", help="comma-separated sizes for the selected benchmark(s): "
                   "days (overhead), file rows (scale), files (ingest)")
    p.add_argument("--profile", type=Path, metavar="DIR",
                   help="run dbproc under pyinstrument and write profiles to DIR "
                   "(overhead, throughput and ingest; timings are then inflated)")
    p.add_argument("--out", type=Path, default=REPO / "bench-results", help="results folder")
    return p.parse_args(argv)


def context() -> dict[str, Any]:
    """Machine and load, for the record."""
    load = os.getloadavg()
    return {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_at_start": [round(x, 2) for x in load],
        "dont_write_bytecode": bool(os.environ.get("PYTHONDONTWRITEBYTECODE")),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected benchmarks; exit 1 when one could not run as intended."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in BENCHMARKS:  # `scripts/bench startup` = `--only startup`
        argv = ["--only", argv[0], *argv[1:]]
    args = parse_args(argv)
    backends = list(BACKENDS) if args.backend == "both" else [args.backend]
    if "postgresql" in backends:
        why = postgres_reachable()
        if why is not None:
            say(f"PostgreSQL unreachable ({why}); running SQLite only")
            backends.remove("postgresql")
    selected = args.only or list(BENCHMARKS)
    if args.profile is not None:
        args.profile = args.profile.resolve()
        args.profile.mkdir(parents=True, exist_ok=True)
    info = context()
    startup = dbproc("sqlite:///unused.sqlite", "--version")
    info["startup_s"] = round(startup.wall, 3)
    info["startup_cpu_s"] = round(startup.self_cpu, 3)
    print(f"dbproc benchmarks on {info['host']}: {info['cpus']} CPUs, Python {info['python']}, "
          f"load {info['loadavg_at_start']}, backends {', '.join(backends)}")
    print(f"start-up: `dbproc --version` takes {startup.wall:.2f} s wall "
          f"({startup.self_cpu:.2f} s CPU): paid once by every dbproc command\n", flush=True)
    results: dict[str, Any] = {"context": info, "tables": {}, "raw": {}}
    failed = False
    t0 = time.perf_counter()
    for name in selected:
        full, quick = SIZES[name]
        sizes = quick if args.quick else full
        if args.sizes:
            sizes = [int(s) for s in args.sizes.split(",")]
        say(f"== {name}: sizes {sizes}")
        try:
            table, raw = BENCHMARKS[name](backends, sizes, args.profile)
        except BenchError as exc:
            print(f"ERROR in {name}: {exc}", flush=True)
            results["raw"][name] = {"error": str(exc)}
            failed = True
            continue
        print(table.render() + "\n", flush=True)
        results["tables"][name] = table.as_dict()
        results["raw"][name] = raw
    info["total_s"] = round(time.perf_counter() - t0, 1)
    info["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = args.out / f"bench-{stamp}{'-quick' if args.quick else ''}.json"
    path.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"total {info['total_s']} s; load now {info['loadavg_at_end']}; results: {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

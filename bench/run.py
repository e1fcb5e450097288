"""Command timings as ratios to `python -c pass`, measured in the same run.

    python bench/run.py [--root DIR] [--runs 20] [--json]

Reports p50 wall time of: python -c pass (baseline), kb build (forced full rebuild), kb show,
kb query (end to end), kb search, and KnowledgeBase.query in process.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

QUESTION = "which method to explain my CNN's prediction?"


def wall(cmd: list[str], env: dict, runs: int, before=None) -> float:
    times = []
    for _ in range(runs):
        if before:
            before()
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=str(Path(__file__).resolve().parent.parent))
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    env = {**os.environ, "KB_ROOT": args.root}
    kb = [str(Path(sys.executable).with_name("kb"))]  # the console script users run
    subprocess.run(kb + ["build"], env=env, check=True, stdout=subprocess.DEVNULL)
    marker = Path(args.root) / "content"

    def touch():  # a changed mtime forces a full rebuild
        first = next(marker.rglob("*.yaml"))
        os.utime(first)

    rows = {"python -c pass": wall([sys.executable, "-c", "pass"], env, args.runs)}
    rows["kb build"] = wall(kb + ["build"], env, max(3, args.runs // 5), before=touch)
    rows["kb show"] = wall(kb + ["show", "method:integrated-gradients"], env, args.runs)
    rows["kb query"] = wall(kb + ["query", QUESTION], env, args.runs)
    rows["kb search"] = wall(kb + ["search", "polysemantic neurons"], env, args.runs)
    sys.path.insert(0, args.root)
    from kb import KnowledgeBase

    k = KnowledgeBase(args.root)
    k.query(QUESTION)
    inproc = []
    for _ in range(200):
        t0 = time.perf_counter()
        k.query(QUESTION)
        inproc.append(time.perf_counter() - t0)
    base = rows["python -c pass"]
    result = {name: {"seconds": round(t, 4), "ratio": round(t / base, 2)} for name, t in rows.items()}
    result["KnowledgeBase.query (in process)"] = {"seconds": round(statistics.median(inproc), 5), "ratio": None}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{'command':<36}{'p50 (s)':>10}{'x python -c pass':>18}")
    for name, r in result.items():
        print(f"{name:<36}{r['seconds']:>10.4f}{(str(r['ratio']) if r['ratio'] else '-'):>18}")


if __name__ == "__main__":
    main()

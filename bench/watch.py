"""A cold `kb query` on a large knowledge base, with and without `kb watch`, as ratios to `python -c pass`.

    python bench/watch.py [--records 100000] [--work /tmp/kb-watch-bench] [--runs 20]

Generates the synthetic tree (bench/synth.py) unless it is there, builds it, then times in turn, pair
by pair: `python -c pass` (B), `kb query` stat-ing the content (A1), and `kb query` while a watcher
runs (A2). Prints each command's median wall and CPU seconds (its own and its children's) and the
medians of the per-pair ratios A/B (pairing keeps a ratio meaningful while the machine's speed drifts).

Figures of 2026-11-30 (100,000 records, 62,004 files, a 2-vCPU machine, 15 pairs; a later run the same day,
with the retrained intent scorers, gave 8.3x / 13.1x and 5.4x / 5.4x):
  kb query, stat-ing files     wall 0.188 s (9.7x)  cpu 0.283 s (14.9x)   (forked children stat beside the answer)
  kb query, kb watch running   wall 0.097 s (5.3x)  cpu 0.097 s (5.3x)
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synth import generate  # noqa: E402

KB = str(Path(sys.executable).with_name("kb"))
QUESTION = "which method to explain my CNN's prediction?"


def run(cmd: list[str], env: dict) -> tuple[float, float]:
    """Wall and CPU seconds (user + system of the finished children) of one run of ``cmd``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--work", default="/tmp/kb-watch-bench")
    ap.add_argument("--runs", type=int, default=20)
    a = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if k not in ("KB_DATABASE_URL", "PYTHONDONTWRITEBYTECODE")}
    root = Path(a.work) / f"n{a.records}"
    if not (root / "content").is_dir():
        generate(root, a.records)
    subprocess.run([KB, "--root", str(root), "build", "--no-progress"], env=env, check=True, capture_output=True)
    query = [KB, "--root", str(root), "query", QUESTION]
    base = [sys.executable, "-c", "pass"]
    for cmd in (base, query):
        run(cmd, env)  # warm the file cache

    def pairs(label: str) -> None:
        walls, cpus, ratio_wall, ratio_cpu = [], [], [], []
        for _ in range(a.runs):
            bw, bc = run(base, env)
            qw, qc = run(query, env)
            walls.append(qw)
            cpus.append(qc)
            ratio_wall.append(qw / bw)
            ratio_cpu.append(qc / max(bc, 1e-3))
        print(f"{label:<28} wall {statistics.median(walls):.3f} s ({statistics.median(ratio_wall):.1f}x)  "
              f"cpu {statistics.median(cpus):.3f} s ({statistics.median(ratio_cpu):.1f}x)")

    pairs("kb query, stat-ing files")
    watcher = subprocess.Popen([KB, "--root", str(root), "watch"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        line = watcher.stderr.readline()  # "watching N files ..." once it answers
        if not line.startswith("watching"):
            raise SystemExit(f"kb watch did not start: {line}{watcher.stderr.read()}")
        pairs("kb query, kb watch running")
    finally:
        watcher.terminate()
        watcher.wait(10)


if __name__ == "__main__":
    main()

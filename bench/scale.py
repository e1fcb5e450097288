"""How commands grow with the size of the knowledge base: synthetic trees of 1k, 10k, 100k records.

    python bench/scale.py [--sizes 1000,10000,100000] [--work /tmp/kb-scale] [--json]

For each size: kb build (cold, then incremental after touching one file), kb validate, kb query
(p50 of 5), kb search (p50 of 5) and kb render when available. Prints seconds and the growth
exponent k of t ~ n^k between consecutive sizes (1.0 = linear).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synth import generate  # noqa: E402

KB = str(Path(sys.executable).with_name("kb"))


def timed(args, root, runs=1) -> float:
    env = {k: v for k, v in os.environ.items() if k != "KB_DATABASE_URL"}
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run([KB, "--root", str(root), *args], env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"{args} failed: {proc.stderr[-500:]}")
    return statistics.median(times)


def measure(root: Path, has_render: bool) -> dict[str, float]:
    out = {"build (cold)": timed(["build", "--force"], root)}
    os.utime(next((root / "content/concept").glob("*.yaml")))
    out["build (1 file changed)"] = timed(["build"], root)
    out["validate"] = timed(["validate"], root)
    out["query"] = timed(["query", "which method to explain my CNN's prediction?"], root, runs=5)
    out["search"] = timed(["search", "gradient neuron"], root, runs=5)
    if has_render:
        out["render (html)"] = timed(["render", "--out", str(root / "site"), "--format", "html"], root)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--work", default="/tmp/kb-scale")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-render", action="store_true", help="skip kb render (slow at 100k)")
    a = ap.parse_args()
    has_render = not a.no_render and "render" in subprocess.run([KB, "--help"], capture_output=True, text=True).stdout
    sizes = [int(s) for s in a.sizes.split(",")]
    table: dict[int, dict[str, float]] = {}
    for n in sizes:
        root = Path(a.work) / f"n{n}"
        generate(root, n)
        table[n] = measure(root, has_render)
        print(f"{n}: " + ", ".join(f"{k} {v:.2f}s" for k, v in table[n].items()), file=sys.stderr)
    exponents = {}
    for lo, hi in zip(sizes, sizes[1:]):
        exponents[f"{lo}->{hi}"] = {k: round(math.log(table[hi][k] / table[lo][k]) / math.log(hi / lo), 2)
                                    for k in table[lo] if k in table[hi]}
    if a.json:
        print(json.dumps({"seconds": table, "exponents": exponents}, indent=2))
        return
    cols = list(next(iter(table.values())))
    print("| records | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for n, row in table.items():
        print(f"| {n} | " + " | ".join(f"{row[c]:.2f}" if c in row else "-" for c in cols) + " |")
    for span, ex in exponents.items():
        print(f"| growth exponent {span} | " + " | ".join(str(ex.get(c, "-")) for c in cols) + " |")


if __name__ == "__main__":
    main()

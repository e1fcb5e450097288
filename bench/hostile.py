"""Worst cases per endpoint: CPU seconds and extra memory of one hostile request (issue 15).

    python bench/hostile.py [--records-from ROOT] [--timeout 20] [--json OUT]

Each case runs in its own process (so peak memory is its own, and a runaway case is stopped at
``--timeout`` seconds or 3 GB) against a store built from a snapshot of ROOT's content (default:
this repository's). Content errors are ignored for the bench (records that fail to load are
left out), so a work-in-progress handbook still gives a realistic index. Calls go through the
library (kb.KnowledgeBase), which is what each HTTP endpoint calls; the HTTP layer's own length
limits are listed beside each case.

To measure the code before a change, run the same script with PYTHONPATH pointing at a checkout
of the older revision: ``PYTHONPATH=/tmp/before python bench/hostile.py``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# (endpoint, case, python expression over `kb`); the warm-up call opens the store and caches first.
# w(n, seed): n letters that do not repeat in a short period (a run of one letter is a degenerate
# case for typo correction: all its deletions are the same string).
CASES = [
    ("GET /records/{kind}/{ident}", "5,000-letter id (review)", "kb.show('method:' + w(5000))"),
    ("GET /records/{kind}/{ident}", "5,000 chars of 8-letter words", "kb.show('method:' + '-'.join(w(8, i) for i in range(555)))"),
    ("GET /records/{kind}/{ident}", "120-letter id (new limit)", "kb.show('method:' + w(120))"),
    ("GET /records/{kind}/{ident}", "120 chars of 3-letter words", "kb.show('method:' + '-'.join(w(3, i) for i in range(30))[:120].strip('-'))"),
    ("GET /graph?around=", "200-letter ref (old limit)", "kb.graph_data(w(200), 1)"),
    ("GET /graph?around=", "133-char ref (new limit)", "kb.graph_data('method:' + w(126), 3)"),
    ("GET /path?to=", "200-letter ref (old limit)", "kb.path(w(200))"),
    ("GET /path?know=", "2,000 chars of 8-letter words", "kb.path('method:' + kb.list('method')[0]['id'], ['-'.join(w(8, i) for i in range(222))])"),
    ("GET /path?know=", "one 2,000-letter ref", "kb.path('method:' + kb.list('method')[0]['id'], [w(2000)])"),
    ("GET /path?know=", "64 refs of 30 letters", "kb.path('method:' + kb.list('method')[0]['id'], [w(30, i) for i in range(64)])"),
    ("GET /search", "one 500-letter word", "kb.search(w(500))"),
    ("GET /search", "83 misspelt 5-letter words", "kb.search(' '.join(w(5, i) for i in range(83)))"),
    ("GET /search", "62 misspelt 7-letter words", "kb.search(' '.join(w(7, i) for i in range(62)))"),
    ("GET /search", "20 misspelt 24-letter words", "kb.search(' '.join(w(24, i) for i in range(20)))"),
    ("GET /search", "32 misspelt 20-letter words", "kb.search(' '.join(w(20, i) for i in range(32)))"),
    ("GET /search", "32 misspelt 16-letter words", "kb.search(' '.join(w(16, i) for i in range(32)))"),
    ("GET /search", "500 chars of 15-letter words", "kb.search(' '.join(w(15, i) for i in range(32))[:500])"),
    ("GET /search", "NOT xqzv (operators)", "assert len(kb.search('NOT xqzv')) < 20 or True"),
    ("GET /query", "one 1,999-letter word (review)", "kb.query(w(1999))"),
    ("GET /query", "three 600-letter words (review)", "kb.query(' '.join(w(600, i) for i in range(3)))"),
    ("GET /query", "64 distinct 30-letter words", "kb.query(' '.join(w(30, i) for i in range(64)))"),
    ("GET /query", "666 two-letter tokens", "kb.query('ab ' * 666)"),
    ("GET /query", "250 misspelt 7-letter words", "kb.query(' '.join(w(7, i) for i in range(250)))"),
]
WARMUP = ("kb.list(); kb.search('gradient'); kb.query('explain a prediction'); "
          "kb.path('method:' + kb.list('method')[0]['id']); kb.path('method:' + kb.list('method')[0]['id'], ['x'])")

CHILD = r"""
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
from kb import KnowledgeBase
def w(n, seed=0):
    x, out = seed * 7919 + 12345, []
    for _ in range(n):
        x = (x * 1103515245 + 12345) % 2147483648
        out.append(chr(97 + (x >> 16) % 26))
    return "".join(out)
kb = KnowledgeBase(sys.argv[1], auto_build=False)
if not hasattr(kb, "graph_data"):  # older revisions
    kb.graph_data = lambda around, depth: kb.neighbourhood(around, depth)
for call in sys.argv[3].split("; "):
    try:
        exec(call)
    except Exception:
        pass
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.process_time()
outcome = "answered"
try:
    exec(sys.argv[2])
except MemoryError:
    outcome = "MemoryError (3 GB limit)"
except Exception as exc:
    outcome = type(exc).__name__ + ": " + str(exc)[:80]
cpu = time.process_time() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
import kb as _kb
print(json.dumps({"code": _kb.__file__, "cpu_s": round(cpu, 4), "extra_mb": round((rss - rss0) / 1024, 1), "outcome": outcome}))
"""


def build_bench_kb(source: Path, dest: Path) -> Path:
    """A snapshot of ``source``'s content and bib, built into a store whatever its content errors."""
    for part in ("content", "bib"):
        shutil.copytree(source / part, dest / part, ignore=shutil.ignore_patterns(".*", "*~"))
    code = ("import sys, kb.build as B\norig = B.compile_content\n"
            "def lenient(*a, **k):\n    c = orig(*a, **k)\n    c.report.errors[:] = []\n    return c\n"
            "B.compile_content = lenient\nfrom kb import KnowledgeBase\nKnowledgeBase(sys.argv[1]).build()\n")
    # cwd away from the repository: `python -c` puts the cwd first on sys.path, before PYTHONPATH
    subprocess.run([sys.executable, "-c", code, str(dest)], check=True, env={**os.environ, "KB_ROOT": str(dest)},
                   cwd=dest.parent)
    return dest


def run_case(root: Path, expr: str, timeout: float) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "KB_DATABASE_URL"}
    started = time.perf_counter()
    try:
        out = subprocess.run([sys.executable, "-c", CHILD, str(root), expr, WARMUP], capture_output=True, text=True,
                             timeout=timeout, env=env, cwd=root.parent)
    except subprocess.TimeoutExpired:
        return {"cpu_s": None, "extra_mb": None, "outcome": f"stopped after {timeout:.0f} s"}
    if out.returncode != 0:
        return {"cpu_s": None, "extra_mb": None, "outcome": (out.stderr.strip().splitlines() or ["crashed"])[-1][:100]}
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall_s"] = round(time.perf_counter() - started, 2)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records-from", type=Path, default=REPO)
    ap.add_argument("--timeout", type=float, default=20.0)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--only", default="", help="Only cases whose endpoint contains this text.")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = build_bench_kb(args.records_from, Path(tmp) / "hostile-kb")  # not "kb": the cwd is on sys.path
        rows = []
        for endpoint, case, expr in CASES:
            if args.only not in endpoint:
                continue
            result = run_case(root, expr, args.timeout)
            rows.append({"endpoint": endpoint, "case": case, **result})
            cpu = "-" if result["cpu_s"] is None else f"{result['cpu_s']:.3f}"
            mb = "-" if result["extra_mb"] is None else f"{result['extra_mb']:.0f}"
            print(f"{endpoint:28} {case:38} cpu {cpu:>7} s  +{mb:>5} MB  {result['outcome'][:60]}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Builds and reads in real processes: readers never fail mid-rebuild, builds exclude each other,
and a build killed part-way leaves the previous store answering."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from synth import generate  # noqa: E402

KB = [sys.executable, "-m", "kb"]


def run(args, root, **kw):
    env = {k: v for k, v in os.environ.items() if k != "KB_DATABASE_URL"}
    return subprocess.run(KB + ["--root", str(root), *args], capture_output=True, text=True, env=env, timeout=300, **kw)


def test_queries_never_fail_while_builds_replace_the_store(tmp_path):
    root = tmp_path / "kb"
    generate(root, 600)
    assert run(["build"], root).returncode == 0
    env = {k: v for k, v in os.environ.items() if k != "KB_DATABASE_URL"}
    target = next((root / "content/concept").glob("*.yaml"))
    builder = subprocess.Popen(
        [sys.executable, "-c", f"""
import os, subprocess, sys, time
p = {str(target)!r}
for i in range(3):
    with open(p, 'a') as f: f.write('# edit ' + str(i) + '\\n')
    for attempt in range(50):  # a reader may be rebuilding right now: the lock refuses us, we retry
        out = subprocess.run({KB!r} + ['--root', {str(root)!r}, 'build'], capture_output=True, text=True)
        if out.returncode == 0:
            break
        assert 'another build is running' in out.stderr, out.stderr
        time.sleep(0.2)
    else:
        sys.exit(1)
"""], env=env)
    failures, answers = [], 0
    while builder.poll() is None or answers < 10:
        out = run(["query", "explain a prediction", "--format", "json"], root)
        # a whole answer (the synthetic records' random words may well read as out of scope)
        if out.returncode != 0 or "results" not in json.loads(out.stdout):
            failures.append(out.stderr[-500:])
        answers += 1
        if answers > 200:
            break
    assert builder.wait() == 0
    assert answers >= 10 and failures == []


def test_a_second_build_is_refused_with_a_clear_message(minimal):
    assert run(["build"], minimal).returncode == 0
    holder = subprocess.Popen([sys.executable, "-c", f"""
import time
from kb.build import build_lock
from kb.config import Layout
from pathlib import Path
with build_lock(Layout(Path({str(minimal)!r}))):
    print('locked', flush=True)
    time.sleep(30)
"""], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        (minimal / "content/concept/gradient.yaml").touch()
        out = run(["build"], minimal)
        assert out.returncode == 1
        assert f"another build is running (pid {holder.pid})" in out.stderr
        assert "Traceback" not in out.stderr
        # readers are not blocked by a running build: they answer from the current store
        assert run(["show", "concept:gradient"], minimal).returncode == 0
    finally:
        holder.kill()
        holder.wait()


def test_build_killed_part_way_leaves_the_previous_store(tmp_path):
    root = tmp_path / "kb"
    generate(root, 2000)
    assert run(["build"], root).returncode == 0
    before = os.readlink(root / ".kb/current")
    for f in list((root / "content/concept").glob("*.yaml"))[:50]:
        f.write_text(f.read_text().replace("summary: ", "summary: changed ", 1))
    env = {k: v for k, v in os.environ.items() if k != "KB_DATABASE_URL"}
    proc = subprocess.Popen(KB + ["--root", str(root), "build", "--force"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # kill it once it has started writing the new store
    deadline = time.time() + 60
    while time.time() < deadline and not list((root / ".kb").glob("store-*.tmp")):
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert os.readlink(root / ".kb/current") == before
    ans = run(["list", "method", "--format", "json"], root.parent / "elsewhere" if False else root)
    # the reader notices the content changed, rebuilds successfully, and answers
    assert ans.returncode == 0 and json.loads(ans.stdout)
    assert not list((root / ".kb").glob("store-*.tmp")), "the killed build's leftovers are collected"

"""Install it anywhere: build the wheel from a clean checkout, install it (not editable) into a fresh
virtual environment, and use the bundled handbook from an empty folder. Checks the answers and that the
folder stays empty apart from the rendered output; reports the wheel's size and `kb query` timings as
ratios to `python -c pass` (first run: builds the bundled store into the user cache; later runs: reads it).

    python bench/wheel.py [--runs 10] [--json] [--work DIR]

Uses the pinned versions (pip install -c constraints.txt) and the pip cache; torch is not installed:
the knowledge base needs only the core dependencies. tests/test_wheel.py runs it.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
QUESTION = "which method to explain my CNN's prediction?"


class CheckFailed(AssertionError):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def clean_checkout(dest: Path, content_rev: str | None = None) -> Path:
    """A clean checkout of the committed tree (HEAD): no .kb/, build/, caches or work in progress.

    ``content_rev`` takes content/ and bib/ from another commit (to measure while HEAD's content is mid-edit)."""
    dest.mkdir(parents=True, exist_ok=True)

    def extract(rev: str, *paths: str) -> None:
        archive = subprocess.run(["git", "archive", "--format=tar", rev, *paths], cwd=REPO, capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)

    extract("HEAD")
    if content_rev:
        for name in ("content", "bib"):
            shutil.rmtree(dest / name)
        extract(content_rev, "content", "bib")
    return dest


def build_wheel(src: Path, out: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(src)], check=True, capture_output=True, text=True)
    return next(out.glob("interp_kb-*.whl"))


def fresh_venv(folder: Path, wheel: Path) -> Path:
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(folder)], check=True)
    pip = [str(folder / "bin/python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
           "-c", str(REPO / "constraints.txt"), str(wheel)]
    proc = subprocess.run(pip, capture_output=True, text=True)
    check(proc.returncode == 0, f"pip install of the wheel failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return folder / "bin"


def wheel_contents(wheel: Path) -> dict:
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    top: dict[str, int] = {}
    for n in names:
        key = "/".join(n.split("/")[:3]) if n.startswith("kb/_handbook/") else n.split("/")[0]
        top[key] = top.get(key, 0) + 1
    return {"files": len(names), "groups": dict(sorted(top.items())), "names": names}


def timed(cmd: list[str], env: dict, cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    return time.perf_counter() - t0, proc


def run(work: Path, runs: int = 10, content_rev: str | None = None) -> dict:
    src = clean_checkout(work / "checkout", content_rev)
    wheel = build_wheel(src, work / "dist")
    contents = wheel_contents(wheel)
    for needed in ("kb/_handbook/content/method/integrated-gradients.yaml", "kb/_handbook/templates/_layout.html.j2",
                   "kb/cli.py", "kb/reference/__init__.py"):
        check(needed in contents["names"], f"the wheel lacks {needed}")
    check(any(n.startswith("kb/_handbook/bib/") and n.endswith(".bib") for n in contents["names"]), "the wheel lacks bib/")
    package_files = [p.relative_to(src).as_posix() for p in (src / "kb").rglob("*")
                     if p.is_file() and p.suffix != ".sqlite"]  # the embedding table is left out on purpose
    missing = [n for n in package_files if n not in contents["names"]]
    check(not missing, f"the wheel lacks files of the package (package data?): {missing[:10]}")
    check(not any("/.kb/" in n or n.startswith("tests/") for n in contents["names"]), "the wheel carries a store or tests")

    bindir = fresh_venv(work / "venv", wheel)
    kb, python = str(bindir / "kb"), str(bindir / "python")
    empty = work / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KB_", "VIRTUAL_ENV", "PYTHON"))}
    env.update(HOME=str(work / "home"), XDG_CACHE_HOME=str(work / "cache"), PATH=f"{bindir}:{env.get('PATH', '')}")

    def kb_run(*args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run([kb, *args], env=env, cwd=empty, capture_output=True, text=True)
        check(proc.returncode == 0, f"kb {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}")
        return proc

    first, proc = timed([kb, "query", QUESTION, "--format", "json"], env, empty)
    check(proc.returncode == 0, f"first kb query failed:\n{proc.stderr[-3000:]}")
    answer = json.loads(proc.stdout)
    top = [r["id"] for r in answer["results"]]
    check(bool({"grad-cam", "integrated-gradients", "saliency-maps"} & set(top[:3])), f"unexpected top methods {top}")

    info = json.loads(kb_run("info", "--format", "json").stdout)
    check(info["source"] == "bundled" and "/kb/_handbook" in info["root"], f"not the bundled handbook: {info}")
    check(Path(info["store"]).is_relative_to(work / "cache"), f"store outside the user cache: {info['store']}")
    check(info["counts"].get("method", 0) >= 31 and info["counts"].get("paper", 0) > 0, f"counts: {info['counts']}")

    show = json.loads(kb_run("show", "method:integrated-gradients", "--format", "json").stdout)
    check(show["ref"] == "method:integrated-gradients" and show["links_out"], "kb show lacks the record or its links")
    path = json.loads(kb_run("path", "--to", "method:sparse-autoencoders", "--format", "json").stdout)
    refs = [s["ref"] for s in path["steps"]]
    check(refs[-1] == "method:sparse-autoencoders" and len(refs) > 2, f"kb path: {refs}")
    check("beginner" in kb_run("path", "--audience", "beginner").stdout.lower(), "no beginner path")
    check(kb_run("validate").returncode == 0, "the bundled handbook does not validate")
    kb_run("render", "--out", "site", "--format", "html", "--no-progress")
    check((empty / "site/index.html").is_file(), "kb render wrote no site/index.html")
    left = sorted(p.name for p in empty.iterdir())
    check(left == ["site"], f"the empty folder holds more than the rendered output: {left}")
    site_packages = next((work / "venv/lib").glob("python*/site-packages"))
    check(not any((site_packages / "kb").rglob(".kb")), "a store was written beside the installed package")

    base = statistics.median(timed([python, "-c", "pass"], env, empty)[0] for _ in range(runs))
    later = statistics.median(timed([kb, "query", QUESTION], env, empty)[0] for _ in range(runs))
    return {
        "wheel": wheel.name, "wheel_bytes": wheel.stat().st_size, "wheel_files": contents["files"],
        "wheel_groups": contents["groups"],
        "python -c pass (s)": round(base, 4),
        "kb query first run (s)": round(first, 3), "kb query first run (x python -c pass)": round(first / base, 1),
        "kb query later runs (s)": round(later, 4), "kb query later runs (x python -c pass)": round(later / base, 1),
        "cache bytes": sum(f.stat().st_size for f in (work / "cache").rglob("*") if f.is_file()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--work", default=None, help="keep the checkout, wheel, venv and cache here")
    ap.add_argument("--content-rev", default=None, help="take content/ and bib/ from this commit instead of HEAD")
    args = ap.parse_args()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="kb-wheel-"))
    try:
        result = run(work, args.runs, args.content_rev)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for key, value in result.items():
        print(f"{key:<40} {value}")


if __name__ == "__main__":
    main()

"""Docs are tested like code: every command has help, every problem code is documented, the README
names every command."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from kb.cli import cli
from kb.errors import CODES

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_has_help(runner, name):
    out = runner.invoke(cli, [name, "--help"])
    assert out.exit_code == 0
    assert len(cli.commands[name].help or "") > 30, f"kb {name} needs a real --help text"


def test_every_problem_code_is_documented():
    source = "".join(p.read_text() for p in (REPO / "kb").rglob("*.py") if p.name != "errors.py")
    emitted = set(re.findall(r'Problem\(\s*"([a-z-]+)"', source))
    assert emitted and emitted <= set(CODES), emitted - set(CODES)
    unused = [code for code in CODES if f'"{code}"' not in source]
    assert not unused, f"documented but never emitted: {unused}"


def test_readme_names_every_command():
    readme = (REPO / "README.md").read_text()
    assert readme.lstrip().startswith("# interp-kb")
    assert "make run" in readme.split("\n## ")[0] and "make test" in readme.split("\n## ")[0]
    missing = [c for c in cli.commands if f"kb {c}" not in readme]
    assert not missing, missing


def test_readme_starts_with_the_two_commands_and_says_how_to_reach_kb():
    readme = (REPO / "README.md").read_text()
    first_block = readme.split("```")[1].strip().splitlines()
    assert [line.split()[:2] for line in first_block] == [["make", "run"], ["make", "test"]]
    for needed in (". .venv/bin/activate", ".venv/bin/kb", "_KB_COMPLETE=bash_source kb", "kb mcp", "kb info"):
        assert needed in readme, needed


def test_shell_completion_completes_commands():
    import os
    import subprocess
    import sys

    env = {**os.environ, "_KB_COMPLETE": "bash_complete", "COMP_WORDS": "kb qu", "COMP_CWORD": "1"}
    out = subprocess.run([sys.executable, "-c", "from kb.cli import main; main()"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert "plain,query" in out.stdout.splitlines()

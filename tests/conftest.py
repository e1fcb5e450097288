"""Shared fixtures: a CLI runner, copies of the fixture trees, and a content-tree builder."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

HERE = Path(__file__).parent
REPO = HERE.parent
FIXTURES = HERE / "fixtures"


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def minimal(tmp_path) -> Path:
    """A writable copy of tests/fixtures/minimal (a small, valid knowledge base)."""
    root = tmp_path / "kb"
    shutil.copytree(FIXTURES / "minimal", root, ignore=shutil.ignore_patterns(".kb"))
    return root


@pytest.fixture
def make_content(tmp_path):
    """Write ``{relative path: text}`` under a fresh root and return the root."""
    def make(files: dict[str, str]) -> Path:
        root = tmp_path / "made"
        for rel, text in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return root
    return make

"""Which knowledge base: --root / KB_ROOT, else the nearest folder upward holding content/, else the bundled one."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import kb.config
from kb import KnowledgeBase, KBError
from kb.cli import cli
from kb.config import locate

FIXTURE = Path(__file__).parent / "fixtures/minimal"


@pytest.fixture
def bundled(tmp_path, monkeypatch):
    """The minimal fixture stands in for the handbook bundled with the package; the user cache is in tmp."""
    handbook = tmp_path / "site-packages/kb/_handbook"
    shutil.copytree(FIXTURE, handbook, ignore=shutil.ignore_patterns(".kb"))
    monkeypatch.setattr(kb.config, "bundled_root", lambda: handbook)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("KB_ROOT", raising=False)
    monkeypatch.delenv("KB_DATABASE_URL", raising=False)
    return handbook


@pytest.fixture
def empty(tmp_path, monkeypatch):
    folder = tmp_path / "empty"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def test_explicit_root_wins_over_kb_root_and_the_current_folder(minimal, tmp_path, monkeypatch):
    other = tmp_path / "other"
    shutil.copytree(FIXTURE, other, ignore=shutil.ignore_patterns(".kb"))
    monkeypatch.setenv("KB_ROOT", str(other))
    monkeypatch.chdir(other)
    layout = locate(minimal)
    assert (layout.root, layout.source, layout.store) == (minimal.resolve(), "root", minimal.resolve() / ".kb")
    assert locate().source == "KB_ROOT" and locate().root == other.resolve()


def test_nearest_parent_holding_content_is_found(minimal, monkeypatch):
    deep = minimal / "notes/2026/june"
    deep.mkdir(parents=True)
    monkeypatch.delenv("KB_ROOT", raising=False)
    monkeypatch.chdir(deep)
    layout = locate()
    assert layout.root == minimal.resolve() and layout.source == "parent"
    assert "parent of the current folder" in layout.reason


def test_a_stray_content_folder_is_not_a_knowledge_base(bundled, empty):
    (empty / "content").mkdir()  # e.g. a static-site generator's
    (empty / "content" / "posts").mkdir()
    assert locate().source == "bundled"


def test_bundled_handbook_is_used_from_an_empty_folder_and_nothing_is_written_there(bundled, empty, runner, tmp_path):
    info = runner.invoke(cli, ["info", "--format", "json"])
    assert info.exit_code == 0, info.output
    data = json.loads(info.output)
    assert data["source"] == "bundled" and data["bundled"] and data["root"] == str(bundled)
    assert data["counts"]["method"] == 2 and data["records"] == 12
    assert Path(data["store"]).is_relative_to(tmp_path / "cache/interp-kb")
    query = runner.invoke(cli, ["query", "explain my CNN's prediction", "--format", "json"])
    assert json.loads(query.output)["results"][0]["ref"].startswith("method:")
    assert runner.invoke(cli, ["path", "--audience", "beginner"]).exit_code == 0
    assert list(empty.iterdir()) == []
    assert not (bundled / ".kb").exists()  # nothing beside the installed package either
    text = runner.invoke(cli, ["info"]).output
    assert "bundled with interp-kb" in text and "records:        12" in text


def test_a_root_without_content_is_an_error_never_an_empty_knowledge_base(tmp_path, runner, monkeypatch):
    bare = tmp_path / "bare"
    bare.mkdir()
    with pytest.raises(KBError, match="no content/ folder"):
        KnowledgeBase(bare)
    for args in (["--root", str(bare), "query", "x"], ["query", "x", "--root", str(bare)]):
        out = runner.invoke(cli, args)
        assert out.exit_code == 1 and "is not a knowledge base" in out.output and "Traceback" not in out.output
    monkeypatch.setenv("KB_ROOT", str(bare))
    out = runner.invoke(cli, ["info"])
    assert out.exit_code == 1 and "KB_ROOT=" in out.output
    assert not (bare / ".kb").exists()
    missing = runner.invoke(cli, ["list", "--root", str(tmp_path / "nowhere")])
    assert missing.exit_code == 1 and "is not a folder" in missing.output


def test_root_before_or_after_the_subcommand(minimal, runner):
    before = runner.invoke(cli, ["--root", str(minimal), "validate", "--format", "json"])
    after = runner.invoke(cli, ["validate", "--format", "json", "--root", str(minimal)])
    assert before.exit_code == after.exit_code == 0, after.output
    assert json.loads(before.output) == json.loads(after.output)
    info = json.loads(runner.invoke(cli, ["info", "--root", str(minimal), "--format", "json"]).output)
    assert info["source"] == "root" and info["root"] == str(minimal.resolve())


def test_no_bundled_handbook_and_no_knowledge_base_says_so(empty, monkeypatch, runner):
    monkeypatch.setattr(kb.config, "bundled_root", lambda: None)
    monkeypatch.delenv("KB_ROOT", raising=False)
    out = runner.invoke(cli, ["query", "x"])
    assert out.exit_code == 1 and "no knowledge base here" in out.output


def test_the_user_cache_folder_is_platformdirs(monkeypatch, tmp_path):
    from platformdirs import user_cache_path

    for value in (str(tmp_path / "xdg"), ""):
        monkeypatch.setenv("XDG_CACHE_HOME", value)
        assert kb.config.user_cache_folder() == user_cache_path("interp-kb", appauthor=False)

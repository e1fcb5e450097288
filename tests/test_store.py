"""The store: built atomically, rebuilt when content changes, readable through sqlite or SQLAlchemy."""
from __future__ import annotations

import json
import os
import sqlite3

import pytest

from kb import KBError, KnowledgeBase
from kb.build import build_lock, current_store
from kb.cli import cli


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, monkeypatch):
    """Run a store test against the embedded SQLite store and against a PostgreSQL server."""
    if request.param == "postgresql":
        url = os.environ.get("KB_TEST_POSTGRES_URL")
        if not url:
            pytest.skip("set KB_TEST_POSTGRES_URL to a PostgreSQL database (.ci/run starts one)")
        monkeypatch.setenv("KB_DATABASE_URL", url)
    else:
        monkeypatch.delenv("KB_DATABASE_URL", raising=False)
    return request.param


def test_build_writes_records_and_edges(minimal, backend):
    kb = KnowledgeBase(minimal)
    summary = kb.build()
    assert summary["counts"] == {"architecture": 1, "case_study": 1, "concept": 2, "goal": 1, "method": 2,
                                 "paper": 2, "path": 1, "tool": 1, "topic": 1}
    reader = kb.reader
    assert len(reader.index()) == 12
    rels = {r for _, _, r in reader.edges()}
    assert {"serves", "applies_to", "requires", "cites", "implements", "recommends", "step", "about"} <= rels
    if backend == "sqlite":
        conn = sqlite3.connect(current_store(kb.layout) / "kb.sqlite")
        assert conn.execute("select count(*) from record").fetchone()[0] == 12
    assert kb.query("explain my cnn prediction")["results"][0]["id"] == "integrated-gradients"


def test_failed_build_keeps_previous_store(minimal, backend):
    kb = KnowledgeBase(minimal)
    kb.build()
    before = current_store(kb.layout)
    (minimal / "content/concept/gradient.yaml").write_text("id: gradient\nname: [\n")
    with pytest.raises(KBError) as err:
        kb.build()
    assert err.value.problems and err.value.problems[0].code == "yaml-syntax"
    assert current_store(kb.layout) == before
    # readers keep answering from the previous build, and say so
    fresh = KnowledgeBase(minimal)
    assert fresh.show("concept:gradient")["name"] == "Gradient"
    assert any("rebuild failed" in n for n in fresh.notices)


def test_build_killed_midway_leaves_store_working(minimal, monkeypatch):
    kb = KnowledgeBase(minimal)
    kb.build()
    before = current_store(kb.layout)
    import kb.search as search

    def crash(*a, **k):
        raise RuntimeError("power cut")
    monkeypatch.setattr(search, "build_index", crash)
    monkeypatch.setattr(search, "update_index", crash)
    (minimal / "content/concept/gradient.yaml").write_text(
        (minimal / "content/concept/gradient.yaml").read_text().replace("Gradient", "Gradient vector", 1))
    with pytest.raises(RuntimeError):
        KnowledgeBase(minimal).build()
    assert current_store(kb.layout) == before
    assert not list((minimal / ".kb").glob("*.tmp"))


def test_reading_rebuilds_when_content_changes(minimal, backend):
    kb = KnowledgeBase(minimal)
    assert kb.show("concept:gradient")["name"] == "Gradient"
    path = minimal / "content/concept/gradient.yaml"
    path.write_text(path.read_text().replace("name: Gradient", "name: Gradient (vector)"))
    os.utime(path, ns=(1, 1))  # a different mtime even on coarse clocks
    assert KnowledgeBase(minimal).show("concept:gradient")["name"] == "Gradient (vector)"


def test_second_build_gets_a_clear_message(minimal):
    kb = KnowledgeBase(minimal)
    with build_lock(kb.layout):
        with pytest.raises(KBError, match="another build is running"):
            kb.build()


def test_database_url_selects_another_database(minimal, tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'team.db'}"
    monkeypatch.setenv("KB_DATABASE_URL", url)
    kb = KnowledgeBase(minimal)
    kb.build()
    assert (tmp_path / "team.db").exists()
    assert kb.show("method:integrated-gradients")["name"] == "Integrated Gradients"
    assert not (current_store(kb.layout) / "kb.sqlite").exists()


def test_show_json_lists_links_in_and_out(minimal, runner, backend):
    out = runner.invoke(cli, ["--root", str(minimal), "show", "method:integrated-gradients", "--format", "json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert {"relation": "serves", "ref": "goal:explain-prediction"} in data["links_out"]
    assert {"relation": "requires", "ref": "concept:gradient"} in data["links_out"]
    assert {"relation": "cites", "ref": "paper:sundararajan2017axiomatic"} in data["links_out"]
    assert {"relation": "recommends", "ref": "goal:explain-prediction"} in data["links_in"]
    assert {"relation": "implements", "ref": "tool:captum"} in data["links_in"]
    assert data["access"] == "gradients" and data["kind"] == "method"


def test_show_unknown_ref_suggests(minimal, runner):
    out = runner.invoke(cli, ["--root", str(minimal), "show", "method:integrated-gradient"])
    assert out.exit_code == 1
    assert "no record 'method:integrated-gradient'" in out.output and "method:integrated-gradients" in out.output
    assert "Traceback" not in out.output


def test_list_json_contract(minimal, runner):
    out = runner.invoke(cli, ["--root", str(minimal), "list", "--format", "json"])
    rows = json.loads(out.output)
    assert {"ref": "paper:simonyan2014deep", "kind": "paper", "id": "simonyan2014deep",
            "name": "Deep Inside Convolutional Networks: Visualising Image Classification Models and Saliency Maps"} in rows
    assert all(set(r) == {"ref", "kind", "id", "name"} for r in rows)
    methods = json.loads(runner.invoke(cli, ["--root", str(minimal), "list", "method", "--format", "json"]).output)
    assert [r["id"] for r in methods] == ["integrated-gradients", "saliency-maps"]
    bad = runner.invoke(cli, ["--root", str(minimal), "list", "widget"])
    assert bad.exit_code == 1 and "unknown kind 'widget'" in bad.output


def test_search_tolerates_typos(minimal):
    kb = KnowledgeBase(minimal)
    assert kb.search("integrated gradients")[0]["ref"] == "method:integrated-gradients"
    assert kb.search("integrted gradiens")[0]["ref"] == "method:integrated-gradients"
    assert [h["ref"] for h in kb.search("gradient", kind="concept")][:1] == ["concept:gradient"]


def test_schema_command_exports_every_kind(runner, tmp_path):
    out = runner.invoke(cli, ["schema"])
    schemas = json.loads(out.output)
    assert set(schemas) == {"method", "architecture", "case_study", "tool", "concept", "topic", "goal", "path",
                            "tutorial", "paper"}
    assert schemas["method"]["additionalProperties"] is False
    assert "access" in schemas["method"]["required"]
    runner.invoke(cli, ["schema", "--out", str(tmp_path / "s")])
    assert len(list((tmp_path / "s").glob("*.schema.json"))) == 10


def test_no_kb_built_anywhere_is_a_clear_error(tmp_path, runner):
    out = runner.invoke(cli, ["--root", str(tmp_path), "show", "method:x"])
    assert out.exit_code == 1 and "Traceback" not in out.output


def test_incremental_build_patches_the_index(minimal):
    kb = KnowledgeBase(minimal)
    kb.build()
    path = minimal / "content/concept/gradient.yaml"
    path.write_text(path.read_text().replace("name: Gradient", "name: Zylophone gradient"))
    (minimal / "content/topic/superposition.yaml").unlink()
    goal = minimal / "content/goal/explain-prediction.yaml"
    goal.write_text(goal.read_text().replace("follow_ups: [topic:superposition]\n", ""))
    kb.build()
    assert [h["ref"] for h in kb.search("zylophone")] == ["concept:gradient"]
    assert kb.search("superposition", kind="topic") == []
    # the patched index finds what a fresh one finds (scores may differ slightly: whoosh keeps
    # deleted documents' length statistics until segments merge)
    patched = kb.search("gradient")
    fresh = KnowledgeBase(minimal)
    fresh.build(force=True)
    assert {h["ref"] for h in fresh.search("gradient")} == {h["ref"] for h in patched}


def test_parse_cache_is_invalidated_by_edits(minimal):
    kb = KnowledgeBase(minimal)
    kb.build()
    path = minimal / "content/concept/gradient.yaml"
    path.write_text(path.read_text().replace("level: beginner", "level: expert"))
    report = kb.validate()
    assert [p.code for p in report.errors] == ["wrong-type"]


def test_committed_schemas_match_the_models(tmp_path, runner):
    """schemas/ is what editors load; it must not drift from kb/schema.py (regenerate: kb schema --out schemas)."""
    from pathlib import Path

    runner.invoke(cli, ["schema", "--out", str(tmp_path)])
    committed = Path(__file__).resolve().parent.parent / "schemas"
    for fresh in sorted(tmp_path.glob("*.schema.json")):
        assert (committed / fresh.name).read_text() == fresh.read_text(), f"{fresh.name} is stale"


def test_a_store_written_by_other_code_is_rebuilt(minimal, monkeypatch):
    import kb.store
    from kb.build import is_stale

    kb_ = KnowledgeBase(minimal)
    kb_.build()
    assert not is_stale(kb_.layout)
    monkeypatch.setattr(kb.store, "STORE_VERSION", "older-format")
    assert is_stale(kb_.layout)  # so the next reader rebuilds rather than misreading the old format
    assert KnowledgeBase(minimal).query("explain my cnn prediction")["results"]


@pytest.mark.parametrize("forked", [True, False], ids=["check-forked", "check-inline"])
def test_an_in_place_edit_is_seen_by_the_next_query(minimal, forked):
    """A same-size rewrite that leaves its folder's mtime alone (an editor writing in place) is seen
    by the next query in a fresh process: the check that runs beside the answer catches it (forked
    children on a large knowledge base, kb.api.FORK_FROM; inline on a small one)."""
    import subprocess
    import sys

    kb = KnowledgeBase(minimal)
    kb.build()
    path = minimal / "content/method/integrated-gradients.yaml"
    folder = os.stat(path.parent)
    text = path.read_text()
    assert "summary: " in text
    # one word of the summary for another of the same length: same size, same folder
    first = text.split("summary: ", 1)[1].split()[0]
    edited = text.replace(f"summary: {first}", "summary: " + "q" * len(first), 1)
    assert len(edited) == len(text) and edited != text
    with open(path, "r+") as f:  # in place: same inode, no rename in the folder
        f.write(edited)
    os.utime(path.parent, ns=(folder.st_atime_ns, folder.st_mtime_ns))
    code = ("import json, sys, kb.api; from kb import KnowledgeBase; "
            f"kb.api.FORK_FROM = {0 if forked else 10**9}; "
            "a = KnowledgeBase(sys.argv[1]).query('explain my cnn prediction', limit=10); "
            "print(json.dumps([r['summary'] for r in a['results']]))")
    out = subprocess.run([sys.executable, "-c", code, str(minimal)], capture_output=True, text=True, check=True)
    assert any(s.startswith("q" * len(first)) for s in json.loads(out.stdout))
    assert os.stat(path.parent).st_mtime_ns == folder.st_mtime_ns
    again = edited.replace("summary: " + "q" * len(first), "summary: " + "z" * len(first), 1)
    with open(path, "r+") as f:
        f.write(again)
    os.utime(path.parent, ns=(folder.st_atime_ns, folder.st_mtime_ns))
    cli_out = subprocess.run([sys.executable, "-m", "kb", "--root", str(minimal), "query", "explain my cnn prediction",
                              "--format", "json", "-n", "10"], capture_output=True, text=True, check=True)
    assert any(r["summary"].startswith("z" * len(first)) for r in json.loads(cli_out.stdout)["results"])

def _edit_in_place(path, letter: str) -> None:
    """Rewrite the first word of ``path``'s summary with ``letter``s: same size, same inode, and the
    folder's mtime restored (an editor writing in place)."""
    folder = os.stat(path.parent)
    text = path.read_text()
    first = text.split("summary: ", 1)[1].split()[0]
    edited = text.replace(f"summary: {first}", "summary: " + letter * len(first), 1)
    assert len(edited) == len(text) and edited != text
    with open(path, "r+") as f:
        f.write(edited)
    os.utime(path.parent, ns=(folder.st_atime_ns, folder.st_mtime_ns))


def test_an_in_place_edit_is_seen_through_the_kb_launcher(minimal):
    """The console script (kb.launch) starts the check before kb.cli imports; the query that answers
    takes that check's verdict (kb.freshness.claim), so an in-place edit is seen by the next query."""
    import subprocess
    import sys

    KnowledgeBase(minimal).build()
    path = minimal / "content/method/integrated-gradients.yaml"
    _edit_in_place(path, "q")
    code = ("import sys, kb.freshness as F; F.FORK_FROM = 0; claimed = []; claim = F.claim\n"
            "def counted(tops, store):\n"
            "    pending = claim(tops, store); claimed.append(pending is not None); return pending\n"
            "F.claim = counted\n"
            "import atexit; atexit.register(lambda: sys.stderr.write(f'claimed={claimed}'))\n"
            "sys.argv[0] = 'kb'\n"
            "from kb.launch import main; main()")
    args = ["--root", str(minimal), "query", "explain my cnn prediction", "--format", "json", "-n", "10"]
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    assert "claimed=[True]" in out.stderr  # the launcher's check answered, not one started later
    assert any(r["summary"].startswith("qqq") for r in json.loads(out.stdout)["results"])
    # a launcher that took another knowledge base for the command's: its check is stopped, not used
    import shutil

    other = minimal.parent / "other"
    shutil.copytree(minimal, other, ignore=shutil.ignore_patterns(".kb"))
    KnowledgeBase(other).build()
    _edit_in_place(path, "z")
    misread = code.replace("from kb.launch import main", "import kb.launch as L; "
                           f"L._command_and_root = lambda args: ('query', {str(other)!r}); from kb.launch import main")
    out = subprocess.run([sys.executable, "-c", misread, *args], capture_output=True, text=True, check=True)
    assert "claimed=[False]" in out.stderr
    assert any(r["summary"].startswith("zzz") for r in json.loads(out.stdout)["results"])


def test_the_check_reads_names_from_the_manifest_and_still_sees_every_change(minimal, monkeypatch):
    """A folder unchanged since the build (its inode, mtime and ctime) is not listed again: its names
    come from the store's MANIFEST. A file added, removed or edited is seen all the same; an editor's
    lock file is not a change."""
    import time

    import kb.freshness as freshness
    from kb.build import fingerprint, is_stale

    monkeypatch.setattr(freshness, "RACY_NS", 0)  # the fixture was copied a moment ago
    kb_ = KnowledgeBase(minimal)
    kb_.build()
    assert (current_store(kb_.layout) / "MANIFEST").is_file()
    with monkeypatch.context() as m:  # unchanged folders are not listed
        m.setattr(os, "scandir", lambda *a: (_ for _ in ()).throw(AssertionError("listed")))
        assert not is_stale(kb_.layout)
    folder = minimal / "content/concept"
    time.sleep(0.05)  # past the clock tick of the build's listing
    before = os.stat(folder)
    (folder / ".#gradient.yaml").write_text("lock")  # an editor's lock file
    os.utime(folder, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert not is_stale(kb_.layout)
    extra = folder / "zz-new.yaml"
    extra.write_text((folder / "gradient.yaml").read_text().replace("id: gradient", "id: zz-new"))
    os.utime(folder, ns=(before.st_atime_ns, before.st_mtime_ns))  # the folder's mtime restored
    assert is_stale(kb_.layout)
    extra.unlink()
    os.utime(folder, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert not is_stale(kb_.layout)
    stamp = fingerprint(kb_.layout)
    _edit_in_place(minimal / "content/method/integrated-gradients.yaml", "q")
    assert fingerprint(kb_.layout) != stamp and is_stale(kb_.layout)

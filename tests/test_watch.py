"""kb watch (kb.watch): a watcher answers the content check from file-system events, and its answer
is always the one stat-ing the files gives, whatever changed; a query sees an edit through it."""
from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import threading

import pytest

from kb import KnowledgeBase, freshness
from kb.cli import cli
from kb.watch import Watcher, supported

pytestmark = pytest.mark.skipif(not supported(), reason="kb watch needs Linux (inotify)")


@pytest.fixture
def watching(minimal, monkeypatch):
    """A built copy of the minimal knowledge base, counted as large, with a watcher serving it."""
    monkeypatch.setattr(freshness, "FORK_FROM", 0)
    kb = KnowledgeBase(minimal)
    kb.build()
    watcher = Watcher(kb.layout.sources, kb.layout.store)
    sock = watcher.listen()
    ready = threading.Event()
    thread = threading.Thread(target=watcher.serve, args=(sock,), kwargs={"on_ready": lambda _: ready.set()})
    thread.start()
    assert ready.wait(30)
    yield kb, watcher
    watcher.stop()
    thread.join(10)
    sock.close()
    watcher.close()


def _by_stat(kb) -> tuple[str, list[str]]:
    """What the check computes without a watcher."""
    folders = freshness.survey(kb.layout.sources, freshness.read_manifest(freshness.current_store(kb.layout.store)))
    try:
        return freshness.digests(kb.layout.sources, folders)
    finally:
        freshness.close(folders)


def _same_size_edit(path, keep_folder_times: bool) -> None:
    """Rewrite one letter in place (same size, same inode); optionally restore the folder's times (an
    editor writing in place)."""
    folder = os.stat(path.parent)
    data = bytearray(path.read_bytes())
    i = data.index(b"summary: ") + len(b"summary: ")
    data[i] = ord("Q") if data[i] != ord("Q") else ord("R")
    with open(path, "r+b") as f:
        f.write(data)
    if keep_folder_times:
        os.utime(path.parent, ns=(folder.st_atime_ns, folder.st_mtime_ns))


def test_an_unchanged_tree_is_answered_without_a_survey(watching):
    kb, watcher = watching
    before = watcher.refreshes
    for _ in range(3):
        assert freshness.watched(kb.layout.sources) == _by_stat(kb)
    assert watcher.served >= 3 and watcher.refreshes == before


def test_the_answer_is_the_stat_answer_after_any_change(watching, tmp_path):
    """Every kind of change, each checked right after it is made (the query that follows an edit)."""
    kb, watcher = watching
    content, bib = kb.layout.content, kb.layout.bib
    method = content / "method"
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "linked.yaml"
    shutil.copy(next(method.glob("*.yaml")), target)

    def check(label):
        before = watcher.refreshes
        assert freshness.watched(kb.layout.sources) == _by_stat(kb), label
        return watcher.refreshes > before

    files = sorted(method.glob("*.yaml"))
    changes = [
        ("in place, folder times kept", lambda: _same_size_edit(files[0], keep_folder_times=True)),
        ("touched", lambda: os.utime(files[1], ns=(1, 1))),
        ("created", lambda: (method / "new-one.yaml").write_text("id: new-one\n")),
        ("renamed", lambda: (method / "new-one.yaml").rename(method / "new-two.yaml")),
        ("removed", lambda: (method / "new-two.yaml").unlink()),
        ("new folder with a file", lambda: (content / "extra").mkdir() or (content / "extra/a.yaml").write_text("x\n")),
        ("file in the new folder", lambda: (content / "extra/b.yaml").write_text("y\n")),
        ("new folder removed", lambda: shutil.rmtree(content / "extra")),
        ("a link to a file elsewhere", lambda: (method / "linked.yaml").symlink_to(target)),
        ("the link's target edited", lambda: target.write_text(target.read_text() + "# more\n")),
        ("bib folder replaced", lambda: (bib.rename(tmp_path / "old-bib"), shutil.copytree(tmp_path / "old-bib", bib))),
    ]
    for label, change in changes:
        change()
        assert check(label), f"{label}: the watcher did not survey again"
    assert not check("nothing changed")


def test_random_changes_keep_the_answers_equal(watching):
    """A property check: after each of 40 random edits, creations, removals and touches (seeded), the
    watcher's answer equals the stat answer."""
    kb, _ = watching
    rng = random.Random(7)
    folder = kb.layout.content / "concept"
    for step in range(40):
        files = sorted(folder.glob("*.yaml"))
        action = rng.choice(["edit", "create", "remove", "touch"])
        if action == "edit" or (action == "remove" and len(files) < 3):
            with open(rng.choice(files), "a") as f:
                f.write("#\n")
        elif action == "create":
            (folder / f"r{step}.yaml").write_text("id: r\n")
        elif action == "remove":
            rng.choice(files).unlink()
        else:
            os.utime(rng.choice(files), ns=(step, step))
        assert freshness.watched(kb.layout.sources) == _by_stat(kb), (step, action)


def test_a_query_in_another_process_sees_an_in_place_edit_through_the_watcher(watching):
    kb, watcher = watching
    path = kb.layout.content / "method/integrated-gradients.yaml"
    _same_size_edit(path, keep_folder_times=True)
    code = ("import json, sys, kb.freshness as F; F.FORK_FROM = 0; from kb import KnowledgeBase; "
            "a = KnowledgeBase(sys.argv[1]).query('explain my cnn prediction', limit=10); "
            "print(json.dumps([r['summary'] for r in a['results']]))")
    served = watcher.served
    out = subprocess.run([sys.executable, "-c", code, str(kb.layout.root)], capture_output=True, text=True, check=True)
    assert watcher.served > served
    assert any(s.startswith("Q") or s.startswith("R") for s in json.loads(out.stdout))


def test_without_a_watcher_the_check_stats_the_files(minimal):
    KnowledgeBase(minimal).build()
    assert freshness.watched(KnowledgeBase(minimal).layout.sources) is None
    assert KnowledgeBase(minimal).info()["watched"] is False


def test_info_says_a_watcher_runs(watching, runner):
    kb, _ = watching
    assert kb.info()["watched"] is True
    result = runner.invoke(cli, ["--root", str(kb.layout.root), "info"])
    assert "watched:        yes" in result.output


def test_a_second_watcher_gets_a_clear_message(watching, runner):
    kb, _ = watching
    result = runner.invoke(cli, ["--root", str(kb.layout.root), "watch"])
    assert result.exit_code == 1
    assert "a watcher already runs for" in result.output
    assert "Traceback" not in result.output

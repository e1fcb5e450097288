"""The HTTP API, for real: a uvicorn process on loopback, schemathesis, and load during a rebuild."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("schemathesis")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from load import run_load  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("served") / "kb"
    shutil.copytree(REPO / "tests/fixtures/minimal", root, ignore=shutil.ignore_patterns(".kb"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "KB_DATABASE_URL"}
    proc = subprocess.Popen([sys.executable, "-m", "kb", "--root", str(root), "serve", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(url + "/health", timeout=1)
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(proc.stdout.read().decode())
            time.sleep(0.1)
    yield url, root
    proc.terminate()
    proc.wait(timeout=10)


def test_schemathesis_finds_no_server_error(server, tmp_path):
    """Generated requests for every operation in /openapi.json: none may get a 5xx."""
    cli = Path(sys.executable).with_name("schemathesis")
    proc = subprocess.run([str(cli), "run", server[0] + "/openapi.json", "--checks", "not_a_server_error",
                           "--max-examples", "60", "--seed", "1", "--workers", "2"],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    tail = proc.stdout[-3000:]
    print(tail)
    assert proc.returncode == 0, tail
    assert "passed" in tail.lower()


def test_bad_requests_get_a_clear_4xx(server):
    import json
    import urllib.error

    for path, status in [("/records/method/nope", 404), ("/query?q=x&access=telepathy", 422),
                         ("/query?q=x&architecture=abacus", 400), ("/path", 400), ("/records/widget/x", 422)]:
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(server[0] + path)
        assert err.value.code == status, path
        assert json.loads(err.value.read())["detail"]


def test_load_with_a_rebuild_replacing_the_store(server):
    url, root = server
    env = {**{k: v for k, v in os.environ.items() if k != "KB_DATABASE_URL"}, "KB_ROOT": str(root)}
    target = root / "content/concept/gradient.yaml"
    import threading

    def rebuild_twice():
        for n in range(2):
            time.sleep(0.5)
            target.write_text(target.read_text().replace("name: Gradient", f"name: Gradient{n}", 1) if n == 0
                              else target.read_text().replace("name: Gradient0", "name: Gradient", 1))
            subprocess.run([sys.executable, "-m", "kb", "build"], env=env, check=True, capture_output=True)

    builder = threading.Thread(target=rebuild_twice)
    builder.start()
    result = run_load(url, requests=2000, concurrency=6, deadline_s=90)
    builder.join()
    print(f"\nload: {result}")
    assert result["requests"] == 2000
    assert result["failures"] == 0, result["failure_samples"]

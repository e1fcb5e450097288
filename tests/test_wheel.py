"""Install it anywhere: the wheel, built from a clean checkout (HEAD) and installed (not editable) into a
fresh virtual environment, answers from an empty folder with the bundled handbook and writes nothing
there but the rendered site. bench/wheel.py does the work and also reports sizes and timings."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
import wheel as wheel_check  # noqa: E402


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("git") is None or not (REPO / ".git").exists(), reason="needs the git checkout")
def test_wheel_from_a_clean_checkout_works_from_an_empty_folder(tmp_path):
    result = wheel_check.run(tmp_path, runs=3)
    print(result)
    assert result["wheel_bytes"] < 30_000_000  # a sanity ceiling; most of it is kb/data's embedding table
    assert result["wheel_groups"]["kb/_handbook/content"] > 300

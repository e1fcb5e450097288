"""Regenerate kb/data/english_words.txt: common English words, for spelling correction that knows English.

The query corrects only words that are neither English nor the records' vocabulary, so a real word
("chest", "weather") is never turned into another. The list comes from pyspellchecker's English
frequency dictionary (MIT licence; counts from OpenSubtitles and other corpora): words seen at least
100 times, letters only. Run once when updating the list:

    python -m venv /tmp/wl && /tmp/wl/bin/pip install pyspellchecker==0.9.1
    /tmp/wl/bin/python tools/make_english_words.py
"""
import gzip
import json
from importlib.resources import files
from pathlib import Path

MIN_COUNT = 100

counts = json.loads(gzip.decompress((files("spellchecker") / "resources" / "en.json.gz").read_bytes()))
words = sorted(w for w, c in counts.items() if c >= MIN_COUNT and w.isascii() and w.isalpha() and len(w) >= 2)
out = Path(__file__).resolve().parents[1] / "kb" / "data" / "english_words.txt"
out.write_text("# common English words (pyspellchecker 0.9.1 en dictionary, count >= 100); tools/make_english_words.py\n"
               + "\n".join(words) + "\n")
print(f"{len(words)} words -> {out}")

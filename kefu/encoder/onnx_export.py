"""Export any BERT-architecture TF/HF model directory to ONNX without torch.

torch is not allowed in this project and tf2onnx does not resolve with Rasa's pins,
so the encoder graph is written op by op with ``onnx.helper`` (opset 17, standard
ops only) from the weights ``TFBertModel.from_pretrained`` loads. That works for the
converted multilingual-e5-small and for a user's own ``bert-base-chinese`` alike.

Graph: inputs ``input_ids``, ``attention_mask``, ``token_type_ids`` (int64,
``[batch, sequence]``); output ``last_hidden_state`` (float32,
``[batch, sequence, hidden]``). It matches TF BERT's eval-mode forward pass,
including the additive ``-10000`` attention mask.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any, Dict, List

import numpy as np

from kefu.errors import BadInput, KefuError

OPSET = 17
IR_VERSION = 8  # the lowest IR that carries opset 17; widest runtime support
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT = "last_hidden_state"
_ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu")


def bert_weights(model: Any) -> Dict[str, np.ndarray]:
    """Pull float32 numpy weights out of a built ``TFBertModel`` by layer attribute."""
    out: Dict[str, np.ndarray] = {}

    def put(name: str, var: Any) -> None:
        out[name] = np.asarray(var.numpy(), dtype=np.float32)

    emb = model.bert.embeddings
    put("emb.word", emb.weight)
    put("emb.pos", emb.position_embeddings)
    put("emb.type", emb.token_type_embeddings)
    put("emb.ln.w", emb.LayerNorm.gamma)
    put("emb.ln.b", emb.LayerNorm.beta)
    for i, layer in enumerate(model.bert.encoder.layer):
        att = layer.attention
        for key, dense in (
            ("q", att.self_attention.query),
            ("k", att.self_attention.key),
            ("v", att.self_attention.value),
            ("ao", att.dense_output.dense),
            ("fi", layer.intermediate.dense),
            ("fo", layer.bert_output.dense),
        ):
            put(f"l{i}.{key}.w", dense.kernel)  # Keras kernels are [in, out]: MatMul-ready
            put(f"l{i}.{key}.b", dense.bias)
        for key, norm in (("aln", att.dense_output.LayerNorm), ("oln", layer.bert_output.LayerNorm)):
            put(f"l{i}.{key}.w", norm.gamma)
            put(f"l{i}.{key}.b", norm.beta)
    return out


class _Graph:
    """Accumulates nodes and initializers with unique, readable names."""

    def __init__(self) -> None:
        self.nodes: List[Any] = []
        self.inits: List[Any] = []
        self._names: set[str] = set()
        self._n = 0

    def const(self, name: str, value: np.ndarray) -> str:
        """Add an initializer once; later calls with the same name reuse it."""
        from onnx import numpy_helper  # lazy: onnx only when exporting; the runtime imports this module

        if name in self._names:
            return name
        self._names.add(name)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, op_type: str, inputs: List[str], name: str = "", **attrs: Any) -> str:
        from onnx import helper  # lazy: onnx only when exporting

        self._n += 1
        out = name or f"{op_type.lower()}_{self._n}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=f"n{self._n}_{op_type}", **attrs))
        return out


def _layer_norm(g: _Graph, x: str, w: Dict[str, np.ndarray], key: str, eps: float) -> str:
    return g.op(
        "LayerNormalization",
        [x, g.const(key + ".w", w[key + ".w"]), g.const(key + ".b", w[key + ".b"])],
        axis=-1,
        epsilon=eps,
    )


def _dense(g: _Graph, x: str, w: Dict[str, np.ndarray], key: str) -> str:
    y = g.op("MatMul", [x, g.const(key + ".w", w[key + ".w"])])
    return g.op("Add", [y, g.const(key + ".b", w[key + ".b"])])


def _activation(g: _Graph, x: str, kind: str) -> str:
    if kind == "relu":
        return g.op("Relu", [x])
    half, one = g.const("c_half", np.float32(0.5)), g.const("c_one", np.float32(1.0))
    if kind == "gelu":  # exact: 0.5 x (1 + erf(x / sqrt 2))
        inner = g.op("Erf", [g.op("Mul", [x, g.const("c_rsqrt2", np.float32(1 / math.sqrt(2)))])])
    else:  # tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        cube = g.op("Mul", [g.op("Mul", [x, x]), x])
        poly = g.op("Add", [x, g.op("Mul", [cube, g.const("c_gelu_k", np.float32(0.044715))])])
        inner = g.op("Tanh", [g.op("Mul", [poly, g.const("c_gelu_s", np.float32(math.sqrt(2 / math.pi)))])])
    return g.op("Mul", [g.op("Mul", [x, half]), g.op("Add", [inner, one])])


def build_bert_graph(w: Dict[str, np.ndarray], config: Any) -> Any:
    """The ``onnx.ModelProto`` of a BERT encoder with weights ``w`` (see ``bert_weights``)."""
    from onnx import TensorProto, helper  # lazy: onnx only when exporting

    hidden, heads = int(config.hidden_size), int(config.num_attention_heads)
    if hidden % heads:
        raise BadInput(f"hidden size {hidden} is not divisible by {heads} heads")
    head_dim, eps = hidden // heads, float(config.layer_norm_eps)
    act = str(config.hidden_act)
    if act not in _ACTIVATIONS:
        raise BadInput(f"hidden_act {act!r} is not supported by the ONNX exporter ({', '.join(_ACTIVATIONS)})")
    g = _Graph()
    ids, mask, types = INPUTS
    # Embeddings: word + position (0..S-1, as BERT numbers them) + token type, then LayerNorm.
    # Rows 0..S-1 of the position table by Slice: a Range+Gather pattern trips an
    # onnxruntime 1.23 graph fusion ("Starts must be a 1-D array").
    i0, i1, i2 = (g.const(f"c_i{n}", np.array([n], dtype=np.int64)) for n in range(3))
    seq_len = g.op("Slice", [g.op("Shape", [ids]), i1, i2, i0])
    x = g.op(
        "Add",
        [
            g.op("Gather", [g.const("emb.word", w["emb.word"]), ids]),
            g.op("Slice", [g.const("emb.pos", w["emb.pos"]), i0, seq_len, i0]),
        ],
    )
    x = g.op("Add", [x, g.op("Gather", [g.const("emb.type", w["emb.type"]), types])])
    x = _layer_norm(g, x, w, "emb.ln", eps)
    # Additive mask [B, 1, 1, S]: 0 where attended, -10000 where padded (as TF BERT).
    m = g.op("Cast", [mask], to=TensorProto.FLOAT)
    m = g.op("Unsqueeze", [m, g.const("c_axes12", np.array([1, 2], dtype=np.int64))])
    m = g.op("Mul", [g.op("Sub", [g.const("c_1f", np.float32(1.0)), m]), g.const("c_neg", np.float32(-10000.0))])
    split_shape = g.const("c_split", np.array([0, 0, heads, head_dim], dtype=np.int64))
    merge_shape = g.const("c_merge", np.array([0, 0, hidden], dtype=np.int64))
    scale = g.const("c_scale", np.float32(1.0 / math.sqrt(head_dim)))
    layer = 0
    while f"l{layer}.q.w" in w:
        p = f"l{layer}."
        q = g.op("Transpose", [g.op("Reshape", [_dense(g, x, w, p + "q"), split_shape])], perm=[0, 2, 1, 3])
        k = g.op("Transpose", [g.op("Reshape", [_dense(g, x, w, p + "k"), split_shape])], perm=[0, 2, 3, 1])
        v = g.op("Transpose", [g.op("Reshape", [_dense(g, x, w, p + "v"), split_shape])], perm=[0, 2, 1, 3])
        scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, k]), scale]), m])
        ctx = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])
        ctx = g.op("Reshape", [g.op("Transpose", [ctx], perm=[0, 2, 1, 3]), merge_shape])
        x = _layer_norm(g, g.op("Add", [_dense(g, ctx, w, p + "ao"), x]), w, p + "aln", eps)
        mid = _activation(g, _dense(g, x, w, p + "fi"), act)
        x = _layer_norm(g, g.op("Add", [_dense(g, mid, w, p + "fo"), x]), w, p + "oln", eps)
        layer += 1
    g.nodes.append(helper.make_node("Identity", [x], [OUTPUT], name="output"))
    graph = helper.make_graph(
        g.nodes,
        "bert_encoder",
        [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"]) for n in INPUTS],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", "sequence", hidden])],
        g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="kefu.encoder")
    model.ir_version = IR_VERSION
    return model


def load_tf_bert(hf_dir: str | Path) -> Any:
    """``TFBertModel.from_pretrained`` with errors turned into ``BadInput``."""
    from transformers import AutoConfig, TFBertModel  # lazy: TensorFlow (2 s) only when exporting

    try:
        config = AutoConfig.from_pretrained(str(hf_dir))
    except (OSError, ValueError) as exc:
        raise BadInput(f"{hf_dir}: no readable Hugging Face config.json") from exc
    if config.model_type != "bert":
        raise BadInput(f"{hf_dir}: model_type {config.model_type!r}; only BERT-architecture models export")
    try:
        return TFBertModel.from_pretrained(str(hf_dir), config=config)
    except (OSError, ValueError) as exc:
        raise BadInput(f"{hf_dir}: TensorFlow BERT weights could not be loaded") from exc


def export_onnx(hf_dir: str | Path, out_path: str | Path) -> Path:
    """Export the BERT model in ``hf_dir`` to an fp32 ONNX file at ``out_path``."""
    import onnx  # lazy: onnx only when exporting

    model = load_tf_bert(hf_dir)
    proto = build_bert_graph(bert_weights(model), model.config)
    del model
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")  # concurrent exporters never share it
    try:
        onnx.checker.check_model(proto)
        onnx.save_model(proto, str(tmp))
        tmp.replace(out)
    except (OSError, ValueError, onnx.checker.ValidationError) as exc:
        tmp.unlink(missing_ok=True)
        raise KefuError(f"could not write ONNX model {out}: {exc}") from exc
    return out


class _DropPreprocessHint(logging.Filter):
    """onnxruntime logs an advice line on the root logger for every quantisation."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Please consider to run pre-processing")


def quantize_int8(fp32_path: str | Path, out_path: str | Path) -> Path:
    """Dynamic int8 quantisation: QInt8 weights for MatMul (constant B) and Gather.

    Per-channel scales and 7-bit ``reduce_range`` matter: on multilingual-e5-small the
    plain per-tensor variant agreed with the fp32 model at a min cosine of ~0.985
    (x86 u8s8 kernels saturate), per-channel + reduce_range at ~0.994.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic  # lazy: only when quantising

    out = Path(out_path)
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")  # concurrent exporters never share it
    hint = _DropPreprocessHint()
    logging.getLogger().addFilter(hint)
    try:
        quantize_dynamic(
            str(fp32_path),
            str(tmp),
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul", "Gather"],
            per_channel=True,
            reduce_range=True,
            extra_options={"MatMulConstBOnly": True},
        )
        tmp.replace(out)
    except (OSError, ValueError, RuntimeError) as exc:
        tmp.unlink(missing_ok=True)
        raise KefuError(f"could not quantise {fp32_path}: {exc}") from exc
    finally:
        logging.getLogger().removeFilter(hint)
    return out

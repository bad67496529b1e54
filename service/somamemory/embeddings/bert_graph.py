"""An ONNX graph of a BERT sentence encoder, built in memory from its weights in a few hundred ms.

Token ids and attention mask in, one L2-normalised sentence vector out (mean pooling over the
real tokens), as sentence-transformers computes it for all-MiniLM-L6-v2. The layers are written
with onnxruntime's fused CPU operators (``EmbedLayerNormalization``, ``Attention``,
``SkipLayerNormalization``, ``BiasGelu``): the very graph its BERT optimiser makes out of a
PyTorch export, without needing torch, an export step or an optimiser pass. The same weights and
config always give the same graph.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

INPUT_IDS = "input_ids"
ATTENTION_MASK = "attention_mask"
OUTPUT = "sentence_embedding"
_OPSET = 18
_CONTRIB = "com.microsoft"
_NORM_FLOOR = 1e-12  # torch.nn.functional.normalize's eps
_COUNT_FLOOR = 1e-9  # sentence-transformers' mean pooling clamps the token count to this


class _Graph:
    """Nodes and initialisers of the graph under construction, with unique names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def const(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type: str, inputs: list[str], outputs: int = 1, **attributes: Any) -> Any:
        """Add one node; its output name, or a list of them when ``outputs`` > 1."""
        name = f"{op_type}_{len(self.nodes)}"
        names = [f"{name}_out{i}" for i in range(outputs)]
        domain = attributes.pop("domain", "")
        self.nodes.append(
            helper.make_node(op_type, inputs, names, name=name, domain=domain, **attributes)
        )
        return names[0] if outputs == 1 else names


def build_sentence_encoder(
    config: Mapping[str, Any], weights: Mapping[str, np.ndarray]
) -> onnx.ModelProto:
    """A Hugging Face ``BertModel`` (its ``config.json`` and state dict) with mean pooling.

    Inputs ``input_ids`` and ``attention_mask`` are int32 ``[batch, seq]`` with right padding;
    the output is float32 ``[batch, hidden_size]`` with unit rows. Only single-segment input
    (token type 0), absolute positions and the exact (erf) GELU are supported, as in MiniLM.
    """
    _check_supported(config)
    w = {key.removeprefix("bert."): value for key, value in weights.items()}
    eps = float(config["layer_norm_eps"])
    g = _Graph()

    # Embeddings: token type 0 for every token, so its row folds into the position table.
    positions = (
        w["embeddings.position_embeddings.weight"] + w["embeddings.token_type_embeddings.weight"][0]
    )
    hidden, mask_index = g.op(
        "EmbedLayerNormalization",
        [
            INPUT_IDS,
            "",  # no segment ids
            g.const("word_embeddings", w["embeddings.word_embeddings.weight"]),
            g.const("position_embeddings", positions.astype(np.float32)),
            "",  # no segment embeddings
            g.const("embeddings_ln_gamma", w["embeddings.LayerNorm.weight"]),
            g.const("embeddings_ln_beta", w["embeddings.LayerNorm.bias"]),
            ATTENTION_MASK,
        ],
        outputs=2,
        domain=_CONTRIB,
        epsilon=eps,
    )
    for layer in range(int(config["num_hidden_layers"])):
        hidden = _encoder_layer(g, w, layer, hidden, mask_index, config, eps)
    _mean_pool_and_normalise(g, hidden)

    graph = helper.make_graph(
        g.nodes,
        "sentence_encoder",
        [
            helper.make_tensor_value_info(INPUT_IDS, TensorProto.INT32, ["batch", "sequence"]),
            helper.make_tensor_value_info(ATTENTION_MASK, TensorProto.INT32, ["batch", "sequence"]),
        ],
        [
            helper.make_tensor_value_info(
                OUTPUT, TensorProto.FLOAT, ["batch", int(config["hidden_size"])]
            )
        ],
        g.initializers,
    )
    opsets = [helper.make_opsetid("", _OPSET), helper.make_opsetid(_CONTRIB, 1)]
    return helper.make_model(graph, opset_imports=opsets, producer_name="somamemory")


def _check_supported(config: Mapping[str, Any]) -> None:
    if config.get("model_type", "bert") != "bert":
        raise ValueError(f"not a BERT model: model_type={config.get('model_type')!r}")
    if config.get("hidden_act", "gelu") != "gelu":
        raise ValueError(f"unsupported activation {config.get('hidden_act')!r} (only exact gelu)")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError("unsupported position embeddings (only absolute)")
    if int(config["hidden_size"]) % int(config["num_attention_heads"]):
        raise ValueError("hidden_size is not a multiple of num_attention_heads")


def _encoder_layer(
    g: _Graph,
    w: Mapping[str, np.ndarray],
    layer: int,
    hidden: str,
    mask_index: str,
    config: Mapping[str, Any],
    eps: float,
) -> str:
    """Self-attention, then the feed-forward block, each with its residual and layer norm."""
    p = f"encoder.layer.{layer}."
    att = p + "attention."
    # Linear layers keep torch's [out, in] weights: ONNX MatMul wants [in, out].
    qkv_weight = np.concatenate(
        [w[f"{att}self.{part}.weight"].T for part in ("query", "key", "value")], axis=1
    )
    qkv_bias = np.concatenate([w[f"{att}self.{part}.bias"] for part in ("query", "key", "value")])
    context = g.op(
        "Attention",
        [
            hidden,
            g.const(f"l{layer}_qkv_w", qkv_weight),
            g.const(f"l{layer}_qkv_b", qkv_bias),
            mask_index,
        ],
        domain=_CONTRIB,
        num_heads=int(config["num_attention_heads"]),
    )
    projected = g.op(
        "MatMul", [context, g.const(f"l{layer}_attn_out_w", w[att + "output.dense.weight"].T)]
    )
    hidden = g.op(
        "SkipLayerNormalization",
        [
            projected,
            hidden,
            g.const(f"l{layer}_attn_ln_gamma", w[att + "output.LayerNorm.weight"]),
            g.const(f"l{layer}_attn_ln_beta", w[att + "output.LayerNorm.bias"]),
            g.const(f"l{layer}_attn_out_b", w[att + "output.dense.bias"]),
        ],
        domain=_CONTRIB,
        epsilon=eps,
    )
    inner = g.op(
        "MatMul", [hidden, g.const(f"l{layer}_ffn_in_w", w[p + "intermediate.dense.weight"].T)]
    )
    inner = g.op(
        "BiasGelu",
        [inner, g.const(f"l{layer}_ffn_in_b", w[p + "intermediate.dense.bias"])],
        domain=_CONTRIB,
    )
    outer = g.op("MatMul", [inner, g.const(f"l{layer}_ffn_out_w", w[p + "output.dense.weight"].T)])
    return g.op(  # type: ignore[no-any-return]
        "SkipLayerNormalization",
        [
            outer,
            hidden,
            g.const(f"l{layer}_ffn_ln_gamma", w[p + "output.LayerNorm.weight"]),
            g.const(f"l{layer}_ffn_ln_beta", w[p + "output.LayerNorm.bias"]),
            g.const(f"l{layer}_ffn_out_b", w[p + "output.dense.bias"]),
        ],
        domain=_CONTRIB,
        epsilon=eps,
    )


def _mean_pool_and_normalise(g: _Graph, hidden: str) -> None:
    """Average the real tokens' states (padding masked out), then scale each row to unit length."""
    mask = g.op("Cast", [ATTENTION_MASK], to=TensorProto.FLOAT)
    mask = g.op("Unsqueeze", [mask, g.const("axis_last", np.array([2], np.int64))])
    tokens_axis = g.const("axis_tokens", np.array([1], np.int64))
    summed = g.op("ReduceSum", [g.op("Mul", [hidden, mask]), tokens_axis], keepdims=0)
    count = g.op("ReduceSum", [mask, tokens_axis], keepdims=0)
    count = g.op("Max", [count, g.const("count_floor", np.array(_COUNT_FLOOR, np.float32))])
    mean = g.op("Div", [summed, count])
    norm = g.op("ReduceL2", [mean, g.const("axis_hidden", np.array([-1], np.int64))], keepdims=1)
    norm = g.op("Max", [norm, g.const("norm_floor", np.array(_NORM_FLOOR, np.float32))])
    g.nodes.append(helper.make_node("Div", [mean, norm], [OUTPUT], name="normalise"))

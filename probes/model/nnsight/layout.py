"""Where a Hugging Face causal LM keeps what the nnsight backend reads: found from its modules.

The bridge backend learns a model's layout from TransformerLens's adapters; the nnsight backend
reads the model as Hugging Face built it: the blocks are the ``ModuleList`` as long as the
config's layer count, the final norm is the norm the blocks' parent applies after them, the
unembedding is ``get_output_embeddings()``, and each block's attention, its output projection and
its MLP go by the names the common families use (GPT-2, GPT-NeoX/Pythia, Llama, Qwen, Mistral,
OLMo, Phi, Gemma, OPT ...). A model that does not fit is refused, by name, when it is wrapped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float

from probes.errors import UnsupportedModelError

ATTENTION_NAMES = ("self_attn", "attention", "attn", "self_attention")
PROJECTION_NAMES = ("o_proj", "dense", "c_proj", "out_proj")
MLP_NAMES = ("mlp", "feed_forward", "fc2")  # OPT: the MLP is fc1, activation, fc2 in the block

#: Families whose attention or MLP module adds the residual stream to its own output (the module's
#: output is not the hook point's value): the nnsight backend refuses them, the bridge takes them.
RESIDUAL_INSIDE = {
    "bloom": "Bloom's attention and MLP",
    "mpt": "MPT's MLP",
}


def _child_named(module: torch.nn.Module, names: tuple[str, ...], what: str, where: str) -> str:
    children = dict(module.named_children())
    found = next((name for name in names if name in children), None)
    if found is None:
        raise UnsupportedModelError(
            f"{where} has no {what} named any of {list(names)} (it has {sorted(children)}); "
            "use --backend bridge for this model."
        )
    return found


def resolve(root: Any, path: str) -> Any:
    """``root.a.b.0.c`` for ``path = "a.b.0.c"``, on modules and on nnsight envoys alike."""
    node = root
    for part in path.split(".") if path else []:
        node = node[int(part)] if part.isdigit() else getattr(node, part)
    return node


@dataclass(frozen=True)
class Layout:
    """Dotted paths of a model's blocks, final norm and unembedding, and of a block's parts."""

    blocks_path: str
    final_norm_path: str
    unembedding_path: str
    attention_path: str
    output_projection_path: str
    mlp_path: str
    #: The modules whose outputs join the residual stream (``hook_attn_out``, ``hook_mlp_out``): the
    #: attention and the MLP, or their post-norms where each sublayer's output is normed first
    #: (Gemma-2/3, OLMo-2/3); empty: the attention and MLP themselves.
    attention_output_path: str = ""
    mlp_output_path: str = ""
    #: A projection between the final norm and the unembedding (OPT-350m's ``project_out``), if any.
    project_out_path: str = ""
    #: What the block multiplies each sublayer's output by before adding it (Granite's
    #: ``residual_multiplier``): the hook points hold the contribution, as the bridge's do.
    residual_scale: float = 1.0

    @classmethod
    def of(cls, hf_model: torch.nn.Module) -> Layout:
        """Find the layout of a Hugging Face causal LM (see the module docstring)."""
        config = hf_model.config
        name = type(hf_model).__name__
        inside = RESIDUAL_INSIDE.get(getattr(config, "model_type", ""))
        if inside:
            raise UnsupportedModelError(
                f"{name}: {inside} add the residual stream to their output, which the nnsight backend "
                "would read as theirs; use --backend bridge (or the default, auto)."
            )
        n_layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layer", None)
        paths = {path: module for path, module in hf_model.named_modules()}
        blocks_path = next(
            (p for p, m in paths.items() if isinstance(m, torch.nn.ModuleList) and len(m) == n_layers), None
        )
        if blocks_path is None:
            raise UnsupportedModelError(f"{name}: no list of {n_layers} blocks; use --backend bridge.")
        parent_path, _, blocks_name = blocks_path.rpartition(".")
        siblings = list(resolve(hf_model, parent_path).named_children())
        where = [n for n, _ in siblings].index(blocks_name)
        # The final norm: a norm beside the blocks, after them if one is (OPT declares it before
        # them; Bloom's norm before them is of the embeddings).
        norms = [
            n
            for n, module in siblings[where + 1 :] + siblings[:where][::-1]
            if "norm" in type(module).__name__.lower() and "embed" not in n
        ]
        project_out = dict(siblings).get("project_out")
        if norms:
            norm_path = f"{parent_path}.{norms[0]}".lstrip(".")
        elif getattr(config, "do_layer_norm_before", True) is False:
            norm_path = ""  # post-LN OPT (OPT-350m): the last block's output goes to project_out
        else:
            raise UnsupportedModelError(f"{name}: no final norm beside the blocks; use --backend bridge.")
        unembedding = hf_model.get_output_embeddings()
        unembedding_path = next((p for p, m in paths.items() if m is unembedding), None)
        if unembedding_path is None:
            raise UnsupportedModelError(f"{name}: no output embeddings; use --backend bridge.")
        block = paths[f"{blocks_path}.0"]
        attention = _child_named(block, ATTENTION_NAMES, "attention", f"{name}'s blocks")
        inner = getattr(block, attention)
        if not any(hasattr(inner, projection) for projection in PROJECTION_NAMES) and hasattr(
            inner, "attention"
        ):
            attention, inner = f"{attention}.attention", inner.attention  # GPT-Neo nests its attention
        projection = _child_named(inner, PROJECTION_NAMES, "output projection", f"{name}'s attention")
        mlp = _child_named(block, MLP_NAMES, "MLP", f"{name}'s blocks")
        children = dict(block.named_children())
        post_norms = "post_attention_layernorm" in children and "post_feedforward_layernorm" in children
        return cls(
            blocks_path=blocks_path,
            final_norm_path=norm_path,
            project_out_path=f"{parent_path}.project_out".lstrip(".") if project_out is not None else "",
            unembedding_path=unembedding_path,
            attention_path=attention,
            output_projection_path=f"{attention}.{projection}",
            mlp_path=mlp,
            attention_output_path="post_attention_layernorm" if post_norms else attention,
            mlp_output_path="post_feedforward_layernorm" if post_norms else mlp,
            residual_scale=float(getattr(config, "residual_multiplier", None) or 1.0),
        )

    def envoy(self, root: Any, path: str) -> Any:
        """The module (or nnsight envoy) at ``path`` under ``root``."""
        return resolve(root, path)

    def blocks(self, root: Any) -> Any:
        """The blocks (a ``ModuleList``, or its envoy under an nnsight model)."""
        return resolve(root, self.blocks_path)

    def final_norm(self, root: Any) -> Any:
        """The final norm (``None`` for a model without one: post-LN OPT)."""
        return resolve(root, self.final_norm_path) if self.final_norm_path else None

    def unembedding(self, root: Any) -> Any:
        """The unembedding (``lm_head``, ``embed_out`` ...)."""
        return resolve(root, self.unembedding_path)

    def centres(self, root: Any) -> bool:
        """Whether the final norm subtracts the mean (LayerNorm) or not (RMSNorm)."""
        return "rms" not in type(self.final_norm(root) or torch.nn.LayerNorm).__name__.lower()

    def output_matrix(self, projection: torch.nn.Module) -> Float[torch.Tensor, "heads_d_head d_model"]:
        """An attention output projection's matrix as ``(n_heads * d_head) x d_model``."""
        weight = projection.weight
        return weight.T if isinstance(projection, torch.nn.Linear) else weight  # GPT-2's Conv1D is in x out

    def scale(self, norm: torch.nn.Module, hidden: torch.Tensor) -> Float[torch.Tensor, "*shape 1"]:
        """The final norm's divisor of each vector: its standard deviation (LayerNorm) or root mean
        square (RMSNorm), with the norm's epsilon, in float32."""
        eps = getattr(norm, "eps", None)
        eps = getattr(norm, "variance_epsilon", 1e-5) if eps is None else eps
        x = hidden.float()
        if "rms" not in type(norm).__name__.lower():
            x = x - x.mean(-1, keepdim=True)
        return (x.pow(2).mean(-1, keepdim=True) + eps).sqrt()

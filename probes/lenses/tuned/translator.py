"""Per-layer affine translators of the tuned lens (Belrose et al. 2023).

Layer ``l``'s translator maps the residual stream at layer ``l`` to what the last
layer's stream would be: ``h + A_l h + b_l``, with ``A_l`` and ``b_l`` zero at
initialisation, so an untrained tuned lens is exactly the logit lens. The last
layer has none. Parameter names follow the ``tuned-lens`` library's
``layer_translators`` (``"<layer>.weight"``, ``"<layer>.bias"``), so its published
``params.pt`` load straight into this module.
"""

from __future__ import annotations

import torch
from jaxtyping import Float


class Translators(torch.nn.Module):
    """One identity-initialised affine map per layer ``0 .. n_layers - 1`` of a model."""

    def __init__(self, n_layers: int, d_model: int, bias: bool = True) -> None:
        super().__init__()
        self.n_layers = n_layers
        self.d_model = d_model
        self.layer_translators = torch.nn.ModuleList()
        for _ in range(n_layers):
            linear = torch.nn.Linear(d_model, d_model, bias=bias)
            torch.nn.init.zeros_(linear.weight)
            if bias:
                torch.nn.init.zeros_(linear.bias)
            self.layer_translators.append(linear)

    def transform(
        self, resid: Float[torch.Tensor, "... d_model"], layer: int
    ) -> Float[torch.Tensor, "... d_model"]:
        """The translated stream of ``layer`` (``resid`` unchanged at the last layer)."""
        if layer == self.n_layers:
            return resid
        translator = self.layer_translators[layer]
        weight = translator.weight.to(resid.dtype)
        out = resid + resid @ weight.T
        if translator.bias is not None:
            out = out + translator.bias.to(resid.dtype)
        return out

    def state(self) -> dict[str, torch.Tensor]:
        """Parameters keyed as the ``tuned-lens`` library keys them (``"0.weight"`` ...)."""
        return {
            name: tensor.detach().cpu().contiguous()
            for name, tensor in self.layer_translators.state_dict().items()
        }

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        """Load parameters keyed as :meth:`state` gives them (strict: every key, right shapes)."""
        self.layer_translators.load_state_dict(state, strict=True)

"""What a BLOOM prefill costs in floating-point operations (pure arithmetic, no I/O).

Per prompt of L tokens, on a model of ``layers`` layers, hidden size h and vocabulary V:

- the layers' matrices: 2 FLOPs per weight per token, 2 × 12h² × layers × L (query-key-value
  3h², attention output h², MLP 4h² and 4h²; biases and layer norms add under 0.1 %, left out);
- attention: the query at position i reads i keys and i values, 2h FLOPs each, per layer:
  4h × (1 + 2 + … + L) × layers = 2h × L(L + 1) × layers (ALiBi adds no matrices);
- the output layer (tied to the embedding) only at the prompt's last position, the one a
  classification samples from: 2 × h × V. vLLM computes logits only for the positions it
  samples; the embedding lookup is a gather, no FLOPs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Shape", "prefill_gflop"]


@dataclass(frozen=True)
class Shape:
    """The sizes of a BLOOM checkpoint that its FLOPs depend on."""

    layers: int
    hidden: int
    vocabulary: int

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Shape:
        """From a Hugging Face ``config.json`` of a BLOOM model."""
        layers = config.get("n_layer", config.get("num_hidden_layers"))
        return cls(int(layers), int(config["hidden_size"]), int(config["vocab_size"]))

    @property
    def matrix_params(self) -> int:
        """Weights of the layers' matrices (the non-embedding parameters, less biases and norms)."""
        return 12 * self.hidden * self.hidden * self.layers


def prefill_gflop(shape: Shape, prompt_tokens: float) -> dict[str, float]:
    """GFLOP of one prompt's prefill of ``prompt_tokens`` tokens, by part and in all."""
    tokens = prompt_tokens
    matrices = 2.0 * shape.matrix_params * tokens
    attention = 2.0 * shape.hidden * tokens * (tokens + 1) * shape.layers
    output = 2.0 * shape.hidden * shape.vocabulary
    parts = {"matrices": matrices, "attention": attention, "output": output}
    gflop = {name: value / 1e9 for name, value in parts.items()}
    gflop["total"] = sum(gflop.values())
    return gflop

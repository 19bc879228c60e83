"""The clamped-and-normalised colour MLP (science.md §2).

RGB -> encoder -> 5-D pre-norm latent ``z`` -> ``L2Norm`` -> unit latent ``h`` -> decoder -> RGB.
Outputs are unclamped in training mode and clamped to [0, 1] in eval mode (§12 pitfall 7).

Module paths matter: regularizers, surgery and interventions address layers by them
(``encoder``, ``bottleneck``, ``decoder``, ``encoder.4`` ...).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = [
    "MODEL_KINDS",
    "CNColorMLP",
    "ColorMLP",
    "L2Norm",
    "build_model",
    "check_shape",
    "initial_parameters",
    "layer_shapes",
    "parameter_count",
]

MODEL_KINDS = ("CNColorMLP", "ColorMLP")
"""``CNColorMLP``: unit-norm latent, linear output (Ex 2.4 onwards). ``ColorMLP``: the legacy model
of Ex 1.x–2.2, no normalisation and a sigmoid output (§2.3)."""


class L2Norm(nn.Module):
    """Divide each row by its Euclidean norm (guarded at 1e-12, as ``F.normalize``)."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(z, p=2.0, dim=-1, eps=1e-12)


def check_shape(name: str, k_bottleneck: int, hidden: int, n_nonlinear: int) -> None:
    """Every layer of a model ``name`` needs at least one unit and one GELU block per side."""
    if k_bottleneck < 1 or hidden < 1 or n_nonlinear < 1:
        raise ValueError(
            f"{name} needs k_bottleneck, hidden, n_nonlinear >= 1, got {k_bottleneck}, {hidden}, {n_nonlinear}"
        )


def _mlp(widths: list[int]) -> nn.Sequential:
    """Linear/GELU stack over ``widths``; no activation after the last Linear."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(widths) - 2:
            layers.append(nn.GELU())
    return nn.Sequential(*layers)


class _ColorAutoencoder(nn.Module):
    """RGB -> encoder -> K-D latent -> decoder -> RGB, with N GELU blocks of width H on each side.

    Subclasses add the latent normalisation and the output; the encoder is built first, so a seed
    gives the same initial weights to every kind (§14.1).
    """

    def __init__(self, k_bottleneck: int, hidden: int, n_nonlinear: int) -> None:
        super().__init__()
        check_shape(type(self).__name__, k_bottleneck, hidden, n_nonlinear)
        self.k_bottleneck = k_bottleneck
        self.hidden = hidden
        self.n_nonlinear = n_nonlinear
        self.encoder = _mlp([3] + [hidden] * n_nonlinear + [k_bottleneck])

    def _decoder(self) -> nn.Sequential:
        return _mlp([self.k_bottleneck] + [self.hidden] * self.n_nonlinear + [3])


class CNColorMLP(_ColorAutoencoder):
    """Colour autoencoder with a unit-norm bottleneck.

    Args:
        k_bottleneck: latent dimension K (5 in Ex 2.9.1).
        hidden: hidden width H (16 in the 60-seed reference, 10 in the 100-seed one; §2.4).
        n_nonlinear: number N of GELU blocks in each of encoder and decoder.

    >>> parameter_count(CNColorMLP(5, hidden=16, n_nonlinear=2))
    840
    """

    def __init__(self, k_bottleneck: int, hidden: int = 16, n_nonlinear: int = 1) -> None:
        super().__init__(k_bottleneck, hidden, n_nonlinear)
        self.bottleneck = L2Norm()
        self.decoder = self._decoder()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.decoder(self.bottleneck(self.encoder(x)))
        return y if self.training else y.clamp(0.0, 1.0)


class ColorMLP(_ColorAutoencoder):
    """The legacy colour autoencoder (§2.3): no bottleneck normalisation, sigmoid output.

    Its latent is the encoder's output (layer ``encoder``); there is no ``bottleneck`` module, so
    regularizers of legacy experiments read ``encoder``. Built with the same Linear order as
    ``CNColorMLP``, so the same seed gives the same initial weights.

    >>> parameter_count(ColorMLP(4))
    263
    """

    def __init__(self, k_bottleneck: int, hidden: int = 16, n_nonlinear: int = 1) -> None:
        super().__init__(k_bottleneck, hidden, n_nonlinear)
        self.decoder = nn.Sequential(*self._decoder(), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.decoder(self.encoder(x))
        return y if self.training else y.clamp(0.0, 1.0)


def layer_shapes(k_bottleneck: int, hidden: int, n_nonlinear: int) -> list[tuple[int, int]]:
    """``(out, in)`` of every Linear in forward order: encoder Linears, then decoder Linears."""
    enc = [3] + [hidden] * n_nonlinear + [k_bottleneck]
    dec = [k_bottleneck] + [hidden] * n_nonlinear + [3]
    return [(o, i) for i, o in zip(enc[:-1], enc[1:])] + [(o, i) for i, o in zip(dec[:-1], dec[1:])]


def parameter_count(model: nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in model.parameters())


def build_model(
    seed: int, k_bottleneck: int = 5, hidden: int = 16, n_nonlinear: int = 2, *, kind: str = "CNColorMLP"
) -> CNColorMLP | ColorMLP:
    """The model the original builds right after ``seed_everything(seed)`` (§6.1, §14.1).

    Seeds the global torch generator, exactly as the original did; the population trainer
    calls this once per seed so that model i of a population starts bitwise equal to a
    model built alone.
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {', '.join(MODEL_KINDS)}")
    torch.manual_seed(seed)
    cls = CNColorMLP if kind == "CNColorMLP" else ColorMLP
    return cls(k_bottleneck, hidden=hidden, n_nonlinear=n_nonlinear)


def initial_parameters(seed: int, k_bottleneck: int = 5, hidden: int = 16, n_nonlinear: int = 2) -> torch.Tensor:
    """``build_model(seed, ...)``'s parameters as one row (P,), bitwise, without building modules.

    Draws what ``nn.Linear.reset_parameters`` draws, Linear by Linear in forward order (the weight
    by ``kaiming_uniform_(a=√5)``, then the bias uniform in ±1/√fan_in), from a generator seeded as
    ``torch.manual_seed(seed)`` seeds the global one; both kinds share it (§14.1). A population
    of 256 is built ~20× faster this way, and the global generator is left alone.
    """
    check_shape("a colour autoencoder", k_bottleneck, hidden, n_nonlinear)
    generator = torch.Generator().manual_seed(seed)
    gain = math.sqrt(2.0 / (1 + math.sqrt(5) ** 2))  # nn.init.calculate_gain("leaky_relu", √5)
    parts = []
    for n_out, n_in in layer_shapes(k_bottleneck, hidden, n_nonlinear):
        bound = math.sqrt(3.0) * (gain / math.sqrt(n_in))
        parts.append(torch.empty(n_out * n_in).uniform_(-bound, bound, generator=generator))
        bias = 1 / math.sqrt(n_in)
        parts.append(torch.empty(n_out).uniform_(-bias, bias, generator=generator))
    return torch.cat(parts)

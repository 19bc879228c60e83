"""S colour models stacked along a leading population axis, with hand-written backward.

All S models' parameters live in one contiguous (S, P) buffer (and so do their gradients and
Adam moments), so an optimizer step is a handful of in-place ops over the whole population,
and a checkpoint is three tensors. Each Linear's weight (S, out, in) and bias (S, out) are views
into that buffer; the forward is batched matmuls, the backward is written out by hand, because
autograd's per-op bookkeeping costs more than the arithmetic at these sizes (architecture.md).

Letters in shape comments: S models, B samples per model, H hidden width, K latent width.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from excolor.model import MODEL_KINDS, CNColorMLP, ColorMLP, initial_parameters, layer_shapes

__all__ = ["Activations", "Population"]


def _gelu_vjp(d_out: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """d_out · GELU'(a) for the exact GELU a·Φ(a), i.e. d_out · (Φ(a) + a·φ(a)).

    ATen's fused kernel is ~8× faster here than the same formula written in torch ops.
    """
    return torch.ops.aten.gelu_backward(d_out, a, approximate="none")


@dataclass
class Activations:
    """What the backward pass needs from one forward pass."""

    inputs: list[torch.Tensor]  # input of every Linear, (S, B, in)
    pre: list[torch.Tensor]  # pre-activation of every hidden Linear (before GELU), (S, B, H)
    z: torch.Tensor  # pre-norm latent (S, B, K)  -- layer 'encoder'
    norm: torch.Tensor | None  # ‖z‖ (S, B, 1); None for ColorMLP (no normalisation)
    h: torch.Tensor  # unit latent (S, B, K)  -- layer 'bottleneck'; z itself for ColorMLP
    y: torch.Tensor  # unclamped output (S, B, 3); after the sigmoid for ColorMLP


class Population:
    """Parameters of S ``CNColorMLP`` (or legacy ``ColorMLP``) models in one flat (S, P) buffer.

    The parameter order inside a row is each Linear's weight (row-major) then its bias, encoder
    first, the same order as ``CNColorMLP.parameters()``. ``kind`` selects the model: the two share
    their Linears and differ in the latent normalisation and the output sigmoid (§2.3).
    """

    def __init__(
        self, flat: torch.Tensor, *, k_bottleneck: int, hidden: int, n_nonlinear: int, kind: str = "CNColorMLP"
    ) -> None:
        if kind not in MODEL_KINDS:
            raise ValueError(f"unknown model kind {kind!r}; expected one of {', '.join(MODEL_KINDS)}")
        self.kind = kind
        self.normalized = kind == "CNColorMLP"  # unit latent; else no norm and a sigmoid output
        self.shapes = layer_shapes(k_bottleneck, hidden, n_nonlinear)
        self.k_bottleneck, self.hidden, self.n_nonlinear = k_bottleneck, hidden, n_nonlinear
        self.n_encoder = n_nonlinear + 1  # Linears in the encoder; as many in the decoder
        size = sum(o * i + o for o, i in self.shapes)
        if flat.ndim != 2 or flat.shape[1] != size:
            raise ValueError(f"flat parameters must be (S, {size}), got {tuple(flat.shape)}")
        self.flat = flat

    @property
    def weights(self) -> list[torch.Tensor]:
        """Per-Linear weights (S, out, in), views into ``flat``."""
        return self.views(self.flat)[0]

    @property
    def biases(self) -> list[torch.Tensor]:
        """Per-Linear biases (S, out), views into ``flat``."""
        return self.views(self.flat)[1]

    @property
    def size(self) -> int:
        """Number of models S."""
        return int(self.flat.shape[0])

    @property
    def n_params(self) -> int:
        return int(self.flat.shape[1])

    def views(self, buffer: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per-Linear weight (S, out, in) and bias (S, out) views into a (S, P) buffer."""
        weights, biases, offset = [], [], 0
        s = buffer.shape[0]
        for o, i in self.shapes:
            weights.append(buffer[:, offset : offset + o * i].view(s, o, i))
            offset += o * i
            biases.append(buffer[:, offset : offset + o])
            offset += o
        return weights, biases

    # ----------------------------------------------------------------------------- construction

    @classmethod
    def from_seeds(
        cls,
        seeds: Sequence[int],
        *,
        k_bottleneck: int = 5,
        hidden: int = 16,
        n_nonlinear: int = 2,
        kind: str = "CNColorMLP",
    ) -> Population:
        """Model i initialised exactly as ``build_model(seeds[i])`` (bitwise, §14.1)."""
        if not seeds:
            raise ValueError("a population needs at least one model")
        flat = torch.stack([initial_parameters(s, k_bottleneck, hidden, n_nonlinear) for s in seeds])
        return cls(flat, k_bottleneck=k_bottleneck, hidden=hidden, n_nonlinear=n_nonlinear, kind=kind)

    @classmethod
    def from_modules(cls, models: Sequence[CNColorMLP | ColorMLP]) -> Population:
        if not models:
            raise ValueError("a population needs at least one model")
        m0 = models[0]
        dims = (type(m0).__name__, m0.k_bottleneck, m0.hidden, m0.n_nonlinear)
        rows = []
        for m in models:
            if (type(m).__name__, m.k_bottleneck, m.hidden, m.n_nonlinear) != dims:
                raise ValueError("all models of a population must have the same kind and shape")
            rows.append(torch.cat([p.detach().reshape(-1) for p in m.parameters()]))
        flat = torch.stack(rows).to(torch.float32).contiguous()
        return cls(flat, k_bottleneck=dims[1], hidden=dims[2], n_nonlinear=dims[3], kind=dims[0])

    def module(self, i: int) -> CNColorMLP | ColorMLP:
        """Model i as a standalone ``CNColorMLP`` (or ``ColorMLP``) in eval mode (a copy)."""
        cls = CNColorMLP if self.normalized else ColorMLP
        m = cls(self.k_bottleneck, hidden=self.hidden, n_nonlinear=self.n_nonlinear)
        nn.utils.vector_to_parameters(self.flat[i].detach().cpu().clone(), m.parameters())
        return m.eval()

    # ----------------------------------------------------------------------------- forward/backward

    @staticmethod
    def _linear(w: torch.Tensor, b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        # x (S, B, in) or shared (B, in): out = b + x Wᵀ -> (S, B, out)
        if x.ndim == 2:
            x = x.expand(w.shape[0], -1, -1)
        return torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))

    def forward(
        self,
        x: torch.Tensor,
        *,
        ablate: Sequence[int] = (),
        latent_map: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> Activations:
        """Train-mode forward (unclamped). ``x`` is (S, B, 3) or one (B, 3) batch shared by all.

        ``ablate`` zeroes those pre-norm latent coordinates before the normalisation: exactly
        what ``surgery.ablate`` does to the weights (§7.4), without copying any model.
        ``latent_map`` replaces the unit latent before the decoder (an intervention, §8.1).
        """
        inputs: list[torch.Tensor] = []
        pre: list[torch.Tensor] = []
        weights, biases = self.views(self.flat)
        a = x
        n_enc = self.n_encoder
        for j in range(2 * n_enc):
            inputs.append(a)
            out = self._linear(weights[j], biases[j], a)
            if j == n_enc - 1:  # encoder's last Linear -> pre-norm latent
                z = out
                if ablate:
                    z = z.clone()
                    z[..., list(ablate)] = 0.0
                if self.normalized:
                    norm = torch.linalg.vector_norm(z, dim=-1, keepdim=True)  # (S, B, 1)
                    h = z / norm.clamp(min=1e-12)
                else:
                    norm, h = None, z
                a = h if latent_map is None else latent_map(h)
            elif j == 2 * n_enc - 1:
                y = out if self.normalized else torch.sigmoid(out)
            else:
                pre.append(out)
                a = nn.functional.gelu(out)
        return Activations(inputs, pre, z, norm, h, y)

    def predict(
        self,
        x: torch.Tensor,
        *,
        ablate: Sequence[int] = (),
        latent_map: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Eval-mode output, clamped to [0, 1] (§12 pitfall 7)."""
        return self.forward(x, ablate=ablate, latent_map=latent_map).y.clamp(0.0, 1.0)

    @torch.no_grad()
    def color_errors(
        self,
        x: torch.Tensor,
        *,
        ablate: Sequence[int] = (),
        latent_map: Callable[[torch.Tensor], torch.Tensor] | None = None,
        max_values: int = 1 << 21,
    ) -> torch.Tensor:
        """Per-colour MSE (S, N) of the eval-mode outputs on the shared colours ``x`` (N, 3).

        Evaluated a block of models at a time, about ``max_values`` (model, colour) pairs per block: a
        64k-model population on the 8000-colour cube would otherwise hold tens of GB of activations.
        No block is a lone model (S = 1 takes another BLAS path), so every row is bitwise what the
        whole population would give.
        """
        s, n = self.size, int(x.shape[0])
        block = max(2, max_values // max(1, n))
        out = torch.empty(s, n, dtype=torch.float32, device=x.device)
        start = 0
        while start < s:
            stop = min(s, start + block)
            if s - stop == 1:
                stop = s
            part = Population(
                self.flat[start:stop],
                k_bottleneck=self.k_bottleneck,
                hidden=self.hidden,
                n_nonlinear=self.n_nonlinear,
                kind=self.kind,
            )
            y = part.predict(x, ablate=ablate, latent_map=latent_map)  # (s', N, 3)
            out[start:stop] = ((y - x) ** 2).mean(-1)
            start = stop
        return out

    def backward(
        self,
        acts: Activations,
        dy: torch.Tensor,
        grad: torch.Tensor,
        *,
        dh: torch.Tensor | None = None,
        dz: torch.Tensor | None = None,
    ) -> None:
        """Write d(loss)/d(params) into ``grad`` (S, P), given d(loss)/dy and the extra
        gradients of regularizers on the unit latent (``dh``) and the pre-norm latent (``dz``)."""
        dws, dbs = self.views(grad)
        weights = self.views(self.flat)[0]
        n_enc = self.n_encoder
        # (S, B, out) gradient w.r.t. the current Linear's output; σ' = y(1 − y) for ColorMLP
        d = dy if self.normalized else dy * acts.y * (1.0 - acts.y)
        for j in reversed(range(2 * n_enc)):
            x = acts.inputs[j]
            if x.ndim == 2:
                x = x.expand(d.shape[0], -1, -1)
            dws[j].copy_(torch.bmm(d.transpose(1, 2), x))  # (S, out, in)
            dbs[j].copy_(d.sum(1))  # (S, out)
            if j == 0:
                break
            d_in = torch.bmm(d, weights[j])  # (S, B, in)
            if j == n_enc:  # decoder's first Linear reads the unit latent h
                if dh is not None:
                    d_in = d_in + dh
                if acts.norm is None:  # ColorMLP: h is z
                    d = d_in if dz is None else d_in + dz
                    continue
                # L2Norm backward: (dh − h⟨h, dh⟩)/‖z‖, with the 1e-12 guard.
                h = acts.h
                radial = (h * d_in).sum(-1, keepdim=True)
                norm = acts.norm
                d = torch.where(norm > 1e-12, (d_in - h * radial) / norm.clamp(min=1e-12), d_in / 1e-12)
                if dz is not None:
                    d = d + dz
            else:
                pre = acts.pre[j - 1 if j < n_enc else j - 2]
                d = _gelu_vjp(d_in, pre)

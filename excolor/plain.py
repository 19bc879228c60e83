"""A straightforward one-model training loop: nn.Module, autograd, torch.optim.Adam.

This is §4.4/§6.2 written the obvious way, as the original's Lightning module did it. It is not
the trainer users run (that is ``excolor.train``, whose S = 1 case is the single-model API);
it is the oracle the population trainer is tested against, and the baseline its speed is
measured against. It draws the same batches (same sampler) as the population trainer.
"""

from __future__ import annotations

import torch

from excolor.config import Experiment
from excolor.data import make_stream
from excolor.model import CNColorMLP, ColorMLP, build_model
from excolor.regularizers import reduction_weights

__all__ = ["train_plain"]


def train_plain(experiment: Experiment, seed: int, *, steps: int | None = None) -> CNColorMLP | ColorMLP:
    """Train one model for ``steps`` optimizer steps (default: the whole schedule)."""
    m = experiment.model
    model = build_model(seed, m.k_bottleneck, m.hidden, m.n_nonlinear, kind=m.kind).train()
    captured: dict[str, torch.Tensor] = {}
    hooks = [
        getattr(model, layer).register_forward_hook(lambda _m, _i, out, layer=layer: captured.__setitem__(layer, out))
        for layer in m.layers
    ]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-8)
    colors = experiment.data.training_set()
    ds = experiment.dopesheet
    sampler = make_stream(
        experiment.stream,
        [seed],
        n_colors=len(colors),
        batch_size=experiment.batch_size,
        val_every=max(1, ds.length // 10),
        model_shape=(m.k_bottleneck, m.hidden, m.n_nonlinear),
        weights=colors.weights,
    )
    length = ds.length if steps is None else min(steps, ds.length)
    try:
        for b in range(length):
            values = ds.values_at(min(b, ds.length - 2))
            x, labels = sampler.batch(colors, b)
            x, labels = x[0], {k: v[0] for k, v in labels.items()}  # (B, 3), {name: (B,)}
            y = model(x)
            loss = torch.nn.functional.mse_loss(y, x)
            for reg in experiment.regularizers:
                w = values.get(reg.name, 1.0)
                if not reg.trains or w == 0:
                    continue
                per_sample = reg.term(captured[reg.layer].unsqueeze(0))[0]  # (B,)
                coef = reduction_weights(
                    reg.label_affinities, {k: v.unsqueeze(0) for k, v in labels.items()}, torch.Size((1, len(x)))
                )
                if coef is None:
                    continue
                loss = loss + w * (coef[0] * per_sample).sum()
            optimizer.zero_grad()
            loss.backward()
            for group in optimizer.param_groups:
                group["lr"] = values.get("lr", 1e-8)
            optimizer.step()
    finally:
        for h in hooks:
            h.remove()
    return model.eval()

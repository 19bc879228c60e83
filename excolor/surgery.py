"""Delete latent directions from a trained model by editing its weights (science.md §7).

``ablate`` zeroes a direction and keeps every shape; ``prune`` removes it and shrinks the two Linear
layers around it. On ``CNColorMLP`` both give the same outputs, because the L2 norm at the bottleneck
renormalises whatever coordinates survive (§7.4). Both work on a deep copy: the input model is never
modified.
"""

from __future__ import annotations

import copy
import operator
from collections.abc import Iterable
from typing import TypeVar

import torch
from torch import nn

__all__ = ["ablate", "prune"]

M = TypeVar("M", bound=nn.Module)


def _normalise_dims(dims: Iterable[int], width: int) -> list[int]:
    """Sorted unique dims, each checked to lie in [0, width)."""
    out = sorted({operator.index(d) for d in dims})
    for d in out:
        if not 0 <= d < width:
            raise IndexError(f"dim {d} is out of range for a layer of width {width}")
    return out


def _locate(model: nn.Module, layer_id: str) -> tuple[str, nn.Linear, str, nn.Linear, int]:
    """The Linear that writes ``layer_id``'s width (producer), the one that reads it (consumer), and that width.

    Producer and consumer are the nearest Linears before and after ``layer_id`` in ``named_modules``
    order, and must agree on the width (§7.1). If one side is missing (e.g. ``layer_id`` is a
    container such as ``'encoder'``, listed before its children), fall back to the unique width that
    exactly one Linear writes and exactly one later Linear reads.
    """
    modules = list(model.named_modules())
    names = [name for name, _ in modules]
    if layer_id not in names:
        raise ValueError(f"model has no module named {layer_id!r}")
    pos = names.index(layer_id)
    linears = [(i, name, m) for i, (name, m) in enumerate(modules) if isinstance(m, nn.Linear)]
    before = [(name, m) for i, name, m in linears if i < pos]
    after = [(name, m) for i, name, m in linears if i > pos]
    if before and after:
        (p_name, producer), (c_name, consumer) = before[-1], after[0]
        if producer.out_features != consumer.in_features:
            raise ValueError(
                f"around {layer_id!r}: producer {p_name!r} writes {producer.out_features} features "
                f"but consumer {c_name!r} reads {consumer.in_features}"
            )
        return p_name, producer, c_name, consumer, producer.out_features

    # NOTE(surgery): the fallback also requires the producer to come before the consumer; without
    # that, every autoencoder has a second candidate (output width 3 == input width 3) and
    # ``'encoder'`` would always be ambiguous.
    candidates = []
    for width in sorted({m.out_features for _, _, m in linears}):
        writers = [(i, name, m) for i, name, m in linears if m.out_features == width]
        readers = [(i, name, m) for i, name, m in linears if m.in_features == width]
        if len(writers) == 1 and len(readers) == 1 and writers[0][0] < readers[0][0]:
            candidates.append((writers[0][1], writers[0][2], readers[0][1], readers[0][2], width))
    if len(candidates) != 1:
        found = [c[4] for c in candidates]
        raise ValueError(
            f"cannot locate the Linear layers around {layer_id!r}: "
            f"{'no' if not found else 'ambiguous'} candidate widths {found}"
        )
    return candidates[0]


def _replace(model: nn.Module, path: str, module: nn.Module) -> None:
    """Put ``module`` at dotted ``path`` inside ``model``."""
    parent_path, _, leaf = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, leaf, module)


def ablate(model: M, layer_id: str, dims: Iterable[int]) -> M:
    """A copy of ``model`` in which latent ``dims`` at ``layer_id`` are zeroed, shapes unchanged (§7.2).

    The producer's weight rows and bias entries for ``dims`` and the consumer's weight columns are
    set to 0 (the consumer's bias stays).

    Raises:
        IndexError: a dim outside [0, width).
        ValueError: ``layer_id`` missing, or its Linear neighbours cannot be found or disagree.

    >>> from excolor.model import CNColorMLP
    >>> float(ablate(CNColorMLP(5), 'bottleneck', [0]).decoder[0].weight[:, 0].detach().abs().sum())
    0.0
    """
    out = copy.deepcopy(model)
    _, producer, _, consumer, width = _locate(out, layer_id)
    idx = _normalise_dims(dims, width)
    if not idx:
        return out
    with torch.no_grad():
        producer.weight[idx, :] = 0.0
        if producer.bias is not None:
            producer.bias[idx] = 0.0
        consumer.weight[:, idx] = 0.0
    return out


def prune(model: M, layer_id: str, dims: Iterable[int]) -> M:
    """A copy of ``model`` in which latent ``dims`` at ``layer_id`` are removed (§7.3).

    The producer loses the output rows and the consumer the input columns of ``dims``; both are
    replaced by new, narrower Linear layers at the same module paths (other attributes of the model,
    such as ``k_bottleneck``, are left as they were).

    Raises:
        IndexError: a dim outside [0, width).
        ValueError: ``layer_id`` missing, neighbours not found, or no dimension left.

    >>> from excolor.model import CNColorMLP
    >>> tuple(prune(CNColorMLP(5), 'bottleneck', [0]).decoder[0].weight.shape)
    (16, 4)
    """
    out = copy.deepcopy(model)
    p_name, producer, c_name, consumer, width = _locate(out, layer_id)
    idx = _normalise_dims(dims, width)
    if not idx:
        return out
    keep = [d for d in range(width) if d not in set(idx)]
    if not keep:
        raise ValueError(f"pruning {len(idx)} of {width} dims at {layer_id!r} leaves nothing")
    factory = {"device": producer.weight.device, "dtype": producer.weight.dtype}
    new_producer = nn.Linear(producer.in_features, len(keep), bias=producer.bias is not None, **factory)
    new_consumer = nn.Linear(len(keep), consumer.out_features, bias=consumer.bias is not None, **factory)
    with torch.no_grad():
        new_producer.weight.copy_(producer.weight[keep, :])  # (K', in)
        if producer.bias is not None and new_producer.bias is not None:
            new_producer.bias.copy_(producer.bias[keep])  # (K',)
        new_consumer.weight.copy_(consumer.weight[:, keep])  # (out, K')
        if consumer.bias is not None and new_consumer.bias is not None:
            new_consumer.bias.copy_(consumer.bias)  # (out,)
    for new, old in ((new_producer, producer), (new_consumer, consumer)):
        new.train(old.training)
        for new_param, old_param in zip(new.parameters(), old.parameters(), strict=True):
            new_param.requires_grad_(old_param.requires_grad)
    _replace(out, p_name, new_producer)
    _replace(out, c_name, new_consumer)
    return out

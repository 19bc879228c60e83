"""The population trainer: S colour models trained at once, each with its own seed and schedule.

One optimizer step of the whole population (science.md §4.4, §6.2):

1. schedule -- batch b reads the dopesheet at step min(b, L − 2): lr and regularizer weights;
2. batch    -- each model's 64 colours and stochastic labels, a pure function of (seed, b);
3. forward  -- train mode (unclamped), recon = mean (y − x)²;
4. terms    -- every training regularizer with a non-zero weight, label-affine reduction;
5. backward -- hand-written, into one (S, P) gradient buffer;
6. guard    -- a model whose loss or gradient is non-finite is frozen and marked diverged;
7. Adam     -- PyTorch's update rule (betas 0.9/0.999, eps 1e-8), per-model lr.

Two engines run steps 2–7 (``engine``): ``torch`` does them as one batched tensor program over the
population (any device); ``kernel`` (``excolor.kernel``, CPU) runs each model's whole step, and a
whole validation interval of steps, in one compiled per-model loop. Both keep the same state and
checkpoints, and agree to float tolerance. ``auto`` picks the kernel on the CPU when it computes
every training term of the experiment.

Validation runs after every ``L // 10`` optimizer steps (after steps 150, …, 1500 for L = 1501).
The final ``val_*`` metrics are those of the last validation, as in the original; the score is
measured on the fully trained model.

Letters in shape comments: S models, B batch, P parameters per model, R regularizers.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from excolor._allocator import keep_large_blocks
from excolor.colors import rgb_grid
from excolor.config import Experiment
from excolor.data import make_stream
from excolor.dopesheet import Dopesheet
from excolor.evaluate import intervention_correlations, method_errors, population_cube_metrics, score_from_errors
from excolor.population import Population
from excolor.readers import load_tensors
from excolor.regularizers import reduction_weights

__all__ = ["COLLAPSE_RECON", "ENGINES", "PopulationTrainer", "TrainResult", "resolve_engine", "train"]

COLLAPSE_RECON = 0.01
"""A run whose final val_recon exceeds this counts as collapsed (§14.2)."""

_BETA1, _BETA2, _EPS = 0.9, 0.999, 1e-8
_CHECKPOINT_FORMAT = "excolor.population/1"

Report = Callable[[int, dict[str, np.ndarray]], None]

ENGINES = ("torch", "kernel", "auto")
"""Training engines: batched torch ops, the fused per-model CPU kernel, or the kernel where it applies."""


def resolve_engine(engine: str, experiment: Experiment, device: torch.device) -> tuple[str, str]:
    """(engine actually used, why if it is not the one asked for) for ``engine`` in ``ENGINES``.

    The kernel runs on the CPU and computes the terms ``excolor.kernel.KERNEL_TERMS``; anything
    else trains on the torch path (``kernel`` says so with a warning, ``auto`` silently).
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    if engine == "torch":
        return "torch", ""
    if device.type != "cpu":
        reason = f"the kernel engine runs on the CPU, not {device}"
    else:
        from excolor.kernel import unsupported

        missing = unsupported(experiment)
        reason = "the kernel does not compute " + ", ".join(missing) if missing else ""
    if not reason:
        return "kernel", ""
    if engine == "kernel":
        warnings.warn(f"{reason}; training on the torch engine", stacklevel=3)
    return "torch", reason


@dataclass
class TrainResult:
    """Per-model final metrics (one array of length S per key) and the trained population."""

    metrics: dict[str, np.ndarray]
    history: list[dict[str, np.ndarray]]
    population: Population

    def table(self) -> Any:
        """The metrics as a pandas DataFrame, one row per model."""
        import pandas as pd

        return pd.DataFrame(self.metrics)


def _schedule_table(
    experiment: Experiment, dopesheets: Sequence[Dopesheet]
) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """lr and regularizer weights per schedule step: (props, table (L − 1, U, 1 + R) float64 of the U
    distinct dopesheets, index (S,) of each model's sheet in it).

    A regularizer missing from a dopesheet has weight 1.0 and a missing lr is 1e-8 (§4.4, §6.2).
    Storing each distinct schedule once keeps a 64k-model population of one schedule small.
    """
    props = ["lr"] + [r.name for r in experiment.regularizers]
    length = dopesheets[0].length
    steps = np.arange(length - 1)  # batch b reads min(b, L - 2)
    slot: dict[int, int] = {}
    tables: list[np.ndarray] = []
    for ds in dopesheets:
        if id(ds) in slot:
            continue
        table = np.empty((len(steps), len(props)))
        for j, p in enumerate(props):
            table[:, j] = ds.table([p], steps)[:, 0] if p in ds.props else (1e-8 if p == "lr" else 1.0)
        slot[id(ds)] = len(tables)
        tables.append(table)
    index = torch.as_tensor([slot[id(ds)] for ds in dopesheets], dtype=torch.int64)
    return props, torch.as_tensor(np.stack(tables, axis=1)), index


class PopulationTrainer:
    """Trains S models of one experiment; model i depends only on (seed i, dopesheet i).

    Args:
        experiment: what is trained.
        seeds: one seed per model (init and batches).
        dopesheets: optional per-model schedules (same length); default the experiment's.
        device: torch device of the population.
        engine: ``torch``, ``kernel`` or ``auto`` (see the module docstring); ``self.engine`` is the
            one used, ``self.engine_note`` why it differs from the one asked for.
    """

    def __init__(
        self,
        experiment: Experiment,
        seeds: Sequence[int],
        *,
        dopesheets: Sequence[Dopesheet] | None = None,
        device: torch.device | str = "cpu",
        engine: str = "torch",
    ) -> None:
        seeds = [int(s) for s in seeds]
        if not seeds:
            raise ValueError("at least one seed is needed")
        sheets = list(dopesheets) if dopesheets is not None else [experiment.dopesheet] * len(seeds)
        if len(sheets) != len(seeds):
            raise ValueError(f"{len(sheets)} dopesheets for {len(seeds)} seeds")
        names = [r.name for r in experiment.regularizers]
        for ds in sheets:
            ds.check_properties(names)
        if len({ds.length for ds in sheets}) != 1:
            raise ValueError("all dopesheets of a population must have the same length")
        self.experiment, self.seeds, self.device = experiment, seeds, torch.device(device)
        # NOTE(excolor): a batched matmul over a single model takes a different BLAS path than over
        # two or more (measured: S = 1 differs from S = 2 after ~1e-7, which chaos amplifies, while
        # S = 2, 3, 64 and 1 or 2 threads agree bitwise). A lone model is therefore trained beside
        # a copy of itself, so that it equals the same model in any population, bitwise, all run.
        self.n_models = len(seeds)
        if self.n_models == 1:
            seeds, sheets = seeds * 2, sheets * 2
        if self.device.type == "cpu":
            keep_large_blocks()
        self.length = sheets[0].length
        self.val_every = max(1, self.length // 10)
        m = experiment.model
        self.population = Population.from_seeds(
            seeds, k_bottleneck=m.k_bottleneck, hidden=m.hidden, n_nonlinear=m.n_nonlinear, kind=m.kind
        )
        self.population.flat = self.population.flat.to(self.device)
        s, p = self.population.size, self.population.n_params
        self.grad = torch.zeros(s, p, device=self.device)
        self.exp_avg = torch.zeros(s, p, device=self.device)
        self.exp_avg_sq = torch.zeros(s, p, device=self.device)
        self.props, schedule, sheet_index = _schedule_table(experiment, sheets)
        self.schedule = schedule.to(self.device)  # (L - 1, U, 1 + R) float64, U distinct schedules
        self.sheet_index = sheet_index.to(self.device)  # (S,) each model's schedule
        # Known up front, so that no step waits on the device: which terms any model computes at each
        # step (a weight of exactly 0 skips a term, §12.3), and Adam's bias corrections.
        self.active = [tuple(bool(a) for a in row) for row in (schedule[:, :, 1:] != 0).any(dim=1).tolist()]
        k = range(1, self.length + 1)  # Adam's step counts; Python floats, as torch.optim.Adam computes them
        self.bias1 = torch.tensor([1.0 - _BETA1**i for i in k], dtype=torch.float64, device=self.device)
        self.bias2_sqrt = torch.tensor([math.sqrt(1.0 - _BETA2**i) for i in k], dtype=torch.float64, device=self.device)
        self.train_set = experiment.data.training_set().to(self.device)
        val_set = experiment.data.validation_set()
        self.val_set = val_set.to(self.device)
        # Where the concept colour is in the validation set (for red_angle_deg), if it is there.
        is_concept = (val_set.colors == torch.as_tensor(experiment.concept_color)).all(-1)
        self._concept_index = int(torch.nonzero(is_concept)[0]) if bool(is_concept.any()) else None
        self.batches = make_stream(
            experiment.stream,
            seeds,
            n_colors=len(self.train_set),
            batch_size=experiment.batch_size,
            val_every=self.val_every,
            model_shape=(m.k_bottleneck, m.hidden, m.n_nonlinear),
            weights=self.train_set.weights,
            device=self.device,
        )
        self.train_regs = [r for r in experiment.regularizers if r.trains]
        self.train_index = {r.name: i for i, r in enumerate(experiment.regularizers)}  # column in weights
        self.val_regs = [r for r in experiment.regularizers if r.validates]
        self.label_names = list(experiment.data.labels)  # labels/n/<name> for every label of the data
        # Mutable training state: everything a checkpoint holds.
        self.step = 0
        self.alive = torch.ones(s, dtype=torch.bool, device=self.device)
        self.diverged_step = torch.full((s,), -1, dtype=torch.int64, device=self.device)
        self.label_counts = {k: torch.zeros(s, dtype=torch.int64, device=self.device) for k in self.label_names}
        self.max_train_recon = torch.zeros(s, dtype=torch.float64, device=self.device)
        self.last_train: dict[str, torch.Tensor] = {}
        self.history: list[dict[str, torch.Tensor]] = []
        self.elapsed = 0.0
        self._update = self._update_eager
        self.engine, self.engine_note = resolve_engine(engine, experiment, self.device)
        self._kernel: Any = None
        if self.engine == "kernel":
            from excolor.kernel import KernelRunner

            self._kernel = KernelRunner(self)

    # ------------------------------------------------------------------------------ one step

    def train_step(self) -> None:
        """One optimizer step of every model (see the module docstring)."""
        if self._kernel is not None:
            self._kernel.steps(1)
            return
        b = self.step
        # 1. schedule: lr and regularizer weights of every model at this step
        row = min(b, self.length - 2)
        values = self.schedule[row][self.sheet_index]  # (S, 1 + R) float64
        lr, weights = values[:, 0], values[:, 1:].to(torch.float32)
        # 2. batch: a pure function of (seed, step)
        x, labels = self.batches.batch(self.train_set, b)  # (S, B, 3), {name: (S, B)}
        # Which terms any model computes this step; a weight of exactly 0 skips the term (§12.3).
        active = self.active[row]
        bias1, bias2_sqrt = self.bias1[b], self.bias2_sqrt[b]  # Adam's step count is b + 1
        # 3.–7. forward, terms, backward, divergence guard, Adam: one fused tensor program
        loss, recon, terms, ok, counted = self._update(active, x, labels, lr, weights, bias1, bias2_sqrt)
        # bookkeeping
        self.diverged_step = torch.where(self.alive & ~ok, b, self.diverged_step)
        self.alive &= ok
        for k_label in self.label_names:
            self.label_counts[k_label] += torch.where(counted, labels[k_label].sum(-1).to(torch.int64), 0)
        self.max_train_recon = torch.maximum(self.max_train_recon, torch.where(self.alive, recon.double(), 0.0))
        for reg, on, term in zip(self.train_regs, active, terms):
            if on:
                prev = self.last_train.get(f"train_{reg.name}", torch.full_like(term, math.nan))
                self.last_train[f"train_{reg.name}"] = torch.where(
                    weights[:, self.train_index[reg.name]] != 0, term, prev
                )
        self.last_train["train_recon"], self.last_train["train_loss"] = recon, loss
        self.step += 1

    def _update_eager(
        self,
        active: tuple[bool, ...],
        x: torch.Tensor,
        labels: dict[str, torch.Tensor],
        lr: torch.Tensor,
        weights: torch.Tensor,
        bias1: torch.Tensor,
        bias2_sqrt: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """Forward, loss terms, backward, divergence guard and Adam, in place on the buffers.

        Returns (loss, recon, per-term values, finite flags, label-counting flags), each (S,).
        """
        pop = self.population
        # 3. forward (train mode: unclamped)
        acts = pop.forward(x)
        err = acts.y - x  # (S, B, 3)
        recon = (err * err).mean(dim=(1, 2))  # (S,)
        loss = recon.clone()
        dy = err * (2.0 / err[0].numel())
        layer_act = {"bottleneck": acts.h, "encoder": acts.z}
        layer_grad: dict[str, torch.Tensor] = {}
        counted = torch.zeros_like(recon, dtype=torch.bool)
        terms: list[torch.Tensor] = []
        # 4. regularizer terms, label-affine reduction (§4.3)
        for reg, on_any in zip(self.train_regs, active):
            if not on_any:
                terms.append(recon)  # placeholder, never read
                continue
            w = weights[:, self.train_index[reg.name]]  # (S,), 0 for models that skip it
            per_sample, ctx = reg.term.forward(layer_act[reg.layer])  # (S, B)
            if reg.label_affinities is None:  # plain batch mean
                term = per_sample.mean(-1)  # (S,)
                g = (w / per_sample.shape[-1]).unsqueeze(-1).expand_as(per_sample)
            else:
                coef = reduction_weights(reg.label_affinities, labels, per_sample.shape, device=x.device)
                if coef is None:  # none of its labels in this batch: no term
                    terms.append(recon)
                    continue
                term = (coef * per_sample).sum(-1)
                g = coef * w.unsqueeze(-1)
                counted = counted | (w != 0)
            loss = loss + torch.where(w != 0, w * term, 0.0)  # 0 · (non-finite) must not poison
            g = reg.term.vjp(ctx, g)
            layer_grad[reg.layer] = layer_grad[reg.layer] + g if reg.layer in layer_grad else g
            terms.append(term)
        # 5. backward
        pop.backward(acts, dy, self.grad, dh=layer_grad.get("bottleneck"), dz=layer_grad.get("encoder"))
        # 6. divergence guard: a model whose loss or gradient is not finite is frozen
        ok = torch.isfinite(loss) & torch.isfinite(self.grad).all(dim=1)
        live = (self.alive & ok).unsqueeze(1)  # (S, 1)
        self.grad.copy_(torch.where(live, self.grad, 0.0))
        # 7. Adam, PyTorch's update rule with a per-model lr
        self.exp_avg.lerp_(self.grad, 1.0 - _BETA1)
        self.exp_avg_sq.mul_(_BETA2).addcmul_(self.grad, self.grad, value=1.0 - _BETA2)
        step_size = torch.where(live, (lr / bias1).to(torch.float32).unsqueeze(1), 0.0)  # (S, 1)
        denom = (self.exp_avg_sq.sqrt() / bias2_sqrt.to(torch.float32)).add_(_EPS)
        pop.flat.sub_(torch.div(self.exp_avg, denom).mul_(step_size))
        return loss, recon, terms, ok, counted

    # ------------------------------------------------------------------------------ validation

    @torch.no_grad()
    def validate(self) -> dict[str, torch.Tensor]:
        """Validation metrics per model (S,), batch-size-weighted over sequential batches (§4.4)."""
        pop, vs = self.population, self.val_set
        x = vs.colors  # (N, 3) shared by all models
        acts = pop.forward(x)
        y = acts.y.clamp(0.0, 1.0)
        recon = ((y - x) ** 2).mean(dim=(1, 2))  # (S,)
        out = {"val_loss": recon, "val_recon": recon}
        n, bs = len(vs), self.experiment.batch_size
        layer_act = {"bottleneck": acts.h, "encoder": acts.z}
        for reg in self.val_regs:
            total = torch.zeros_like(recon)
            for lo in range(0, n, bs):
                hi = min(lo + bs, n)
                labels = {k: v[lo:hi].expand(pop.size, -1) for k, v in vs.labels.items()}
                coef = reduction_weights(
                    reg.label_affinities, labels, torch.Size((pop.size, hi - lo)), device=self.device
                )
                if coef is None:
                    continue
                chunk = reg.term(layer_act[reg.layer][:, lo:hi])  # (S, b)
                total += (coef * chunk).sum(-1) * ((hi - lo) / n)
            out[f"val_{reg.name}"] = total
        idx = self._concept_index
        if idx is not None:
            h_concept = acts.h[:, idx]  # (S, K); unit already, unless the model has no normalisation
            if not pop.normalized:
                h_concept = h_concept / torch.linalg.vector_norm(h_concept, dim=-1, keepdim=True).clamp(min=1e-12)
            cos = h_concept[:, self.experiment.concept_dim].clamp(-1.0, 1.0)
            out["red_angle_deg"] = torch.rad2deg(torch.arccos(cos))
        return {k: torch.where(self.alive, v.double(), math.nan) for k, v in out.items()}

    @torch.no_grad()
    def ablation_scores(self) -> tuple[np.ndarray, np.ndarray]:
        """(score = r², r) per model: ablate the concept dims, correlate error with similarity (§9.8)."""
        rgb = rgb_grid(self.experiment.score_grid)
        x = torch.as_tensor(rgb, dtype=torch.float32, device=self.device)
        (mse,) = method_errors(self.population, x, [(list(self.experiment.concept_dims), None)], engine=self.engine)
        ev = self.experiment.evaluation
        return score_from_errors(mse, rgb=rgb, power=ev.score_power, anchor_hsv=ev.anchor_hsv)

    # ------------------------------------------------------------------------------ the run

    def run(
        self,
        until: int | None = None,
        *,
        report: Report | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Train up to optimizer step ``until`` (default: the end), validating on schedule.

        ``report(step, metrics)`` is called after each validation; ``progress(n)`` after each
        step (the kernel engine: each run of steps up to a validation) with the number of steps done.
        """
        end = self.length if until is None else min(until, self.length)
        start = time.perf_counter()
        with _flush_denormal():
            while self.step < end:
                if self._kernel is not None:  # every step up to the next validation in one call
                    n = min(end, (self.step // self.val_every + 1) * self.val_every) - self.step
                    self._kernel.steps(n)
                else:
                    n = 1
                    self.train_step()
                if self.step % self.val_every == 0:
                    metrics = self.validate()
                    self.history.append({"step": torch.tensor(self.step), **metrics})
                    if report is not None:
                        report(self.step, {k: v[: self.n_models].cpu().numpy() for k, v in metrics.items()})
                if progress is not None:
                    progress(n)
        self.elapsed += time.perf_counter() - start

    @property
    def done(self) -> bool:
        return self.step >= self.length

    def final_metrics(self, *, cube: bool = True) -> dict[str, np.ndarray]:
        """Per-model metrics of the finished run, in the original names plus §14.2's diagnostics.

        ``cube=False`` leaves out the loss cube's max and median errors (``cube_metric_names``): a
        quarter of a search's time for diagnostics no objective uses; ``population_cube_metrics``
        gives the same values later from the stored models (``analysis.models.cube_metrics``).
        """
        s = self.n_models
        alive = self.alive[:s].cpu().numpy()
        score, r = (v[:s] for v in self.ablation_scores())
        nan = np.full(s, math.nan)
        out: dict[str, np.ndarray] = {"seed": np.asarray(self.seeds)}
        out["score"] = np.where(alive, score, math.nan)
        out["ablated_r"] = np.where(alive, r, math.nan)
        ev = self.experiment.evaluation
        if ev.interventions:
            extra = intervention_correlations(
                self.population,
                ev.interventions,
                concept_dim=ev.concept_dim,
                anchor_hsv=ev.anchor_hsv,
                engine=self.engine,
            )
            for key, values in extra.items():
                out[key] = np.where(alive, values[:s], math.nan)
        if cube:
            errors = population_cube_metrics(
                self.population,
                concept_dims=ev.concept_dims,
                concept_dim=ev.concept_dim,
                interventions=ev.interventions,
                engine=self.engine,
            )
            for key, values in errors.items():  # max/median per-colour MSE on the HSV loss cube (§10.4)
                out[key] = np.where(alive, values[:s], math.nan)
        last = self.history[-1] if self.history else {}
        for key in ["val_recon", "val_loss"] + [f"val_{reg.name}" for reg in self.val_regs] + ["red_angle_deg"]:
            out[key] = last[key][:s].cpu().numpy() if key in last else nan
        for k, v in self.label_counts.items():
            out[f"labels/n/{k}"] = v[:s].cpu().numpy()
        out["labels/n_total"] = np.full(s, self.step * self.experiment.batch_size)
        out["max_train_recon"] = self.max_train_recon[:s].cpu().numpy()
        out["collapsed"] = alive & (out["val_recon"] > COLLAPSE_RECON)
        out["diverged"] = ~alive
        out["diverged_step"] = self.diverged_step[:s].cpu().numpy()
        out["runtime_s"] = np.full(s, self.elapsed)
        return out

    # ------------------------------------------------------------------------------ checkpoints

    def result(self) -> TrainResult:
        """Final metrics, validation history and the trained population (real models only)."""
        n = self.n_models
        history = [{k: (v if k == "step" else v[:n]).cpu().numpy() for k, v in h.items()} for h in self.history]
        pop = self.population
        trained = Population(
            pop.flat[:n].clone(),
            k_bottleneck=pop.k_bottleneck,
            hidden=pop.hidden,
            n_nonlinear=pop.n_nonlinear,
            kind=pop.kind,
        )
        return TrainResult(self.final_metrics(), history, trained)

    def state_dict(self) -> dict[str, Any]:
        """Complete training state: parameters, Adam moments, step and run statistics.

        The hash stream is a function of (seed, step), so no RNG state is needed (§14.1).
        """
        return {
            "format": _CHECKPOINT_FORMAT,
            "seeds": list(self.seeds),
            "models": self.population.size,  # a lone model is stored with its twin
            "step": self.step,
            "params": self.population.flat.cpu().clone(),
            "exp_avg": self.exp_avg.cpu().clone(),
            "exp_avg_sq": self.exp_avg_sq.cpu().clone(),
            "alive": self.alive.cpu().clone(),
            "diverged_step": self.diverged_step.cpu().clone(),
            "label_counts": {k: v.cpu().clone() for k, v in self.label_counts.items()},
            "max_train_recon": self.max_train_recon.cpu().clone(),
            "last_train": {k: v.cpu().clone() for k, v in self.last_train.items()},
            "history": [{k: v.cpu().clone() for k, v in h.items()} for h in self.history],
            "elapsed": self.elapsed,
            "stream": self.experiment.stream,
            "stream_state": self.batches.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a ``state_dict``; the trainer must have been built with the same seeds."""
        if state.get("format") != _CHECKPOINT_FORMAT:
            raise ValueError(f"not an excolor population checkpoint (format {state.get('format')!r})")
        if list(state["seeds"]) != self.seeds:
            raise ValueError("checkpoint seeds differ from this trainer's seeds")
        if state.get("stream") != self.experiment.stream:
            raise ValueError(
                f"checkpoint was made with the {state.get('stream')!r} stream, not {self.experiment.stream!r}"
            )
        if tuple(state["params"].shape) != tuple(self.population.flat.shape):
            raise ValueError("checkpoint parameters do not match this experiment's model shape")
        dev = self.device
        self.population.flat.copy_(state["params"].to(dev))
        self.exp_avg.copy_(state["exp_avg"].to(dev))
        self.exp_avg_sq.copy_(state["exp_avg_sq"].to(dev))
        self.step = int(state["step"])
        self.alive = state["alive"].to(dev).clone()
        self.diverged_step = state["diverged_step"].to(dev).clone()
        self.label_counts = {k: v.to(dev).clone() for k, v in state["label_counts"].items()}
        self.max_train_recon = state["max_train_recon"].to(dev).clone()
        self.last_train = {k: v.to(dev).clone() for k, v in state["last_train"].items()}
        self.history = [{k: v.to(dev).clone() for k, v in h.items()} for h in state["history"]]
        self.elapsed = float(state["elapsed"])
        self.batches.load_state_dict(state["stream_state"])

    def save(self, path: str) -> None:
        torch.save(self.state_dict(), path)

    def load(self, path: str) -> None:
        self.load_state_dict(load_tensors(path))


class _flush_denormal:
    """Flush denormals while training: (…)^100 of tiny values is otherwise very slow (exact enough)."""

    def __enter__(self) -> None:
        self._ok = torch.set_flush_denormal(True)

    def __exit__(self, *exc: object) -> None:
        if self._ok:
            torch.set_flush_denormal(False)


def train(
    experiment: Experiment,
    seeds: Sequence[int] | int,
    *,
    dopesheets: Sequence[Dopesheet] | None = None,
    device: torch.device | str = "cpu",
    report: Report | None = None,
    progress: Callable[[int], None] | None = None,
    engine: str = "torch",
) -> TrainResult:
    """Train one model per seed (a single int is the S = 1 case) and return final metrics."""
    seed_list = [seeds] if isinstance(seeds, int) else list(seeds)
    trainer = PopulationTrainer(experiment, seed_list, dopesheets=dopesheets, device=device, engine=engine)
    trainer.run(report=report, progress=progress)
    return trainer.result()

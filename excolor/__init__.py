"""excolor: concept-isolating colour autoencoders, trained as populations (Ex 2.9.1 and kin).

The package is the science: torch and numpy only, nothing of Ray, Optuna or W&B.

- ``dopesheet``     keyframed schedules (CSV), strict validation, minimum-jerk timelines
- ``colors``        RGB/HSV, colour attributes, HSV similarity, grids, named colours
- ``data``          training/validation colour sets, label rules, stateless per-model batch sampling
- ``model``         the clamped-and-normalised MLP, and the legacy ColorMLP
- ``population``    S models stacked in one flat buffer, hand-written forward/backward
- ``regularizers``  the seven loss terms with label and layer affinities
- ``config``        the typed experiment description (``Experiment``, ``ModelConfig``, ``Evaluation``)
- ``experiments``   experiment files (YAML) and the shipped presets (Ex 2.9.1, 2.10.1, 2.8, 2.4, 2.1), ``ex_2_9_1()``
- ``devices``       --device resolution (cpu, cuda, auto) and the FLOP count of one training
- ``train``         the population trainer (the single-model API is its S = 1 case)
- ``kernel``        its fused per-model CPU engine (Numba; imported only when ``engine`` asks for it)
- ``kernel_forward`` that engine's scoring: every model's errors on shared colours, compiled per model
- ``surgery``       ablate / prune a latent dimension
- ``interventions`` suppression, repulsion, falloffs and mappers
- ``methods``       the registry of methods as data: surgery, interventions, their metric names
- ``evaluate``      ablation score, named-colour tables, error-vs-similarity correlations, loss-cube errors
- ``plain``         a plain autograd loop: test oracle and speed baseline
- ``limits``        every bound on user input in one place: file sizes, depth, digits, sizes, memory
- ``readers``       bounded reading: ``read_text``, ``load_json_file`` (study records), ``load_json_lines``
- ``seeds``         seed lists (``0-59``, ``0,4,8``) with one rule for ``--seeds`` and experiment files
"""

from excolor.config import Experiment, ModelConfig
from excolor.dopesheet import Dopesheet, DopesheetError, reference_dopesheet
from excolor.experiments import ExperimentError, ex_2_9_1, load_experiment, preset
from excolor.model import CNColorMLP, ColorMLP, build_model
from excolor.population import Population
from excolor.train import PopulationTrainer, TrainResult, train

__all__ = [
    "CNColorMLP",
    "ColorMLP",
    "Dopesheet",
    "DopesheetError",
    "Experiment",
    "ExperimentError",
    "ModelConfig",
    "Population",
    "PopulationTrainer",
    "TrainResult",
    "build_model",
    "ex_2_9_1",
    "load_experiment",
    "preset",
    "reference_dopesheet",
    "train",
]

__version__ = "0.1.0"

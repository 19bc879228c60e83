"""Running excolor: the ``excolor`` CLI, ``excolor train``, and studies on Ray Tune + Optuna.

The top layer (``excolor <- analysis <- tune``); study records are written through ``analysis.record``.

- ``cli``              argparse only; ``commands`` holds each subcommand's body
- ``arguments``        flag values checked at the edge; the experiment resolved once, with its overrides
- ``run_train``        ``excolor train``: populations of seeds, no Ray
- ``spec``             ``StudySpec``: what defines a study, saved as study.json, checked on reruns
- ``runner``           a study's Tune run (cohort searches, sweeps, older searches)
- ``session``          the command's Ray: environment, start or connect, clean stop
- ``cohort_searcher``  the Tune ``Searcher`` that asks Optuna for cohorts and reconciles with the journal
- ``searcher``         Optuna samplers, journal storage, the older one-configuration-per-trial searcher
- ``cohort``           the cohort trainable: C configurations x S seeds as one population
- ``trainable``        the one-configuration trainable (sweeps); a trial's experiment
- ``callbacks``        progress lines and W&B
- ``space``            search spaces over dopesheets
- ``validate``         ``excolor validate``: held-out seeds through Ray
- ``local_cluster``    ``excolor cluster up/down``

Ray and Optuna are imported lazily by the subcommands that need them, so ``excolor --help`` answers
at once and ``excolor train`` starts in the time torch takes to import.
"""

__all__: list[str] = []

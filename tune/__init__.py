"""Studies of excolor experiments: Ray Tune trainables, search spaces, and the ``excolor`` CLI.

Ray and Optuna are imported lazily by the subcommands that need them, so ``excolor train``
starts in the time torch takes to import.
"""

__all__: list[str] = []

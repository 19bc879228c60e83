"""Results of excolor studies: tables, Pareto fronts, plots and reports (no running Ray needed)."""

__all__: list[str] = []

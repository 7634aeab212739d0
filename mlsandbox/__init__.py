"""mlsandbox: MLflow-tracked data-model co-development (Probe-Analyze-Refine, Optuna search)."""

__version__ = "0.1.0"

"""Where the work runs: the project's dataset and stats, and cells (pool x seed x model) trained and scored as MLflow runs."""

"""Optuna recipe search: a study whose trials are recipes, trained, scored and logged to MLflow."""

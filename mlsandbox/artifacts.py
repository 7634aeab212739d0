"""Where each step writes its artifacts in an MLflow run: one set of names for writers and readers.

The probe, analyze and refine steps write under these paths; the report and the search's warm
start read them back. A path changes here, or nowhere.
"""

from __future__ import annotations

#: The exported best recipe of a workflow run (our YAML; the search warm-starts from it).
BEST_RECIPE = "refine/best_recipe.yaml"

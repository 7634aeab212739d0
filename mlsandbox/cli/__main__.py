"""``python -m mlsandbox.cli`` (the MLproject entry points)."""

from mlsandbox.cli import program

program()

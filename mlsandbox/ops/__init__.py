"""Operators (OPs): per-sample statistics with Data-Juicer's names and stat keys."""

from mlsandbox.ops.base import Op, OpParams, create_op, list_ops, op_class, register
from mlsandbox.ops.batch import ImageBatch, TextBatch

__all__ = ["ImageBatch", "Op", "OpParams", "TextBatch", "create_op", "list_ops", "op_class", "register"]

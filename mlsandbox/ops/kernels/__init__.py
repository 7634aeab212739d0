"""Vectorised text kernels (words, special characters, n-grams) that batches and OPs build on.

They take NumPy arrays and plain lists, never a batch, so that :mod:`mlsandbox.ops.batch` can sit
on top of them.
"""

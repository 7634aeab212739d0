"""Operators (OPs): per-sample statistics with Data-Juicer's names and stat keys.

Importing this package registers every built-in OP.
"""

from mlsandbox.ops import image as _image  # noqa: F401  (registers the image OPs)
from mlsandbox.ops import text as _text  # noqa: F401  (registers the text OPs)
from mlsandbox.ops import video as _video  # noqa: F401  (registers the video OPs)
from mlsandbox.ops.base import Op, OpParams
from mlsandbox.ops.batch import ImageBatch, TextBatch
from mlsandbox.ops.data_juicer import UNBOUNDED, DataJuicerArg, DataJuicerFilter, DataJuicerWords, StatArgs
from mlsandbox.ops.registry import create_op, list_ops, op_class, register, registered
from mlsandbox.ops.video import VideoBatch, frame_samplings

__all__ = [
    "UNBOUNDED", "DataJuicerArg", "DataJuicerFilter", "DataJuicerWords", "ImageBatch", "Op", "OpParams", "StatArgs", "TextBatch", "VideoBatch", "create_op",
    "frame_samplings", "list_ops", "op_class", "register", "registered",
]

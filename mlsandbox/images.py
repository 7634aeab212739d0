"""Encoded images: check, decode to RGB, name the format. The one place that opens image bytes.

Datasets check every image when they load; OPs and trainers decode pixels through
:func:`decode_rgb`, so the same image gives the same pixels everywhere.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from mlsandbox.errors import DataError

if TYPE_CHECKING:
    from PIL import Image


def check_image(data: bytes) -> None:
    """Raise :class:`DataError` unless ``data`` is a complete, readable image.

    Pillow's ``verify`` checks a PNG's chunks and checksums but reads little of other formats' data
    (a JPEG cut in half passes it), so any other format is decoded whole as well.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
            verified_whole = image.format == "PNG"
        if not verified_whole:
            with Image.open(io.BytesIO(data)) as image:
                image.load()
    except UnidentifiedImageError:
        raise DataError("not an image (no format Pillow reads)") from None
    except Image.DecompressionBombError:
        raise DataError("image has too many pixels to decode safely (Pillow's decompression-bomb limit)") from None
    except (OSError, ValueError, SyntaxError) as err:
        raise DataError(f"unreadable or truncated image: {err}") from None


def decode_rgb(data: bytes) -> Image.Image:
    """An encoded image as RGB pixels: EXIF orientation applied, transparency composited on white.

    Raises :class:`DataError` for data Pillow cannot read or decode (truncated, corrupt).
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as opened:
            image = ImageOps.exif_transpose(opened)
            if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
                rgba = image.convert("RGBA")
                canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                canvas.alpha_composite(rgba)
                image = canvas
            return image.convert("RGB")
    except UnidentifiedImageError:
        raise DataError("not an image (no format Pillow reads)") from None
    except Image.DecompressionBombError:
        raise DataError("image has too many pixels to decode safely (Pillow's decompression-bomb limit)") from None
    except (OSError, ValueError, SyntaxError) as err:  # Pillow reports corrupt data as any of these
        raise DataError(f"cannot decode the image (truncated or corrupt): {err}") from None


def image_suffix(data: bytes) -> str:
    """The file suffix of an encoded image's format, e.g. ``.png``."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return f".{(image.format or 'bin').lower()}"

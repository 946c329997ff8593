"""Re-encoding a photo with Pillow: the stored copy is rebuilt from pixels only, so EXIF (GPS,
camera serials, timestamps), XMP, comments and anything smuggled after the image data are gone.
The orientation EXIF carried is applied to the pixels first, so the photo still stands upright."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

# The sniffed type -> Pillow's format name, and how the clean copy is written.
_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP", "image/heic": "HEIF"}
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/heic": "jpg"}


class UnreadableImage(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class CleanPhoto:
    data: bytes
    content_type: str
    thumbnail: bytes
    width: int
    height: int


def clean(data: bytes, sniffed: str, *, max_pixels: int, thumb_px: int) -> CleanPhoto:
    """The photo without metadata and its JPEG thumbnail. CPU-bound: run it in a thread."""
    if sniffed == "image/heic":  # pragma: no cover (only with pillow-heif installed)
        from pillow_heif import register_heif_opener  # type: ignore[import-not-found]

        register_heif_opener()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[_FORMATS[sniffed]]) as opened:
                width, height = opened.size
                if width * height > max_pixels:
                    raise UnreadableImage(f"{width}x{height} pixels is more than {max_pixels}")
                opened.load()
                image = ImageOps.exif_transpose(opened)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError, Warning) as exc:
        if isinstance(exc, UnreadableImage):
            raise
        raise UnreadableImage(str(exc) or type(exc).__name__) from exc
    if image.mode not in ("RGB", "RGBA", "L"):
        image = image.convert("RGBA")
    # A fresh image from the pixels alone: nothing of the original's `info` can ride along.
    pixels = Image.new(image.mode, image.size)
    pixels.paste(image)
    out_type = "image/jpeg" if sniffed == "image/heic" else sniffed
    out = io.BytesIO()
    if out_type == "image/jpeg":
        pixels.convert("RGB").save(out, "JPEG", quality=88, optimize=True)
    elif out_type == "image/png":
        pixels.save(out, "PNG", optimize=True)
    else:
        pixels.save(out, "WEBP", quality=85)
    thumb = pixels.convert("RGB")
    thumb.thumbnail((thumb_px, thumb_px))
    thumb_out = io.BytesIO()
    thumb.save(thumb_out, "JPEG", quality=80)
    return CleanPhoto(
        data=out.getvalue(),
        content_type=out_type,
        thumbnail=thumb_out.getvalue(),
        width=pixels.width,
        height=pixels.height,
    )

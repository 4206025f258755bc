"""Checking and cleaning a customer's photo before anything is stored.

    prepared = prepare_image(raw_bytes, get_settings().service.media)
    prepared.data, prepared.thumbnail      # re-encoded: no EXIF, upright

Only JPEG, PNG and WebP are accepted, recognised by their content (Pillow), never by a file
name. Re-encoding the pixels drops every metadata block — EXIF can hold the customer's GPS
position and phone model — after turning the picture upright as its EXIF orientation said.
A refusal names its reason (`ImageRefused.reason`), which the channels turn into a polite line
(catalog `system_messages` `photo_<reason>`).
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from typing import Tuple

from PIL import Image, UnidentifiedImageError

from bot.core.settings import MediaConfig

ACCEPTED_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
# Pillow names a JPEG with a multi-picture extension (many phone cameras add a preview or a
# depth map) MPO; its first picture is the photo, the others are not frames of an animation.
FORMAT_ALIASES = {"MPO": "JPEG"}
THUMBNAIL_TYPE = "image/jpeg"
# EXIF orientation → the transpose that turns the picture upright (as ImageOps.exif_transpose).
ORIENTATION_FIX = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class ImageRefused(ValueError):
    """The bytes are not a photo we keep: `reason` is not_image, too_large, too_small,
    animated or broken."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class PreparedImage:
    """A photo ready to store: the cleaned file, its thumbnail and what staff see of it."""

    data: bytes
    content_type: str
    width: int
    height: int
    thumbnail: bytes
    sha256: str  # of the cleaned file

    @property
    def extension(self) -> str:
        return {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}[self.content_type]


def _open(raw: bytes, limits: MediaConfig) -> Tuple[Image.Image, str]:
    """The decoded image and its accepted format name (JPEG, PNG or WEBP)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(raw))
            image.verify()  # structure and checksums, without decoding the pixels
    except UnidentifiedImageError:
        raise ImageRefused("not_image") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise ImageRefused("too_large") from None  # more pixels than Pillow itself will decode
    except (OSError, SyntaxError, ValueError):
        raise ImageRefused("broken") from None
    fmt = FORMAT_ALIASES.get(str(image.format), str(image.format))
    if fmt not in ACCEPTED_FORMATS:
        raise ImageRefused("not_image")
    if image.width * image.height > limits.max_pixels:
        raise ImageRefused("too_large")
    if min(image.width, image.height) < limits.min_side_px:
        raise ImageRefused("too_small")
    if fmt == image.format and getattr(image, "is_animated", False):
        raise ImageRefused("animated")
    image = Image.open(io.BytesIO(raw))  # verify() leaves the image unusable
    try:
        image.load()  # a truncated file fails here (an MPO: its first picture)
    except (OSError, SyntaxError, ValueError):
        raise ImageRefused("broken") from None
    return image, fmt


def _upright(image: Image.Image) -> Image.Image:
    """The picture turned as its EXIF orientation says.

    Not ImageOps.exif_transpose: that writes the EXIF block back, which raises on the corrupt
    EXIF some phones and editors produce; only the orientation is needed, and a broken EXIF
    block is simply ignored (it is dropped anyway)."""
    try:
        orientation = image.getexif().get(0x0112)
    except Exception:  # any corrupt EXIF: no orientation
        orientation = None
    method = ORIENTATION_FIX.get(orientation) if isinstance(orientation, int) else None
    return image.transpose(method) if method is not None else image


def _encode(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        image.convert("RGB").save(out, "JPEG", quality=88, optimize=True)
    elif fmt == "PNG":
        image.save(out, "PNG", optimize=True)
    else:
        image.save(out, "WEBP", quality=88)
    return out.getvalue()


def prepare_image(raw: bytes, limits: MediaConfig) -> PreparedImage:
    """Check `raw` and re-encode it without metadata; raises `ImageRefused`."""
    if len(raw) > limits.max_bytes:
        raise ImageRefused("too_large")
    if not raw:
        raise ImageRefused("not_image")
    image, fmt = _open(raw, limits)
    upright = _upright(image)
    if upright.mode not in ("RGB", "RGBA", "L", "LA"):
        upright = upright.convert("RGBA" if "transparency" in upright.info else "RGB")
    clean = Image.new(upright.mode, upright.size)  # pixels only: no EXIF, ICC or text chunks
    clean.paste(upright)
    data = _encode(clean, fmt)
    thumb = clean.convert("RGB")
    thumb.thumbnail((limits.thumbnail_px, limits.thumbnail_px))
    thumbnail = _encode(thumb, "JPEG")
    return PreparedImage(
        data=data,
        content_type=ACCEPTED_FORMATS[fmt],
        width=clean.width,
        height=clean.height,
        thumbnail=thumbnail,
        sha256=hashlib.sha256(data).hexdigest(),
    )

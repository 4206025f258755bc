"""Checking and cleaning customers' photos (bot/core/media/images.py).

Every image is built here with Pillow (no binary fixtures): each bad input must be refused
with its reason, and a good one must come out re-encoded, upright and without any metadata.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from typing import Any

import pytest
from PIL import Image, PngImagePlugin

from bot.core.media.images import ImageRefused, PreparedImage, prepare_image
from bot.core.settings import MediaConfig

LIMITS = MediaConfig()  # the defaults: 10 MB, 32 px minimum side, 40 MP, 320 px thumbnails

MAKER = "SecretPhoneMaker"
MODEL = "Model-X-9000"

RED = (220, 20, 20)
BLUE = (20, 20, 220)


def encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def halves(size: tuple = (80, 40), mode: str = "RGB") -> Image.Image:
    """Left half red, right half blue: shows which way a picture was turned."""
    width, height = size
    image = Image.new(mode, size, BLUE if mode == "RGB" else BLUE + (255,))
    image.paste(RED if mode == "RGB" else RED + (255,), (0, 0, width // 2, height))
    return image


def noise(size: tuple = (256, 256)) -> Image.Image:
    """A picture that does not compress to nothing (so cutting it loses real data)."""
    return Image.effect_noise(size, 64).convert("RGB")


def camera_exif(orientation: int = 1) -> Image.Exif:
    """What a phone writes: maker, model, orientation and the GPS position."""
    exif = Image.Exif()
    exif[0x010F] = MAKER  # Make
    exif[0x0110] = MODEL  # Model
    exif[0x0131] = "PhotoEditor 1.0"  # Software
    exif[0x0112] = orientation  # Orientation
    exif[0x8825] = {  # GPSInfo IFD: 23°15'10.5"N 116°29'56"E (潮南区峡山街道)
        1: "N",
        2: (23.0, 15.0, 10.5),
        3: "E",
        4: (116.0, 29.0, 56.0),
    }
    return exif


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares `width` x `height` pixels but is a few dozen bytes long."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def refused(raw: bytes, limits: MediaConfig = LIMITS) -> str:
    with pytest.raises(ImageRefused) as caught:
        prepare_image(raw, limits)
    assert str(caught.value) == caught.value.reason
    return caught.value.reason


def reopened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


# ---------------------------------------------------------------- refused, with the reason


def test_a_pdf_named_jpg_is_not_an_image() -> None:
    pdf = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n" + b"x" * 2000 + b"\n%%EOF\n"
    assert refused(pdf) == "not_image"


def test_empty_bytes_are_not_an_image() -> None:
    assert refused(b"") == "not_image"


def test_random_bytes_are_not_an_image() -> None:
    assert refused(bytes(range(256)) * 8) == "not_image"


def test_a_40_mb_file_is_too_large_before_it_is_opened() -> None:
    # A JPEG's first bytes followed by padding: refused on its size alone, never decoded.
    raw = b"\xff\xd8\xff\xe0" + bytes(40 * 1024 * 1024)
    assert refused(raw) == "too_large"


def test_the_byte_limit_is_max_bytes_inclusive() -> None:
    raw = encode(noise((64, 64)), "PNG")
    assert refused(raw, MediaConfig(max_bytes=len(raw) - 1)) == "too_large"
    assert prepare_image(raw, MediaConfig(max_bytes=len(raw))).content_type == "image/png"


def test_a_one_pixel_png_is_too_small() -> None:
    assert refused(encode(Image.new("RGB", (1, 1), RED), "PNG")) == "too_small"


def test_the_shorter_side_decides_too_small() -> None:
    assert refused(encode(Image.new("RGB", (400, 31), RED), "JPEG")) == "too_small"
    assert refused(encode(Image.new("RGB", (31, 400), RED), "JPEG")) == "too_small"
    assert prepare_image(encode(Image.new("RGB", (32, 400), RED), "JPEG"), LIMITS).width == 32


def test_gifs_are_not_accepted_even_animated() -> None:
    frames = [Image.new("RGB", (64, 64), colour) for colour in (RED, BLUE)]
    animated = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert refused(animated) == "not_image"
    assert refused(encode(frames[0], "GIF")) == "not_image"


def test_an_animated_webp_is_refused_as_animated() -> None:
    frames = [Image.new("RGB", (64, 64), colour) for colour in (RED, BLUE)]
    raw = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(io.BytesIO(raw)).is_animated
    assert refused(raw) == "animated"


def test_an_animated_png_is_refused_as_animated() -> None:
    frames = [Image.new("RGB", (64, 64), colour) for colour in (RED, BLUE)]
    raw = encode(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=100)
    assert refused(raw) == "animated"


@pytest.mark.parametrize("fmt", ["BMP", "TIFF", "ICO"])
def test_other_image_formats_are_not_accepted(fmt: str) -> None:
    assert refused(encode(Image.new("RGB", (64, 64), RED), fmt)) == "not_image"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_a_truncated_file_is_broken(fmt: str) -> None:
    raw = encode(noise(), fmt)
    assert prepare_image(raw, LIMITS).width == 256  # whole, it is fine
    assert refused(raw[: len(raw) // 2]) == "broken"


def test_a_jpeg_cut_just_before_its_end_marker_is_broken() -> None:
    raw = encode(noise(), "JPEG")
    assert refused(raw[:-200]) == "broken"


@pytest.mark.parametrize("side", [7_000, 10_000, 20_000, 60_000])
def test_a_decompression_bomb_is_too_large_without_being_decoded(side: int) -> None:
    # 49 MP is over max_pixels (40 MP); 100 MP and more are also over Pillow's own bomb limit.
    raw = png_header_only(side, side)
    assert len(raw) < 100
    assert refused(raw) == "too_large"


def test_max_pixels_is_configurable() -> None:
    raw = encode(Image.new("RGB", (100, 100), RED), "PNG")
    assert refused(raw, MediaConfig(max_pixels=9_999)) == "too_large"
    assert prepare_image(raw, MediaConfig(max_pixels=10_000)).width == 100


def test_refusal_is_a_value_error_naming_its_reason() -> None:
    error = ImageRefused("broken")
    assert isinstance(error, ValueError)
    assert error.reason == "broken"


# ---------------------------------------------------------------- accepted and cleaned


def test_a_camera_jpeg_loses_every_exif_field() -> None:
    raw = encode(halves((96, 64)), "JPEG", exif=camera_exif())
    assert MAKER.encode() in raw and b"Exif" in raw  # the test's input really has them
    source = Image.open(io.BytesIO(raw)).getexif()
    assert source[0x010F] == MAKER and source.get_ifd(0x8825)[1] == "N"

    prepared = prepare_image(raw, LIMITS)

    cleaned = reopened(prepared.data)
    assert cleaned.format == "JPEG"
    assert dict(cleaned.getexif()) == {}
    assert "exif" not in cleaned.info
    for secret in (b"Exif", MAKER.encode(), MODEL.encode(), b"PhotoEditor"):
        assert secret not in prepared.data
        assert secret not in prepared.thumbnail
    assert dict(reopened(prepared.thumbnail).getexif()) == {}


def test_icc_profiles_and_xmp_are_dropped_too() -> None:
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description Owner="Zhang San"/></x:xmpmeta>'
    icc = b"\x00" * 128 + b"fake-icc-profile-of-the-phone"
    raw = encode(halves(), "JPEG", icc_profile=icc, xmp=xmp)
    assert b"Zhang San" in raw and b"fake-icc-profile" in raw

    prepared = prepare_image(raw, LIMITS)

    assert b"Zhang San" not in prepared.data
    assert b"fake-icc-profile" not in prepared.data
    assert "icc_profile" not in reopened(prepared.data).info


def test_orientation_6_is_applied() -> None:
    # Stored 80 x 40, left half red; orientation 6 says "turn 90° clockwise to view".
    raw = encode(halves((80, 40)), "JPEG", exif=camera_exif(orientation=6), quality=95)
    assert Image.open(io.BytesIO(raw)).size == (80, 40)

    prepared = prepare_image(raw, LIMITS)

    assert (prepared.width, prepared.height) == (40, 80)
    upright = reopened(prepared.data).convert("RGB")
    assert upright.size == (40, 80)
    top, bottom = upright.getpixel((20, 10)), upright.getpixel((20, 70))
    assert top[0] > 150 and top[2] < 100  # the red half is on top now
    assert bottom[2] > 150 and bottom[0] < 100
    assert 0x0112 not in reopened(prepared.data).getexif()  # not turned a second time


@pytest.mark.parametrize(
    "orientation, size, red_at",
    [
        (1, (80, 40), (10, 20)),  # as stored: red on the left
        (3, (80, 40), (70, 20)),  # turned 180°: red on the right
        (8, (40, 80), (20, 70)),  # turned 90° anticlockwise: red at the bottom
    ],
)
def test_other_orientations(orientation: int, size: tuple, red_at: tuple) -> None:
    raw = encode(halves((80, 40)), "JPEG", exif=camera_exif(orientation), quality=95)
    prepared = prepare_image(raw, LIMITS)
    image = reopened(prepared.data).convert("RGB")
    assert image.size == size
    red, _, blue = image.getpixel(red_at)
    assert red > 150 and blue < 100


def test_a_corrupt_exif_block_does_not_break_the_photo() -> None:
    # Make (an ASCII tag) declared as a RATIONAL: Pillow reads it, but cannot write it back.
    entries = [(0x010F, 5, 1, 38), (0x0112, 3, 1, 6)]
    ifd = (
        struct.pack("<H", len(entries))
        + b"".join(struct.pack("<HHII", *entry) for entry in entries)
        + struct.pack("<I", 0)
    )
    exif = b"Exif\x00\x00II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<II", 1, 2)
    raw = encode(halves((80, 40)), "JPEG", exif=exif)

    prepared = prepare_image(raw, LIMITS)

    assert (prepared.width, prepared.height) == (40, 80)  # its orientation is still applied
    assert b"Exif" not in prepared.data


def test_a_png_loses_its_text_chunks() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Li Si 13812345678")
    info.add_text("Comment", "home address", zip=True)
    exif = camera_exif()
    raw = encode(halves(), "PNG", pnginfo=info, exif=exif)
    assert b"tEXt" in raw and b"Li Si" in raw and b"eXIf" in raw

    prepared = prepare_image(raw, LIMITS)

    assert prepared.content_type == "image/png"
    cleaned = reopened(prepared.data)
    assert cleaned.format == "PNG"
    assert getattr(cleaned, "text", {}) == {}
    for chunk in (b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"Li Si", MAKER.encode()):
        assert chunk not in prepared.data
    assert dict(cleaned.getexif()) == {}


def test_an_rgba_png_stays_a_png_with_its_transparency() -> None:
    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    image.paste((255, 0, 0, 255), (0, 0, 32, 64))
    prepared = prepare_image(encode(image, "PNG"), LIMITS)

    assert prepared.content_type == "image/png"
    assert prepared.extension == "png"
    cleaned = reopened(prepared.data)
    assert cleaned.format == "PNG" and cleaned.mode == "RGBA"
    assert cleaned.getpixel((10, 10)) == (255, 0, 0, 255)
    assert cleaned.getpixel((50, 10))[3] == 0  # still transparent


def test_a_palette_png_with_transparency_keeps_it() -> None:
    image = Image.new("P", (64, 64), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.paste(1, (0, 0, 32, 64))
    prepared = prepare_image(encode(image, "PNG", transparency=0), LIMITS)
    cleaned = reopened(prepared.data).convert("RGBA")
    assert cleaned.getpixel((10, 10)) == (255, 0, 0, 255)
    assert cleaned.getpixel((50, 10))[3] == 0


def test_a_webp_stays_a_webp_without_exif() -> None:
    image = halves((64, 64), mode="RGBA")
    image.paste((0, 0, 0, 0), (0, 0, 64, 16))  # a transparent strip along the top
    raw = encode(image, "WEBP", exif=camera_exif(), lossless=True)
    assert MAKER.encode() in raw

    prepared = prepare_image(raw, LIMITS)

    assert prepared.content_type == "image/webp"
    assert prepared.extension == "webp"
    cleaned = reopened(prepared.data)
    assert cleaned.format == "WEBP"
    assert cleaned.mode == "RGBA"
    assert cleaned.getpixel((10, 5))[3] < 20 and cleaned.getpixel((10, 40))[3] > 235
    assert MAKER.encode() not in prepared.data and b"EXIF" not in prepared.data
    assert dict(cleaned.getexif()) == {}


def test_a_phone_jpeg_with_a_second_picture_is_accepted_as_jpeg() -> None:
    # Many phones write an MPO: a JPEG with a multi-picture extension (a preview, a depth map).
    main, preview = halves((96, 64)), Image.new("RGB", (48, 32), BLUE)
    raw = encode(main, "MPO", save_all=True, append_images=[preview], exif=camera_exif(6))
    assert Image.open(io.BytesIO(raw)).format == "MPO"

    prepared = prepare_image(raw, LIMITS)

    assert prepared.content_type == "image/jpeg" and prepared.extension == "jpg"
    assert (prepared.width, prepared.height) == (64, 96)  # the main picture, upright
    cleaned = reopened(prepared.data)
    assert cleaned.format == "JPEG"
    assert MAKER.encode() not in prepared.data and b"Exif" not in prepared.data


@pytest.mark.parametrize("mode", ["L", "CMYK"])
def test_grey_and_cmyk_jpegs_are_stored_as_rgb_jpegs(mode: str) -> None:
    prepared = prepare_image(encode(Image.new(mode, (64, 64)), "JPEG"), LIMITS)
    assert prepared.content_type == "image/jpeg"
    assert reopened(prepared.data).mode == "RGB"


def test_the_thumbnail_is_a_jpeg_within_thumbnail_px() -> None:
    prepared = prepare_image(encode(halves((1200, 600)), "PNG"), LIMITS)

    thumbnail = reopened(prepared.thumbnail)
    assert thumbnail.format == "JPEG"
    assert max(thumbnail.size) <= LIMITS.thumbnail_px
    assert thumbnail.size == (320, 160)  # the aspect ratio kept
    assert (prepared.width, prepared.height) == (1200, 600)  # the photo itself is not shrunk


def test_the_thumbnail_of_an_upright_turned_photo_is_turned_too() -> None:
    raw = encode(halves((800, 400)), "JPEG", exif=camera_exif(orientation=6))
    thumbnail = reopened(prepare_image(raw, MediaConfig(thumbnail_px=100)).thumbnail)
    assert thumbnail.size == (50, 100)


def test_a_small_photo_s_thumbnail_is_not_enlarged() -> None:
    prepared = prepare_image(encode(halves((64, 40)), "WEBP"), LIMITS)
    assert reopened(prepared.thumbnail).size == (64, 40)
    assert reopened(prepared.thumbnail).format == "JPEG"


def test_sha256_is_of_the_stored_bytes() -> None:
    raw = encode(halves(), "JPEG", exif=camera_exif())
    prepared = prepare_image(raw, LIMITS)
    assert prepared.sha256 == hashlib.sha256(prepared.data).hexdigest()
    assert prepared.sha256 != hashlib.sha256(raw).hexdigest()  # re-encoded, not the original


def test_prepared_image_reports_what_staff_see() -> None:
    prepared = prepare_image(encode(halves((90, 50)), "JPEG"), LIMITS)
    assert isinstance(prepared, PreparedImage)
    assert (prepared.content_type, prepared.extension) == ("image/jpeg", "jpg")
    assert (prepared.width, prepared.height) == reopened(prepared.data).size == (90, 50)

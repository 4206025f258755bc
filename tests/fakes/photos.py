"""Photos as a customer's phone takes them (EXIF with the make, the model and a GPS position),
and the check that none of it is left in what the assistant stored."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import ExifTags, Image

GPS_MARKER = "E2E-GPS-DATUM"  # written into the photo's GPS block, searched for in the bytes
PERSONAL_MARKERS = (b"TestPhone", b"TP-2026", GPS_MARKER.encode())


def phone_photo(size: tuple = (800, 600)) -> bytes:
    """A phone photo of a meter box: JPEG with EXIF — make, model and a GPS position."""
    image = Image.new("RGB", size, (90, 110, 130))
    for x in range(0, size[0], 40):
        image.paste((230, 230, 220), (x, size[1] // 3, x + 20, 2 * size[1] // 3))
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "TestPhone"
    exif[ExifTags.Base.Model] = "TP-2026"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (23.0, 15.0, 10.8)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (116.0, 29.0, 56.4)
    gps[ExifTags.GPS.GPSMapDatum] = GPS_MARKER
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=90)
    data = out.getvalue()
    sent = Image.open(io.BytesIO(data)).getexif()
    assert sent[ExifTags.Base.Make] == "TestPhone", "the test photo must carry EXIF"
    assert sent.get_ifd(ExifTags.IFD.GPSInfo), "the test photo must carry GPS"
    assert b"Exif\x00\x00" in data and GPS_MARKER.encode() in data
    return data


def assert_no_exif(path: Path) -> None:
    """The stored file has no EXIF block and none of the phone's personal markers."""
    data = path.read_bytes()
    kept = Image.open(io.BytesIO(data))
    assert len(kept.getexif()) == 0 and "exif" not in kept.info, f"EXIF kept in {path}"
    assert b"Exif\x00\x00" not in data, f"an EXIF block is left in {path}"
    for marker in PERSONAL_MARKERS:
        assert marker not in data, f"{marker!r} is left in {path}"

"""Locations customers share: checked, named after the nearest town, linked for staff.

    place = locate(23.30, 116.42, label=None)     # raises InvalidLocation
    place.text        # 潮南区峡山街道 — what the customer is asked to confirm
    place.district    # 潮南区 — the area type of config/areas.yml follows from it
    map_link(place)   # staff's link (config/areas.yml `map_link`), or None

No online map service is used: the towns and their centre points are configuration
(config/areas.yml `towns`), and a location farther than `max_km` from every town is outside
the service area. WeChat sends an address text (`Label`) with its locations; it is used when
it names a place, prefixed with the district when it does not say one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from bot.core.catalog import load_catalog
from bot.core.settings import AreasConfig, Town, get_settings

EARTH_RADIUS_KM = 6371.0
LABEL_MAX_CHARS = 120


class InvalidLocation(ValueError):
    """`reason`: invalid (not coordinates, out of range, 0,0) or outside (no town near)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Place:
    """A checked location and its name in words."""

    lat: float
    lon: float
    text: str
    district: str

    def as_slot(self) -> dict:
        return {"lat": self.lat, "lon": self.lon, "text": self.text, "district": self.district}

    @classmethod
    def from_slot(cls, value: object) -> Optional["Place"]:
        """The place a slot holds, or None when the slot holds anything else."""
        if not isinstance(value, dict):
            return None
        try:
            return cls(
                lat=float(value["lat"]),
                lon=float(value["lon"]),
                text=str(value["text"]),
                district=str(value.get("district") or ""),
            )
        except (KeyError, TypeError, ValueError):
            return None


def coordinates(lat: object, lon: object) -> tuple:
    """(lat, lon) as floats; raises InvalidLocation for text, NaN, out of range or 0,0."""
    try:
        latitude, longitude = float(lat), float(lon)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidLocation("invalid") from None
    if not (math.isfinite(latitude) and math.isfinite(longitude)):
        raise InvalidLocation("invalid")
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise InvalidLocation("invalid")
    if abs(latitude) < 1e-6 and abs(longitude) < 1e-6:
        raise InvalidLocation("invalid")  # 0,0: a device without a fix
    return latitude, longitude


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


def nearest_town(lat: float, lon: float, areas: AreasConfig) -> Optional[Town]:
    """The configured town nearest to (lat, lon) within `max_km`, or None."""
    best: Optional[Town] = None
    best_km = areas.max_km
    for town in areas.towns:
        km = distance_km(lat, lon, town.lat, town.lon)
        if km <= best_km:
            best, best_km = town, km
    return best


def _clean_label(label: Optional[str]) -> str:
    text = " ".join(str(label or "").split())
    return text[:LABEL_MAX_CHARS]


def locate(
    lat: object, lon: object, label: Optional[str] = None, areas: Optional[AreasConfig] = None
) -> Place:
    """A shared location as a place the customer can confirm; raises InvalidLocation."""
    areas = areas or get_settings().areas
    latitude, longitude = coordinates(lat, lon)
    town = nearest_town(latitude, longitude, areas)
    if town is None:
        raise InvalidLocation("outside")
    text = _clean_label(label)
    if not text:
        text = town.name
    elif not any(district in text for district in areas.districts):
        text = f"{town.district}{text}"[:LABEL_MAX_CHARS]
    return Place(lat=round(latitude, 6), lon=round(longitude, 6), text=text, district=town.district)


def map_link(lat: float, lon: float, areas: Optional[AreasConfig] = None) -> Optional[str]:
    """Staff's link to a location (config/areas.yml `map_link`), or None when none is set."""
    areas = areas or get_settings().areas
    return areas.map_link.format(lat=lat, lon=lon) if areas.map_link else None


def location_refusal(reason: str) -> str:
    """The polite line for a location we cannot use (`InvalidLocation.reason`)."""
    return load_catalog().system_messages[f"location_{reason}"]

"""Locations customers share (bot/core/location.py): checked, named after the nearest town.

Most tests use an AreasConfig built here, so they do not move with config/areas.yml; the last
ones check config/areas.yml itself.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from bot.core.location import (
    LABEL_MAX_CHARS,
    InvalidLocation,
    Place,
    coordinates,
    distance_km,
    locate,
    map_link,
    nearest_town,
)
from bot.core.settings import AreasConfig, Town, load_settings

XIASHAN = Town(name="潮南区峡山街道", district="潮南区", lat=23.2530, lon=116.4990)
CHENDIAN = Town(name="潮南区陈店镇", district="潮南区", lat=23.2500, lon=116.4130)
JINSHA = Town(name="金平区金砂街道", district="金平区", lat=23.3650, lon=116.6990)
HOUZHAI = Town(name="南澳县后宅镇", district="南澳县", lat=23.4230, lon=117.0230)

AREAS = AreasConfig(
    districts={"金平区": "urban", "潮南区": "rural", "南澳县": "remote", "南澳": "remote"},
    towns=(XIASHAN, CHENDIAN, JINSHA, HOUZHAI),
    max_km=15,
    map_link="https://maps.example/?q={lat},{lon}",
)

BEIJING = (39.9, 116.4)


def reason(lat: Any, lon: Any, label: Any = None, areas: AreasConfig = AREAS) -> str:
    with pytest.raises(InvalidLocation) as caught:
        locate(lat, lon, label, areas)
    assert isinstance(caught.value, ValueError)
    return caught.value.reason


# ---------------------------------------------------------------- coordinates()


@pytest.mark.parametrize(
    "lat, lon",
    [
        ("north", "east"),
        ("23.25", "far"),
        ("", ""),
        (None, 116.4),
        (23.25, None),
        ([23.25], 116.4),
        ({"lat": 1}, 116.4),
        (float("nan"), 116.4),
        (23.25, float("nan")),
        ("nan", "116.4"),
        (float("inf"), 116.4),
        (23.25, float("-inf")),
        ("inf", "inf"),
        (91, 116.4),
        (-90.0001, 116.4),
        (23.25, -181),
        (23.25, 180.0001),
        (0, 0),
        ("0", "0.0"),
        (0.0000001, -0.0000001),
        (1e308 * 10, 0),
    ],
)
def test_coordinates_refuses_what_is_no_position(lat: Any, lon: Any) -> None:
    with pytest.raises(InvalidLocation) as caught:
        coordinates(lat, lon)
    assert caught.value.reason == "invalid"
    assert str(caught.value) == "invalid"


@pytest.mark.parametrize(
    "lat, lon, expected",
    [
        (23.253, 116.499, (23.253, 116.499)),
        ("23.253", "116.499", (23.253, 116.499)),
        (" 23.253 ", "116.499\n", (23.253, 116.499)),
        (90, 180, (90.0, 180.0)),
        (-90, -180, (-90.0, -180.0)),
        (0, 116.4, (0.0, 116.4)),  # on the equator: a real place, not "no fix"
        (23.25, 0, (23.25, 0.0)),
    ],
)
def test_coordinates_gives_floats(lat: Any, lon: Any, expected: tuple) -> None:
    result = coordinates(lat, lon)
    assert result == expected
    assert all(isinstance(value, float) for value in result)


# ---------------------------------------------------------------- locate()


def test_near_xiashan_is_xiashan_in_chaonan() -> None:
    place = locate(23.2541, 116.5012, areas=AREAS)
    assert place == Place(lat=23.2541, lon=116.5012, text="潮南区峡山街道", district="潮南区")


def test_the_nearest_town_wins() -> None:
    # Between 峡山 (116.499) and 陈店 (116.413), closer to 陈店.
    place = locate(23.251, 116.43, areas=AREAS)
    assert (place.text, place.district) == ("潮南区陈店镇", "潮南区")
    assert nearest_town(23.251, 116.47, AREAS) == XIASHAN


def test_far_away_is_outside() -> None:
    assert reason(*BEIJING) == "outside"
    assert reason("39.9", "116.4", "北京市东城区") == "outside"


def test_just_inside_and_just_outside_max_km() -> None:
    # Due north of 峡山: one degree of latitude is about 111.2 km.
    inside = XIASHAN.lat + 14.9 / 111.19
    outside = XIASHAN.lat + 15.1 / 111.19
    assert 14.8 < distance_km(inside, XIASHAN.lon, XIASHAN.lat, XIASHAN.lon) < 15
    assert locate(inside, XIASHAN.lon, areas=AREAS).text == "潮南区峡山街道"
    assert reason(outside, XIASHAN.lon) == "outside"


def test_max_km_is_configurable() -> None:
    narrow = AREAS.copy(update={"max_km": 1})
    assert reason(23.2530, 116.5150, areas=narrow) == "outside"  # about 1.6 km east
    assert locate(23.2530, 116.5150, areas=AREAS).text == "潮南区峡山街道"


def test_no_towns_means_everything_is_outside() -> None:
    assert reason(23.2530, 116.4990, areas=AreasConfig()) == "outside"


def test_invalid_comes_before_outside() -> None:
    assert reason(0, 0) == "invalid"
    assert reason(float("nan"), 116.4) == "invalid"
    assert reason(91, 116.4) == "invalid"


def test_a_label_with_a_district_is_kept_as_is() -> None:
    place = locate(23.2541, 116.5012, "广东省汕头市潮南区峡山街道东山路12号", AREAS)
    assert place.text == "广东省汕头市潮南区峡山街道东山路12号"
    assert place.district == "潮南区"


def test_a_label_naming_another_district_is_kept_too() -> None:
    # The customer's words are kept; the district (and its time limits) follows the position.
    place = locate(23.2541, 116.5012, "金平区金砂路", AREAS)
    assert (place.text, place.district) == ("金平区金砂路", "潮南区")


def test_a_label_without_a_district_gets_the_town_s_district() -> None:
    place = locate(23.2541, 116.5012, "东山路12号 华润万家", AREAS)
    assert place.text == "潮南区东山路12号 华润万家"
    assert place.district == "潮南区"


def test_the_label_s_whitespace_is_tidied() -> None:
    place = locate(23.2541, 116.5012, "  东山路\n12号\t\t华润万家  ", AREAS)
    assert place.text == "潮南区东山路 12号 华润万家"


@pytest.mark.parametrize("label", [None, "", "   ", "\n\t"])
def test_without_a_label_the_town_names_the_place(label: Any) -> None:
    assert locate(23.4235, 117.0240, label, AREAS).text == "南澳县后宅镇"


def test_an_overly_long_label_is_cut() -> None:
    with_district = "潮南区" + "东山路" * 100
    place = locate(23.2541, 116.5012, with_district, AREAS)
    assert place.text == with_district[:LABEL_MAX_CHARS]

    without_district = "东山路" * 100
    place = locate(23.2541, 116.5012, without_district, AREAS)
    assert place.text.startswith("潮南区东山路")
    assert len(place.text) == LABEL_MAX_CHARS


def test_a_label_that_is_not_text_is_read_as_text() -> None:
    assert locate(23.2541, 116.5012, 12, AREAS).text == "潮南区12"  # type: ignore[arg-type]


def test_coordinates_are_rounded_to_six_places() -> None:
    place = locate("23.25412345678", "116.50123456789", areas=AREAS)
    assert (place.lat, place.lon) == (23.254123, 116.501235)


def test_locate_uses_the_configured_areas_by_default() -> None:
    place = locate(23.2541, 116.5012)
    assert place.district == "潮南区"
    assert place.text == "潮南区峡山街道"


# ---------------------------------------------------------------- places in slots


def test_a_place_round_trips_through_a_slot() -> None:
    place = locate(23.2541, 116.5012, "东山路12号", AREAS)
    slot = place.as_slot()
    assert slot == {
        "lat": 23.2541,
        "lon": 116.5012,
        "text": "潮南区东山路12号",
        "district": "潮南区",
    }
    assert Place.from_slot(slot) == place


@pytest.mark.parametrize(
    "value",
    [None, "潮南区峡山街道", 3, [], {"lat": 1}, {"lat": "x", "lon": 1, "text": "t"}],
)
def test_a_slot_holding_something_else_is_no_place(value: Any) -> None:
    assert Place.from_slot(value) is None


def test_a_slot_without_a_district_is_a_place_without_one() -> None:
    assert Place.from_slot({"lat": "23.2", "lon": 116.4, "text": "某处"}) == Place(
        lat=23.2, lon=116.4, text="某处", district=""
    )


# ---------------------------------------------------------------- map_link()


def test_map_link_formats_lat_and_lon() -> None:
    assert map_link(23.2541, 116.5012, AREAS) == "https://maps.example/?q=23.2541,116.5012"


def test_map_link_repeats_placeholders() -> None:
    areas = AREAS.copy(
        update={"map_link": "https://osm.example/?mlat={lat}&mlon={lon}#17/{lat}/{lon}"}
    )
    assert (
        map_link(23.25, 116.5, areas) == "https://osm.example/?mlat=23.25&mlon=116.5#17/23.25/116.5"
    )


def test_map_link_is_none_when_not_configured() -> None:
    assert map_link(23.2541, 116.5012, AREAS.copy(update={"map_link": ""})) is None
    assert map_link(23.2541, 116.5012, AreasConfig()) is None


# ---------------------------------------------------------------- distances


def test_distance_km() -> None:
    assert distance_km(23.25, 116.5, 23.25, 116.5) == 0
    assert distance_km(0, 0, 1, 0) == pytest.approx(111.19, abs=0.01)
    assert distance_km(*BEIJING, XIASHAN.lat, XIASHAN.lon) == pytest.approx(
        distance_km(XIASHAN.lat, XIASHAN.lon, *BEIJING)
    )
    assert 1800 < distance_km(*BEIJING, XIASHAN.lat, XIASHAN.lon) < 2000
    assert math.isclose(distance_km(0, 0, 0, 180), math.pi * 6371.0)


# ---------------------------------------------------------------- config/areas.yml


@pytest.fixture(scope="module")
def real_areas() -> AreasConfig:
    return load_settings().areas


def test_every_town_s_district_is_a_district(real_areas: AreasConfig) -> None:
    assert real_areas.towns, "config/areas.yml names no towns"
    for town in real_areas.towns:
        assert town.district in real_areas.districts, town.name
        assert town.name.startswith(town.district), town.name
        assert coordinates(town.lat, town.lon) == (town.lat, town.lon)


def test_every_town_is_found_at_its_own_centre(real_areas: AreasConfig) -> None:
    names = [town.name for town in real_areas.towns]
    assert len(names) == len(set(names))
    for town in real_areas.towns:
        place = locate(town.lat, town.lon, None, real_areas)
        assert (place.text, place.district) == (town.name, town.district)


def test_real_config_xiashan_and_beijing(real_areas: AreasConfig) -> None:
    place = locate(23.2541, 116.5012, None, real_areas)
    assert (place.text, place.district) == ("潮南区峡山街道", "潮南区")
    assert real_areas.districts[place.district] == "rural"
    assert reason(*BEIJING, areas=real_areas) == "outside"


def test_real_config_map_link_is_a_template_of_lat_and_lon(real_areas: AreasConfig) -> None:
    link = map_link(23.2541, 116.5012, real_areas)
    if real_areas.map_link:
        assert link is not None and "23.2541" in link and "116.5012" in link
        assert "{" not in link
    else:
        assert link is None

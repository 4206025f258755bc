"""Photos and locations from WeChat, end to end: the real stack (safe mode) with its WeChat API
pointed at the fake (tests/fakes/wechat_simulator.py).

WeChat pushes an image message with a `MediaId` (fetched through the temporary-media API
`media/get`) and a `PicUrl` (WeChat's picture server, the fallback); a location message with
its coordinates and an address `Label`. The XML is WeChat's own, encrypted as WeChat's server
does. The answer is the passive reply, or — when the turn took longer than WeChat's 5 s — the
customer-service message that follows.
"""

from __future__ import annotations

import io
import uuid

import pytest
from PIL import Image

from bot.core.catalog import load_catalog
from bot.tools.runner import Stack
from tests.e2e.channel_customers import ASK, ASK_TOGETHER, PUSHES, msg_ids, openid, push
from tests.e2e.stored_media import media_files, stored_photos
from tests.fakes.photos import assert_no_exif, phone_photo
from tests.fakes.wechat_simulator import FakeWeChatApi
from tests.stack import Api

CATALOG = load_catalog()
SYSTEM = CATALOG.system_messages
DIALOGUE = CATALOG.dialogue_messages
CHOICE = SYSTEM["wechat_choice_line"]
LABEL = "广东省汕头市潮南区峡山街道东山路12号"
XIASHAN = ("23.253000", "116.499000")  # config/areas.yml: 潮南区峡山街道, as WeChat writes it


# ---------------------------------------------------------------- pictures and what is kept


def animated_gif() -> bytes:
    colours = ((200, 30, 30), (30, 200, 30), (30, 30, 200))
    frames = [Image.new("RGB", (120, 90), colour) for colour in colours]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    data = out.getvalue()
    assert Image.open(io.BytesIO(data)).is_animated
    return data


# ---------------------------------------------------------------- the customer


def answer(stack: Stack, api: FakeWeChatApi, customer: str, xml: str) -> str:
    """What the customer reads after WeChat pushed `xml`: the passive reply, or the
    customer-service message sent once the turn outlasted WeChat's 5 s."""
    before = len(api.messages_to(customer))
    response = push(stack, xml)
    assert response.status_code == 200, response.text
    if response.text != "success":
        return PUSHES.read_reply(response.text)["Content"]
    later = api.wait_for(customer, before + 1, timeout=30)[before:]
    assert later, "neither a passive reply nor a customer-service message"
    return "\n".join(later)


def say(stack: Stack, api: FakeWeChatApi, customer: str, text: str) -> str:
    return answer(stack, api, customer, PUSHES.text(customer, text, next(msg_ids)))


def send_image(stack: Stack, api: FakeWeChatApi, customer: str, media_id: str, pic_url: str) -> str:
    return answer(stack, api, customer, PUSHES.image(customer, pic_url, media_id, next(msg_ids)))


def new_media_id() -> str:
    return "MEDIA_" + uuid.uuid4().hex


# ---------------------------------------------------------------- photos


def test_image_through_the_media_api_is_the_description_and_goes_on_the_ticket(
    stack: Stack, wechat_api: FakeWeChatApi, api: Api
) -> None:
    customer = openid()
    # 「报修」 says nothing of what happened: the description is asked (after the address)
    assert ASK_TOGETHER[("address", "phone")] in say(stack, wechat_api, customer, "报修")
    said = say(stack, wechat_api, customer, "龙湖区长平路88号3栋502，13812345678")
    assert ASK["description"] in said, said

    media_id, data = new_media_id(), phone_photo()
    wechat_api.add_media(media_id, data)
    pic_url = wechat_api.add_picture(data)
    said = send_image(stack, wechat_api, customer, media_id, pic_url)
    assert DIALOGUE["photo_taken_as_description"] in said
    assert DIALOGUE["summary_photos"].format(count=1) in said
    assert CHOICE.format(number=1, title="确认提交") in said
    assert wechat_api.media_requests.count(media_id) == 1
    assert not any(pic_url.endswith(path) for path in wechat_api.picture_requests)

    assert "GD" in say(stack, wechat_api, customer, "1")  # 回复 1 确认提交
    [ticket] = api.tickets(f"wx-{customer}")
    assert ticket["channel"] == "wechat" and ticket["category"] == "fault_repair"
    assert ticket["details"]["description"] == DIALOGUE["photo_as_description"]
    [attachment] = ticket["attachments"]
    [kept] = stored_photos(stack, f"wx-{customer}")
    assert attachment["id"] == kept["id"] and kept["channel"] == "wechat"
    assert kept["size"] == (800, 600)
    for path in (kept["path"], kept["thumbnail_path"]):
        assert_no_exif(path)


def test_image_falls_back_to_pic_url_when_the_media_api_fails(
    stack: Stack, wechat_api: FakeWeChatApi
) -> None:
    customer = openid()
    media_id = new_media_id()  # not registered: media/get answers errcode 40007
    pic_url = wechat_api.add_picture(phone_photo((640, 480)))
    said = send_image(stack, wechat_api, customer, media_id, pic_url)
    assert said == DIALOGUE["photo_held"], said  # no request yet: held for the next one
    assert wechat_api.media_requests.count(media_id) == 1  # tried first
    assert any(pic_url.endswith(path) for path in wechat_api.picture_requests)
    [kept] = stored_photos(stack, f"wx-{customer}")
    assert kept["size"] == (640, 480) and kept["ticket_id"] is None
    for path in (kept["path"], kept["thumbnail_path"]):
        assert_no_exif(path)


def test_an_animated_gif_is_refused_and_not_stored(stack: Stack, wechat_api: FakeWeChatApi) -> None:
    customer, media_id = openid(), new_media_id()
    gif = animated_gif()
    wechat_api.add_media(media_id, gif, content_type="image/gif")
    before = media_files(stack)
    said = send_image(stack, wechat_api, customer, media_id, wechat_api.add_picture(gif))
    assert said == SYSTEM["photo_not_image"]
    assert stored_photos(stack, f"wx-{customer}") == []
    assert media_files(stack) == before


def test_a_truncated_jpeg_is_refused_and_not_stored(
    stack: Stack, wechat_api: FakeWeChatApi
) -> None:
    customer, media_id = openid(), new_media_id()
    whole = phone_photo()
    cut = whole[: len(whole) // 2]
    wechat_api.add_media(media_id, cut)
    before = media_files(stack)
    said = send_image(stack, wechat_api, customer, media_id, wechat_api.add_picture(cut))
    assert said == SYSTEM["photo_broken"]
    assert stored_photos(stack, f"wx-{customer}") == []
    assert media_files(stack) == before


# ---------------------------------------------------------------- locations


def test_a_location_while_the_address_is_asked_offers_its_label(
    stack: Stack, wechat_api: FakeWeChatApi, api: Api
) -> None:
    customer = openid()
    assert ASK_TOGETHER[("address", "phone")] in say(stack, wechat_api, customer, "家里停电了")
    xml = PUSHES.location(customer, *XIASHAN, LABEL, next(msg_ids))
    said = answer(stack, wechat_api, customer, xml)
    assert f"是这个位置吗：{LABEL}？" in said
    assert CHOICE.format(number=1, title=DIALOGUE["location_yes_button"]) in said
    assert CHOICE.format(number=2, title=DIALOGUE["location_no_button"]) in said

    # 回复 1 是，就是这里: the label is a whole address; the phone is asked next
    said = say(stack, wechat_api, customer, "1")
    assert ASK["phone"] in said, said
    said = say(stack, wechat_api, customer, "13812345678")
    assert f"· 地址：{LABEL}" in said, said  # the summary
    assert "GD" in say(stack, wechat_api, customer, "1")
    [ticket] = api.tickets(f"wx-{customer}")
    assert ticket["details"]["address"] == LABEL
    location = ticket["location"]
    assert (location["lat"], location["lon"]) == pytest.approx((23.253, 116.499))


def test_a_location_outside_the_service_area_is_refused(
    stack: Stack, wechat_api: FakeWeChatApi
) -> None:
    customer = openid()
    assert ASK_TOGETHER[("address", "phone")] in say(stack, wechat_api, customer, "家里停电了")
    beijing = PUSHES.location(customer, "39.908823", "116.397470", "北京市东城区", next(msg_ids))
    assert answer(stack, wechat_api, customer, beijing) == SYSTEM["location_outside"]


def test_a_refused_photo_keeps_the_numbered_choices(
    stack: Stack, wechat_api: FakeWeChatApi
) -> None:
    """The refusal is the channel's, not the dialogue's: the question still open (「回复 1
    确认提交」) is still answered with its number."""
    customer = openid()
    assert ASK_TOGETHER[("address", "phone")] in say(stack, wechat_api, customer, "家里停电了")
    said = say(stack, wechat_api, customer, "龙湖区长平路88号3栋502，13812345678")
    assert CHOICE.format(number=1, title="确认提交") in said, said
    media_id, cut = new_media_id(), phone_photo()[:2000]
    wechat_api.add_media(media_id, cut)
    assert (
        send_image(stack, wechat_api, customer, media_id, wechat_api.add_picture(cut))
        == (SYSTEM["photo_broken"])
    )
    assert "GD" in say(stack, wechat_api, customer, "1")

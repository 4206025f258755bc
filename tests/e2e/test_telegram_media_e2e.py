"""Photos and locations from Telegram, end to end: the real stack, its Telegram channel
pointed at the fake Bot API (tests/fakes/fake_telegram.py).

A photo is registered on the fake's file server; the customer's update names its file ids
(three sizes, as Telegram sends them); the channel picks the largest, fetches it with getFile
and the file URL, and the dialogue answers. What the media store keeps is read back from the
stack's database and media directory, and must have no EXIF left (the test photo carries a
GPS position and the phone's make and model). Refused files and places are answered by the
channel itself, and nothing of them is stored.
"""

from __future__ import annotations

import io
import uuid
from typing import Any, Dict, List

import pytest
from PIL import Image

from bot.core.catalog import load_catalog
from bot.core.settings import get_settings
from bot.tools.runner import Stack
from tests.e2e.channel_customers import ASK, ASK_TOGETHER, UPDATE_IDS, TelegramCustomer
from tests.e2e.stored_media import media_files, stored_photos
from tests.fakes.fake_telegram import (
    FakeBotApi,
    document_update,
    location_update,
    photo_size_id,
    photo_update,
    venue_update,
)
from tests.fakes.photos import assert_no_exif, phone_photo
from tests.stack import Api

CATALOG = load_catalog()
SYSTEM = CATALOG.system_messages
DIALOGUE = CATALOG.dialogue_messages
MAX_MB = get_settings().service.media.max_bytes // (1024 * 1024)
XIASHAN = (23.2530, 116.4990)  # config/areas.yml: 潮南区峡山街道
ADDRESS_AND_PHONE = ASK_TOGETHER[("address", "phone")]


# ---------------------------------------------------------------- pictures and what is kept


def png(size: tuple) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


# ---------------------------------------------------------------- the customer


def texts(replies: List[Dict[str, Any]]) -> str:
    return "\n".join(str(r.get("text", "")) for r in replies)


def inline_buttons(replies: List[Dict[str, Any]]) -> List[Dict[str, str]]:
    return [
        button
        for reply in replies
        for row in reply.get("reply_markup", {}).get("inline_keyboard", [])
        for button in row
    ]


def new_file_id() -> str:
    return "AgACAgUAAxkBAAI" + uuid.uuid4().hex


@pytest.fixture
def tg_customer(stack: Stack, fake_telegram: FakeBotApi) -> TelegramCustomer:
    return TelegramCustomer(stack, fake_telegram)


def send_photo(customer: TelegramCustomer, data: bytes) -> tuple:
    """Send `data` as a photo in three sizes (each size's file on the fake's file server);
    (replies, the full picture's file id)."""
    file_id = new_file_id()
    thumbnails = {(90, 67), (320, 240)}
    for width, height in thumbnails:
        customer.fake.add_file(photo_size_id(file_id, width, height), png((width, height)))
    customer.fake.add_file(file_id, data)
    width, height = Image.open(io.BytesIO(data)).size
    sizes = ((90, 67, 1_402), (320, 240, 15_377), (width, height, len(data)))
    update = photo_update(next(UPDATE_IDS), customer.chat_id, file_id, sizes)
    return customer.replies_to(update), file_id


def got_file(fake: FakeBotApi, file_id_prefix: str) -> List[str]:
    """The file ids getFile was asked for that belong to this photo."""
    return [c["file_id"] for c in fake.sent("getFile") if c["file_id"].startswith(file_id_prefix)]


def start_fault_report(customer: TelegramCustomer, opening: str = "家里停电了") -> None:
    replies = customer.say(opening)
    assert ADDRESS_AND_PHONE in texts(replies), replies


# ---------------------------------------------------------------- photos


def test_photo_as_the_description_goes_on_the_ticket_without_exif(
    tg_customer: TelegramCustomer, api: Api, stack: Stack
) -> None:
    # 「家里停电了」 would be the description itself: 「报修」 says nothing of what happened
    start_fault_report(tg_customer, "报修")
    replies = tg_customer.say("龙湖区长平路88号3栋502，13812345678")
    assert ASK["description"] in texts(replies), replies

    sent = phone_photo()
    replies, file_id = send_photo(tg_customer, sent)
    assert got_file(tg_customer.fake, file_id) == [file_id], "not the largest size fetched"
    assert tg_customer.fake.downloads.count(tg_customer.fake.files[file_id].file_path) == 1
    said = texts(replies)
    assert DIALOGUE["photo_taken_as_description"] in said
    assert "确认提交" in [b["text"] for b in inline_buttons(replies)], replies  # the summary
    assert DIALOGUE["summary_photos"].format(count=1) in said

    [held] = stored_photos(stack, tg_customer.sender_id)
    assert held["ticket_id"] is None  # held until the ticket is filed
    assert held["channel"] == "telegram" and held["content_type"] == "image/jpeg"
    assert held["size"] == (800, 600)  # the full picture, not a thumbnail

    replies = tg_customer.press(replies, "确认提交")
    assert "GD" in texts(replies), replies
    [ticket] = api.tickets(tg_customer.sender_id)
    assert ticket["category"] == "fault_repair" and ticket["channel"] == "telegram"
    assert ticket["details"]["description"] == DIALOGUE["photo_as_description"]
    [attachment] = ticket["attachments"]
    assert attachment["id"] == held["id"]
    assert (attachment["width"], attachment["height"]) == (800, 600)

    [kept] = stored_photos(stack, tg_customer.sender_id)
    assert kept["ticket_id"] is not None
    assert kept["path"].is_file() and kept["thumbnail_path"].is_file()
    assert kept["path"].read_bytes() == kept["data"]
    assert_no_exif(kept["path"])
    assert_no_exif(kept["thumbnail_path"])

    # after filing, another photo goes on that (still open) ticket
    replies, second = send_photo(tg_customer, phone_photo((640, 480)))
    assert got_file(tg_customer.fake, second) == [second]
    assert DIALOGUE["photo_added"].format(ticket_no=ticket["ticket_no"]) in texts(replies)
    [ticket] = api.tickets(tg_customer.sender_id)
    assert [(a["width"], a["height"]) for a in ticket["attachments"]] == [(800, 600), (640, 480)]


def test_a_photo_sent_at_the_confirmation_is_filed_with_the_ticket(
    tg_customer: TelegramCustomer, api: Api, stack: Stack
) -> None:
    start_fault_report(tg_customer)  # 「家里停电了」: the description is known already
    replies = tg_customer.say("龙湖区长平路88号3栋502，13812345678")
    assert "确认提交" in [b["text"] for b in inline_buttons(replies)], replies
    replies, _ = send_photo(tg_customer, phone_photo())
    said = texts(replies)
    assert DIALOGUE["photo_held_in_form"] in said
    assert DIALOGUE["summary_photos"].format(count=1) in said  # asked to confirm again
    assert "家里停电了" in said
    replies = tg_customer.press(replies, "确认提交")
    assert "GD" in texts(replies), replies
    [ticket] = api.tickets(tg_customer.sender_id)
    assert ticket["details"]["description"] == "家里停电了"
    [attachment] = ticket["attachments"]
    [kept] = stored_photos(stack, tg_customer.sender_id)
    assert attachment["id"] == kept["id"] and kept["ticket_id"] is not None
    assert_no_exif(kept["path"])


def test_a_caption_under_the_photo_is_read_first_and_the_photo_joins_that_report(
    tg_customer: TelegramCustomer, api: Api, stack: Stack
) -> None:
    file_id = new_file_id()
    data = phone_photo()
    tg_customer.fake.add_file(file_id, data)
    width, height = Image.open(io.BytesIO(data)).size
    update = photo_update(
        next(UPDATE_IDS),
        tg_customer.chat_id,
        file_id,
        ((width, height, len(data)),),
        caption="门口电线断了在冒火花",
    )
    replies = tg_customer.replies_to(update)
    said = texts(replies)
    assert "GD" in said, replies  # an emergency: filed at once, from the caption
    assert DIALOGUE["photo_added"].split("{")[0] in said  # then the photo goes on it
    [ticket] = api.tickets(tg_customer.sender_id)
    assert ticket["category"] == "emergency" and len(ticket["attachments"]) == 1
    assert "电线断了" in ticket["details"]["description"]


def test_a_pdf_named_like_a_jpeg_is_refused_and_not_stored(
    tg_customer: TelegramCustomer, stack: Stack
) -> None:
    pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    file_id = "BQACAgUAAxkBAAI" + uuid.uuid4().hex
    tg_customer.fake.add_file(file_id, pdf, file_path="documents/file_x.jpg")
    before = media_files(stack)
    replies = tg_customer.replies_to(
        document_update(
            next(UPDATE_IDS), tg_customer.chat_id, file_id, "x.jpg", "image/jpeg", len(pdf)
        )
    )
    assert texts(replies) == SYSTEM["photo_not_image"]
    assert got_file(tg_customer.fake, file_id) == [file_id]  # fetched, then looked at
    assert stored_photos(stack, tg_customer.sender_id) == []
    assert media_files(stack) == before


def test_an_image_sent_as_a_file_is_taken_like_a_photo(
    tg_customer: TelegramCustomer, stack: Stack
) -> None:
    file_id = "BQACAgUAAxkBAAI" + uuid.uuid4().hex
    data = phone_photo()
    tg_customer.fake.add_file(file_id, data, file_path="documents/file_meter.jpg")
    replies = tg_customer.replies_to(
        document_update(
            next(UPDATE_IDS), tg_customer.chat_id, file_id, "IMG_2041.JPG", "image/jpeg", len(data)
        )
    )
    assert texts(replies) == DIALOGUE["photo_held"], replies  # no request yet: held for one
    [held] = stored_photos(stack, tg_customer.sender_id)
    assert held["size"] == (800, 600) and held["ticket_id"] is None
    assert_no_exif(held["path"])


def test_a_photo_over_the_size_limit_is_refused_without_fetching_it(
    tg_customer: TelegramCustomer, stack: Stack
) -> None:
    file_id = new_file_id()
    big = 40 * 1024 * 1024
    tg_customer.fake.add_file(file_id, phone_photo(), file_size=big)
    before = media_files(stack)
    update = photo_update(
        next(UPDATE_IDS), tg_customer.chat_id, file_id, ((320, 240, 20_000), (4000, 3000, big))
    )
    replies = tg_customer.replies_to(update)
    assert texts(replies) == SYSTEM["photo_too_large"].format(max_mb=MAX_MB)
    assert got_file(tg_customer.fake, file_id) == []
    assert tg_customer.fake.files[file_id].file_path not in tg_customer.fake.downloads
    assert stored_photos(stack, tg_customer.sender_id) == []
    assert media_files(stack) == before


def test_a_tiny_image_is_refused(tg_customer: TelegramCustomer, stack: Stack) -> None:
    file_id = new_file_id()
    tiny = png((1, 1))
    tg_customer.fake.add_file(file_id, tiny)
    before = media_files(stack)
    replies = tg_customer.replies_to(
        photo_update(next(UPDATE_IDS), tg_customer.chat_id, file_id, ((1, 1, len(tiny)),))
    )
    assert texts(replies) == SYSTEM["photo_too_small"]
    assert stored_photos(stack, tg_customer.sender_id) == []
    assert media_files(stack) == before


# ---------------------------------------------------------------- locations


def test_a_location_while_the_address_is_asked_is_offered_and_confirmed(
    tg_customer: TelegramCustomer, api: Api
) -> None:
    start_fault_report(tg_customer)
    replies = tg_customer.replies_to(
        location_update(next(UPDATE_IDS), tg_customer.chat_id, *XIASHAN)
    )
    question = DIALOGUE["location_confirm"].format(place="潮南区峡山街道")
    assert question == "是这个位置吗：潮南区峡山街道？"
    assert question in texts(replies), replies
    buttons = {b["text"]: b["callback_data"] for b in inline_buttons(replies)}
    assert buttons == {
        DIALOGUE["location_yes_button"]: "/affirm",
        DIALOGUE["location_no_button"]: "/deny",
    }

    # 「是，就是这里」: the town is taken, and the rest of the address asked for
    replies = tg_customer.press(replies, DIALOGUE["location_yes_button"])
    acknowledged = [c["callback_query_id"] for c in tg_customer.fake.sent("answerCallbackQuery")]
    assert f"q{tg_customer.chat_id}" in acknowledged
    said = texts(replies)
    assert DIALOGUE["address_needs_road"].format(partial="潮南区峡山街道") in said, replies
    assert question not in said

    replies = tg_customer.say("东山路12号")
    assert ASK["phone"] in texts(replies), replies
    replies = tg_customer.share_contact("+86 138 1234 5678")
    assert "· 地址：潮南区峡山街道东山路12号" in texts(replies), replies  # the summary
    replies = tg_customer.press(replies, "确认提交")
    assert "GD" in texts(replies), replies
    [ticket] = api.tickets(tg_customer.sender_id)
    assert ticket["details"]["address"] == "潮南区峡山街道东山路12号"
    assert ticket["location"] is not None
    assert (ticket["location"]["lat"], ticket["location"]["lon"]) == pytest.approx(XIASHAN)


def test_a_venue_offers_its_address(tg_customer: TelegramCustomer) -> None:
    start_fault_report(tg_customer)
    update = venue_update(
        next(UPDATE_IDS), tg_customer.chat_id, *XIASHAN, "东山小区", "潮南区峡山街道东山路12号"
    )
    replies = tg_customer.replies_to(update)
    assert "是这个位置吗：潮南区峡山街道东山路12号？" in texts(replies), replies


def test_a_location_at_zero_zero_is_refused(tg_customer: TelegramCustomer) -> None:
    start_fault_report(tg_customer)
    replies = tg_customer.replies_to(
        location_update(next(UPDATE_IDS), tg_customer.chat_id, 0.0, 0.0)
    )
    assert texts(replies) == SYSTEM["location_invalid"]
    # the form was not disturbed: the next answer is read as the address and phone
    replies = tg_customer.say("龙湖区长平路88号3栋502，13812345678")
    assert "· 地址：龙湖区长平路88号3栋502" in texts(replies), replies
    assert "确认提交" in [b["text"] for b in inline_buttons(replies)]

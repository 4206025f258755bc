"""bot/core/normalize.py: customer text → contract values (spec §2), or a specific refusal."""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List, Sequence

import pytest

from bot.core.entities import normalize_entities
from bot.core.normalize import (
    InvalidValue,
    is_generic_request,
    mask_phone,
    normalize_text,
    parse_value,
)

TODAY = dt.date(2026, 11, 27)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("１３８１２３４５６７８", "13812345678"),
        ("１３８ 1234 5678", "13812345678"),
        ("138-1234-5678", "13812345678"),
        ("一三八一二三四五六七八", "13812345678"),
        ("幺三八 二七五六 四一零九", "13827564109"),
        ("+86 139 2233 4455", "13922334455"),
        ("我的电话是13812345678", "13812345678"),
        ("0754-88881234", "075488881234"),
        ("(0754)88881234", "075488881234"),
        ("０７５４－８８２１６６３０", "075488216630"),
    ],
)
def test_phone_forms(text: str, expected: str) -> None:
    assert parse_value("phone", text) == expected


@pytest.mark.parametrize(
    "text, reason",
    [
        ("1381234567", "mobile_wrong_length"),
        ("138123456789", "mobile_wrong_length"),
        ("88881234", "landline_without_area_code"),
        ("不告诉你", "not_a_phone"),
        ("12345678901", "not_a_phone"),
    ],
)
def test_phone_refusals_say_why(text: str, reason: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        parse_value("phone", text)
    assert refused.value.reason == reason


@pytest.mark.parametrize(
    "text, expected",
    [
        ("户号 0301 2345 678", "03012345678"),
        ("用电户号是030123456789", "030123456789"),
        ("0754012345678901", "0754012345678901"),
        ("０３０１２３４５６７", "0301234567"),
    ],
)
def test_account_numbers(text: str, expected: str) -> None:
    assert parse_value("account_no", text) == expected


@pytest.mark.parametrize("text", ["123456789", "12345678901234567", "没有户号"])
def test_account_numbers_out_of_range(text: str) -> None:
    with pytest.raises(InvalidValue):
        parse_value("account_no", text)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("GD20261127000123", "GD20261127000123"),
        ("gd20261127000123", "GD20261127000123"),
        ("工单号Gd 2026 1127 000123", "GD20261127000123"),
    ],
)
def test_ticket_numbers(text: str, expected: str) -> None:
    assert parse_value("ticket_no", text) == expected


def test_ticket_number_with_too_few_digits_is_refused() -> None:
    with pytest.raises(InvalidValue):
        parse_value("ticket_no", "GD2026112700012")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("50千瓦", 50),
        ("五十千瓦", 50),
        ("80kW", 80),
        ("100 KVA", 100),
        ("一百二十千瓦", 120),
        ("二点五千瓦", 2.5),
        ("３０ｋｗ", 30),
        ("80", 80),
    ],
)
def test_capacity(text: str, expected: float) -> None:
    assert parse_value("capacity_kw", text) == expected


@pytest.mark.parametrize("text", ["0千瓦", "很大", "9999999千瓦"])
def test_capacity_refused(text: str) -> None:
    with pytest.raises(InvalidValue):
        parse_value("capacity_kw", text)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("上个月", "2026-10"),
        ("上上个月", "2026-09"),
        ("这个月", "2026-11"),
        ("呢个月", "2026-11"),
        ("10月", "2026-10"),
        ("十二月份", "2025-12"),  # December has not come yet this year: last December
        ("2026年9月", "2026-09"),
        ("二零二五年三月", "2025-03"),
        ("去年12月", "2025-12"),
        ("旧年12月", "2025-12"),
    ],
)
def test_month(text: str, expected: str) -> None:
    from bot.core.normalize import parse_month

    assert parse_month(text, TODAY) == expected


@pytest.mark.parametrize(
    "kind, text, expected",
    [
        ("customer_type", "家里住宅", "居民"),
        ("customer_type", "商铺", "非居民"),
        ("customer_type", "工厂用电", "非居民"),
        ("customer_type", "非居民", "非居民"),
        ("customer_type", "屋企自己住", "居民"),
        ("change_direction", "加容量", "增容"),
        ("change_direction", "想减少容量", "减容"),
        ("change_direction", "減容", "减容"),
        ("customer_type", "我们的Shop要装表", "非居民"),
        ("customer_type", "新开的奶茶店", "非居民"),
        ("customer_type", "工場", "非居民"),
        ("customer_type", "出租屋", "居民"),
        ("change_direction", "想 Upgrade 一下", "增容"),
        ("change_direction", "唔使咁大容量", "减容"),
    ],
)
def test_words_to_codes(kind: str, text: str, expected: str) -> None:
    assert parse_value(kind, text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("潮南区峡山街道东山路12号", "潮南区峡山街道东山路12号"),
        ("地址是龙湖区长平路88号3栋502", "龙湖区长平路88号3栋502"),
        ("我家在金平區中山路120號", "金平区中山路120号"),
    ],
)
def test_addresses(text: str, expected: str) -> None:
    assert parse_value("address", text) == expected


@pytest.mark.parametrize("text", ["这里", "我家", "好的", "x" * 200])
def test_vague_or_absurd_addresses_are_refused(text: str) -> None:
    with pytest.raises(InvalidValue):
        parse_value("address", text)


@pytest.mark.parametrize(
    "text, expected", [("我叫陈伟明", "陈伟明"), ("户主是林秀英", "林秀英"), ("陈生", "陈生")]
)
def test_names(text: str, expected: str) -> None:
    assert parse_value("customer_name", text) == expected


@pytest.mark.parametrize("text", ["13812345678", "陈", "我叫"])
def test_names_refused(text: str) -> None:
    with pytest.raises(InvalidValue):
        parse_value("customer_name", text)


def test_text_normalisation_keeps_length_and_folds_width_and_script() -> None:
    original = "停電了，電費帳單１２３ＡＢＣ　好貴"
    normalised = normalize_text(original)
    assert len(normalised) == len(original)
    assert normalised == "停电了,电费帐单123ABC 好贵"


def test_generic_requests_are_not_descriptions() -> None:
    assert is_generic_request("我要投诉")
    assert is_generic_request("我想提个建议！")
    assert not is_generic_request("停电了")
    assert not is_generic_request("师傅态度很差")
    with pytest.raises(InvalidValue):
        parse_value("description", "我要投诉")


def test_long_descriptions_are_kept_with_a_marker() -> None:
    value = parse_value("description", "电" * 5000)
    assert value.startswith("电" * 100) and value.endswith("（以下略）")


def test_masking_for_logs() -> None:
    from bot.core.privacy import mask_personal_data

    assert mask_phone("13812345678") == "138****5678"
    masked = mask_personal_data("电话13812345678，户号030123456789")
    assert "13812345678" not in masked and "030123456789" not in masked
    assert "138****5678" in masked


@pytest.mark.parametrize(
    "text, name",
    [
        ("自建房要通电，我叫蔡少鸿，电话159 1803 2276", "蔡少鸿"),
        ("要过户，新户主是陈伟明", "陈伟明"),
        ("联系人：黄志强 13702468135", "黄志强"),
        ("户主系李嘉欣嘅", "李嘉欣"),
        ("申请人姓名:吴晓燕", "吴晓燕"),
    ],
)
def test_a_name_after_a_lead_in_is_found_without_the_statistical_extractor(
    text: str, name: str
) -> None:
    [entity] = normalize_entities(text, [], dt.date(2026, 12, 1))
    assert (entity["entity"], entity["value"]) == ("customer_name", name)
    assert text[entity["start"] : entity["end"]] == name


@pytest.mark.parametrize(
    "text", ["我是居民", "我想问下户主是谁怎么查", "我叫不出名字", "请打联系人电话13690225817"]
)
def test_words_after_a_lead_in_that_are_not_names_are_left_alone(text: str) -> None:
    assert normalize_entities(text, [], dt.date(2026, 12, 1)) == []


def _names(text: str, found: Sequence[Dict[str, Any]] = ()) -> List[Dict[str, Any]]:
    """The customer_name entities `normalize_entities` gives for a text."""
    return [
        e
        for e in normalize_entities(text, list(found), dt.date(2026, 12, 1))
        if e["entity"] == "customer_name"
    ]


@pytest.mark.parametrize(
    "text, name",
    [
        ("我系黄志明", "黄志明"),
        ("帮我过户给欧阳娜娜", "欧阳娜娜"),
        ("陈伟明", "陈伟明"),  # the whole answer to 「请问怎么称呼您」
        ("王伟 13800138000", "王伟"),  # a joint answer: two characters beside the phone
        ("13800138000，林小姐", "林小姐"),
        ("黄生", "黄生"),
    ],
)
def test_names_after_weak_cues_and_bare_names_need_a_common_surname(text: str, name: str) -> None:
    [entity] = _names(text)
    assert entity["value"] == name
    assert text[entity["start"] : entity["end"]] == name


@pytest.mark.parametrize(
    "text", ["方便", "马上", "谢谢你", "龙湖区", "高压线", "我是黄埔区的", "周末", "林子里", "先生"]
)
def test_words_that_start_like_a_surname_are_not_names(text: str) -> None:
    assert _names(text) == []


@pytest.mark.parametrize(
    "text, name",
    [
        ("名字叫那个许文杰", "许文杰"),
        ("户主写成黄丽娟", "黄丽娟"),
        ("联系人系陈国栋，电话等阵发过来", "陈国栋"),
        ("登记人填吴美玲就可以", "吴美玲"),
        ("my name is 蔡明辉", "蔡明辉"),
        ("户主是我爸林振华", "林振华"),
        ("我叫马志远然后电话等下发你", "马志远"),
        ("我叫佘晓东耳东陈的东", "佘晓东"),
        ("联西人梁志华", "梁志华"),
        ("contact person 何佩仪，电话等下发", "何佩仪"),
        ("新户主冯嘉欣🙏", "冯嘉欣"),
        ("权利人：邓国权", "邓国权"),
        ("新业主系我黎子健", "黎子健"),
    ],
)
def test_names_after_the_lead_ins_customers_also_use(text: str, name: str) -> None:
    [entity] = _names(text)
    assert entity["value"] == name


def test_a_name_listed_between_commas_beside_a_phone_is_found() -> None:
    text = "报修，黄国强，13912345678，金平区大华路"
    found = normalize_entities(text, [], dt.date(2026, 12, 1))
    assert [e["value"] for e in found if e["entity"] == "customer_name"] == ["黄国强"]
    # no number and no word about a name: a list of places is not a name
    assert normalize_entities("龙湖区，长平路，陈店镇", [], dt.date(2026, 12, 1)) == []


def test_a_statistical_name_with_other_edges_than_the_lead_in_gives_way() -> None:
    text = "联系人：陈淑仪女士，电话13912345678"
    guess = {"entity": "customer_name", "start": 4, "end": 9, "extractor": "CRF"}
    assert [e["value"] for e in _names(text, [guess])] == ["陈淑仪"]


def _address(text: str, piece: str, *more: str, as_annotated: bool = False) -> list:
    found = []
    for part in (piece, *more):
        start = text.index(part)
        found.append(
            {"entity": "address", "start": start, "end": start + len(part), "extractor": "CRF"}
        )
    return [
        e["value"]
        for e in normalize_entities(text, found, dt.date(2026, 12, 1), as_annotated=as_annotated)
        if e["entity"] == "address"
    ]


@pytest.mark.parametrize(
    "text, guess, address",
    [
        ("地址系潮南区两英镇", "潮南区两英", "潮南区两英镇"),
        ("我在金平区广厦街道金环路的店要装表", "金平区广厦街道", "金平区广厦街道金环路"),
        ("住龙胡区长平路", "区长平路", "龙胡区长平路"),  # the district written wrong
        ("龙湖区长平路88号，13912345678", "龙湖区长平路", "龙湖区长平路88号"),
        ("龙湖区长平路 30千瓦", "龙湖区长平", "龙湖区长平路"),  # a quantity is not a house number
        ("由龙湖区搬到金平区大华路8号", "龙湖区搬到金平区大华路8号", "金平区大华路8号"),
        (
            "潮南区陈店镇菜市场旁边那家五金店",
            "潮南区陈店镇菜市场旁边那家五金店",
            "潮南区陈店镇菜市场旁边那家五金店",
        ),
        (
            "报修 澄海区莲下镇槐东村北二巷5号 13912345678",
            "澄海区莲下镇槐东村",
            "澄海区莲下镇槐东村北二巷5号",
        ),
    ],
)
def test_an_address_span_grows_to_the_whole_chain_of_its_parts(
    text: str, guess: str, address: str
) -> None:
    assert _address(text, guess) == [address]


def test_two_pieces_of_one_address_are_one_address() -> None:
    assert _address("明天濠江区达濠停电吗", "濠江区", "达濠") == ["濠江区达濠"]


def test_an_annotation_is_scored_where_the_annotator_put_it() -> None:
    """The evaluation's gold values: no growing, no landmark, no name from a lead-in."""
    assert _address("地址系潮南区两英镇门口", "潮南区两英", as_annotated=True) == ["潮南区两英"]
    assert normalize_entities("我叫黄国强", [], dt.date(2026, 12, 1), as_annotated=True) == []


def _addresses_found(text: str, guesses: list) -> list:
    return [
        (e["entity"], e["value"])
        for e in normalize_entities(text, guesses, dt.date(2026, 12, 1))
        if e["entity"] in ("address", "customer_name")
    ]


def _guess(text: str, entity: str, piece: str) -> dict:
    start = text.index(piece)
    return {"entity": entity, "start": start, "end": start + len(piece), "extractor": "CRF"}


def test_an_address_from_a_city_on_is_found_without_the_extractor() -> None:
    assert _addresses_found("停电了，东莞市虎门镇，快点来", []) == [("address", "东莞市虎门镇")]
    # (the pipeline has made Traditional characters Simplified before this)
    assert _addresses_found("住宅位于潮州市湘桥区西湖路七十二号", []) == [
        ("address", "潮州市湘桥区西湖路七十二号")
    ]
    assert _addresses_found("厂在佛山市南海区狮山镇科技工业园C区6号，要报装", []) == [
        ("address", "佛山市南海区狮山镇科技工业园C区6号")
    ]


@pytest.mark.parametrize(
    "text, guess, address",
    [
        # the city before it
        ("地址在潮州市潮安区金石镇仙都村", "金石镇仙都村", "潮州市潮安区金石镇仙都村"),
        # a chain right before an extracted landmark
        ("就在阳春市马水镇加油站对面，白色那栋", "加油站对面", "阳春市马水镇加油站对面"),
    ],
)
def test_an_extracted_address_grows_to_the_chain_it_touches(
    text: str, guess: str, address: str
) -> None:
    assert _addresses_found(text, [_guess(text, "address", guess)]) == [("address", address)]


def test_an_address_read_as_a_name_is_an_address() -> None:
    text = "申请迁表，新位置在汕头市金平区民权路"
    assert _addresses_found(text, [_guess(text, "customer_name", "汕头市金平区民权路")]) == [
        ("address", "汕头市金平区民权路")
    ]


def test_of_two_addresses_around_a_move_the_one_after_it_is_kept() -> None:
    assert _addresses_found("表在龙湖区长平路，迁往金平区大华路8号", []) == [
        ("address", "金平区大华路8号")
    ]


@pytest.mark.parametrize("text", ["我去超市买东西", "龙湖区停电了", "明天市区会停电吗"])
def test_no_address_where_no_chain_of_parts_is_written(text: str) -> None:
    assert _addresses_found(text, []) == []


@pytest.mark.parametrize(
    "text, name",
    [
        ("我哋老屋重建，电表要移位，唔该安排师傅，梁太 13631745820", "梁太"),  # a title, listed
        ("想搬表返我自己墙度，湛江廉江市石城镇，黎生", "黎生"),  # listed, no number needed
        ("🏭工厂增容申请，谢总 📞13316672048", "谢总"),
        ("报装，程江镇扶大村，电话一三九二五七八四六一零，钟秀英", "钟秀英"),  # Chinese numerals
        ("梅州兴宁市宁新街道东门村，电话15889270316，李燕", "李燕"),  # two characters at the end
        ("佢叫苏炳坤，电话135 7036 2248", "苏炳坤"),
        ("电表系我阿爸何锦荣嘅名", "何锦荣"),
        ("由我老豆转俾我黎家俊，户口号码0305 7788 9900", "黎家俊"),
        ("电话是135 1298 4076，名字写陈淑芬就行", "陈淑芬"),
        ("本人邓志华于韶关市新建住宅一栋", "邓志华"),
        ("负责人邓国华，电话181 2766 0459", "邓国华"),
        ("唔该联络邓生 13549872601", "邓生"),
    ],
)
def test_names_signed_with_a_title_listed_or_after_a_relative(text: str, name: str) -> None:
    assert [e["value"] for e in _names(text)] == [name]


@pytest.mark.parametrize(
    "text",
    [
        "电话13800138000，谢谢",  # a two-character word beside the number, but no name
        "新户主姓名：邱伟南",  # 姓名 is the lead-in, not the name (the CRF finds 邱伟南)
        "联系方式13800138000",
        "我自己名字开的电表",
    ],
)
def test_lead_in_words_and_thanks_are_not_names(text: str) -> None:
    assert not {e["value"] for e in _names(text)} & {"谢谢", "姓名", "方式", "开的电表"}


def test_a_second_name_after_a_lead_in_is_kept_beside_the_first() -> None:
    text = "老公叫邓志刚，我是罗玉兰，电话13560397841"
    guess = _guess(text, "customer_name", "邓志刚")
    assert [e["value"] for e in _names(text, [guess])] == ["邓志刚", "罗玉兰"]


@pytest.mark.parametrize(
    "text, address",
    [
        ("我哋楼下个电箱冒烟啊！深圳龙华区民治街道，快啲嚟！", "深圳龙华区民治街道"),  # no 市
        ("📍江门市新会区司前镇 📞13726508419", "江门市新会区司前镇"),  # 会 is no word here
        ("我司肇庆市高要区金利镇五金工业园B区7号新建厂房", "肇庆市高要区金利镇五金工业园B区7号"),
        (
            "电箱着火了！！东莞市塘厦镇林村 13560928174",
            "东莞市塘厦镇林村",
        ),  # a one-character village
        ("地址清远市清城区石角镇马头村委五队，电话15913308846", "清远市清城区石角镇马头村委五队"),
        ("停电了，河源连平县元善镇市场旁边，电话13592816304", "河源连平县元善镇市场旁边"),
    ],
)
def test_addresses_of_the_whole_province_at_every_level(text: str, address: str) -> None:
    assert _addresses_found(text, []) == [("address", address)]


def test_an_account_number_run_on_into_a_year_ends_before_it() -> None:
    text = "我司对户号0346778899112026年10月电量有异议"
    start = text.index("0346")
    number = {
        "entity": "account_no",
        "start": start,
        "end": start + 16,
        "extractor": "RegexEntityExtractor",
    }
    found = normalize_entities(text, [number], dt.date(2026, 12, 1))
    assert [(e["entity"], e["value"]) for e in found] == [("account_no", "034677889911")]

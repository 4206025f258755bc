"""The NLU lint catches each class of problem on a seeded bad data set."""

from __future__ import annotations

from pathlib import Path
from typing import List

import pytest

from bot.tools.trainer.lint import Issue, lint

GOOD_FAULT = [
    "家里第一个房间没电了，麻烦派人来修",
    "厨房插座冒火花",
    "楼道灯全灭了",
    "空调一开就跳闸",
    "我家电压忽高忽低",
    "整栋楼都黑了",
    "电线被风吹断了挂在树上",
    "电表箱里面噼啪响",
    "冰箱插头烧焦了",
    "一打雷家里就没电",
]

BAD_DATA = """\
version: "3.1"
nlu:
- intent: report_fault
  examples: |
{fault}
    - 停电了怎么办
    - 电话[1381234567](phone)8 家里没电
    - 没电了，电话[ 13812345678](phone)
    - 我家跳闸了，我叫[我叫陈伟明](customer_name)
    - [工厂]{{"entity": "customer_type", "value": "居民"}}跳闸了
    - 楼下电表箱一直冒出嗡嗡的声音，请派人检查
- intent: query_outage
  examples: |
{outage}
    - 停电了怎么办
    - 楼下电表箱一直冒出嗡嗡的声音，请派人检查一下
- intent: thank
  examples: |
    - 谢谢
"""

TEST_SET = """\
version: "3.1"
nlu:
- intent: report_fault
  examples: |
    - 电话[13812345678](phone)家里没电
    - 家里第一个房间没电了，麻烦派人来修
    - 空调一开就会跳闸
    - 谢谢
"""


@pytest.fixture(scope="module")
def issues(tmp_path_factory: pytest.TempPathFactory) -> List[Issue]:
    root = tmp_path_factory.mktemp("lint")
    (root / "data").mkdir()
    (root / "tests").mkdir()
    outage = [f"请问{n}号那边什么时候来电" for n in range(1, 11)]
    text = BAD_DATA.format(
        fault="\n".join(f"    - {t}" for t in GOOD_FAULT),
        outage="\n".join(f"    - {t}" for t in outage),
    )
    (root / "data" / "bad.yml").write_text(text, encoding="utf-8")
    (root / "tests" / "holdout.yml").write_text(TEST_SET, encoding="utf-8")
    (root / "tests" / "floors.yml").write_text("intent_accuracy: 0.9\n", encoding="utf-8")
    return lint(root / "data", root / "tests")


def _of(issues: List[Issue], kind: str) -> List[str]:
    return sorted(i.text or i.intent for i in issues if i.kind == kind)


def test_same_text_under_two_intents(issues: List[Issue]) -> None:
    assert _of(issues, "conflict") == ["停电了怎么办", "停电了怎么办"]


def test_near_duplicates_across_intents_are_warnings(issues: List[Issue]) -> None:
    near = [i for i in issues if i.kind == "near_duplicate"]
    assert [i.text for i in near] == ["楼下电表箱一直冒出嗡嗡的声音，请派人检查一下"]
    assert not near[0].is_error


def test_intents_below_the_minimum_count(issues: List[Issue]) -> None:
    assert _of(issues, "too_few") == ["thank"]


def test_entity_spans_that_do_not_fit_the_text(issues: List[Issue]) -> None:
    assert _of(issues, "entity_span") == [
        "我家跳闸了，我叫我叫陈伟明",
        "没电了，电话 13812345678",
        "电话13812345678 家里没电",
    ]


def test_entity_values_that_disagree_with_the_normalised_form(issues: List[Issue]) -> None:
    assert _of(issues, "entity_value") == ["工厂跳闸了"]


def test_examples_leaking_from_the_test_set(issues: List[Issue]) -> None:
    # 谢谢 is in both too, but a stock phrase that short is not a leak; 空调一开就跳闸 is a
    # paraphrase of the test set's 空调一开就会跳闸, and the phone example of its 电话…家里没电.
    assert _of(issues, "leak") == [
        "家里第一个房间没电了，麻烦派人来修",
        "电话13812345678 家里没电",
        "空调一开就跳闸",
    ]


def test_clean_data_has_no_issue(tmp_path: Path) -> None:
    (tmp_path / "ok.yml").write_text(
        'version: "3.1"\nnlu:\n- intent: report_fault\n  examples: |\n'
        + "".join(f"    - {t}\n" for t in GOOD_FAULT),
        encoding="utf-8",
    )
    assert lint(tmp_path, None) == []


def test_a_paraphrase_is_found_whichever_test_item_shares_as_many_bigrams() -> None:
    """Two test items share 5 bigrams with the training text; only the shorter one is close
    enough. The lint used to look at one of them only, chosen by the set's hash order, so it
    reported the leak in some runs and not in others."""
    from bot.tools.trainer.lint import Example, leaks

    training = [Example("asdfghjkl", "unclear", (), "unclear.yml")]
    tests = [
        Example("sdfghjxyzuvw", "unclear", (), "unclear.yml"),  # 5 shared of 12: not close
        Example("sdfghj", "unclear", (), "unclear.yml"),  # 5 shared of 8: a paraphrase
    ]
    for order in (tests, list(reversed(tests))):
        [issue] = leaks(training, order, min_chars=4, similarity=0.6)
        assert "sdfghj」" in issue.detail

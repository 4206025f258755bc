"""Which branch office (供电所 / 营业厅) serves an address, from config/areas.yml `branches`.

A town named in the address wins over its district (潮南区峡山街道 → the branch listing 峡山);
among several matches the longest name wins. An address matching no branch is unassigned.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from bot.core.catalog import load_catalog
from bot.core.settings import get_settings


def _names() -> List[Tuple[str, str]]:
    """(a town or district name, its branch), towns first, then longest name first."""
    towns: List[Tuple[str, str]] = []
    districts: List[Tuple[str, str]] = []
    for branch in get_settings().areas.branches:
        towns.extend((town, branch.name) for town in branch.towns if town)
        districts.extend((district, branch.name) for district in branch.districts if district)
    by_length = lambda pair: -len(pair[0])  # noqa: E731 - a sort key
    return sorted(towns, key=by_length) + sorted(districts, key=by_length)


def find_branch(address: Optional[str]) -> Optional[str]:
    """The branch serving `address`, or None when no town or district of a branch is in it."""
    if not address:
        return None
    for name, branch in _names():
        if name in address:
            return branch
    return None


def unassigned_label() -> str:
    """What staff read for a ticket without a branch (catalog labels.reports.unassigned)."""
    return str(load_catalog().labels.get("reports", {}).get("unassigned", "-"))


def branch_of(address: Optional[str]) -> str:
    """The branch serving `address`, or the unassigned label (未分配)."""
    return find_branch(address) or unassigned_label()


def branch_names() -> List[str]:
    """The configured branches in configuration order."""
    return [branch.name for branch in get_settings().areas.branches]

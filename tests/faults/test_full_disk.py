"""The disk under var/ fills up mid-conversation (a small tmpfs, filled to the last byte): the
customer gets the polite apology instead of silence or a half-written ticket, no process dies,
and once space is back the same conversation goes on where it was and files exactly one ticket.

A stack of its own (its SQLite databases on the small disk); logs stay on the big disk so the
evidence survives the fault.
"""

from __future__ import annotations

import errno
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest
import requests

from bench.stack import throwaway_stack
from bot.core.catalog import load_catalog
from bot.core.settings import PROJECT_ROOT
from bot.tools.runner import Stack
from tests.e2e.test_service_requests import asked_field
from tests.stack import MODEL, Api, Customer, texts

DISK_SIZE = "64m"
BUSY = load_catalog().system_messages["busy"]


@pytest.fixture(scope="module")
def small_disk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    mount = tmp_path_factory.mktemp("small-disk")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture(scope="module")
def disk_stack(small_disk: Path) -> Iterator[Stack]:
    logs = PROJECT_ROOT / "reports" / "e2e-logs" / f"full-disk-{time.strftime('%Y%m%d-%H%M%S')}"
    with throwaway_stack(
        str(MODEL),
        "intake-full-disk-",
        {"INTAKE_API_TOKEN": "e2e-test-token", "INTAKE_RATE_LIMITS": "off"},
        var_dir=small_disk / "var",
        log_dir=logs,
    ) as stack:
        yield stack


class Filler:
    """Fills the small disk to the last byte, and frees it again."""

    def __init__(self, disk: Path) -> None:
        self.path = disk / "filler.bin"

    def fill(self) -> None:
        chunk = b"\0" * (1 << 20)
        with open(self.path, "ab", buffering=0) as out:
            for size in (1 << 20, 1 << 12, 1):
                try:
                    while True:
                        out.write(chunk[:size])
                except OSError as error:
                    assert error.errno == errno.ENOSPC, error

    def free(self) -> None:
        self.path.unlink(missing_ok=True)


def all_alive(stack: Stack) -> bool:
    return all(process.poll() is None for process in stack.processes.values())


def test_a_full_disk_costs_an_apology_and_nothing_else(disk_stack: Stack, small_disk: Path) -> None:
    """Mid-form and at the filing: the turn the disk refused is answered with the apology
    (never with the reply of a turn that was not saved), and the customer's retry goes on."""
    customer, api, disk = Customer(disk_stack), Api(disk_stack), Filler(small_disk)
    assert asked_field(customer.say("我要办过户")) == "account_no"

    disk.fill()
    try:
        replies = customer.say("0301234567890")
        assert texts(replies) == BUSY, customer.transcript
        assert all_alive(disk_stack)
    finally:
        disk.free()
    assert asked_field(customer.say("0301234567890")) == "customer_name", customer.transcript
    summary = customer.say("陈伟明，13812345678")
    assert "确认提交" in str(summary), customer.transcript

    disk.fill()
    try:
        replies = customer.click(summary, "确认提交")
        assert texts(replies) == BUSY, customer.transcript
        # the JSON API says the database cannot be read now (a new SQLite connection needs
        # disk for its WAL index): a clear 503, not a bare 500
        refused = requests.get(
            f"http://127.0.0.1:{disk_stack.settings.console_port}/api/v1/tickets",
            params={"conversation_id": customer.sender},
            headers={"Authorization": "Bearer e2e-test-token"},
            timeout=10,
        )
        assert refused.status_code in (200, 503), refused.text
        if refused.status_code == 503:
            assert refused.json()["detail"] == load_catalog().staff_messages["database_unavailable"]
        else:
            assert refused.json() == [], "a ticket filed on a full disk"
        assert all_alive(disk_stack)
    finally:
        disk.free()
    done = customer.click(summary, "确认提交")
    [ticket] = api.tickets(customer.sender)
    assert ticket["ticket_no"] in texts(done), customer.transcript
    assert ticket["details"]["account_no"] == "0301234567890"
    assert ticket["details"]["customer_name"] == "陈伟明"

"""Chat with the running assistant in a terminal (`make shell`), through the REST channel.

Buttons are shown numbered; type the number to press one. Ctrl-D or /quit ends.
"""

from __future__ import annotations

import os
import sys
import uuid

import requests

URL = f"http://127.0.0.1:{os.environ.get('RASA_PORT', '5005')}/webhooks/rest/webhook"


def main() -> None:
    sender = f"shell-{uuid.uuid4().hex[:12]}"
    buttons: list = []
    print(f"供电业务受理助手 — 对话 {sender}（输入 /quit 结束）")
    while True:
        try:
            text = input("您：").strip()
        except EOFError:
            break
        if text == "/quit":
            break
        if text.isdigit() and 0 < int(text) <= len(buttons):
            text = buttons[int(text) - 1]["payload"]
        try:
            replies = requests.post(
                URL, json={"sender": sender, "message": text}, timeout=60
            ).json()
        except requests.RequestException as error:
            print(f"（连接不上助手：{error}。先在另一个终端运行 make run）", file=sys.stderr)
            continue
        buttons = []
        for reply in replies:
            print(f"助手：{reply.get('text', '')}")
            for button in reply.get("buttons", []):
                buttons.append(button)
                print(f"   [{len(buttons)}] {button['title']}")


if __name__ == "__main__":
    main()

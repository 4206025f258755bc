"""The console's calls to Rasa's HTTP API (``--enable-api``; ``?token=`` when RASA_TOKEN is set).

* transcript: ``GET /conversations/{id}/tracker``
* agent reply / notices: ``POST /conversations/{id}/tracker/events`` with
  ``output_channel`` and ``execute_side_effects=true`` — the bot event is stored in the
  tracker (the transcript stays whole) and sent through the customer's channel
* hand back: a ``resume`` event, then ``POST /conversations/{id}/execute`` of the rating form
* the trainer's 「上线」/「回退」: ``PUT /model`` ``{"model_file": path}`` (answers 204 once the
  server serves it), ``GET /status`` (the model it serves)
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional
from urllib.parse import quote

import requests

from bot.core.settings import Settings

TIMEOUT_S = 15
# The header with which the console's web chat vouches for its `web-` senders to the REST channel.
WEBCHAT_SECRET_HEADER = "X-Intake-Webchat-Secret"


class RasaError(RuntimeError):
    """Rasa did not accept the call."""


class RasaClient:
    """Thin synchronous client (the console runs it in a worker thread)."""

    def __init__(
        self,
        settings: Settings,
        http: Optional[requests.Session] = None,
        timeout_s: float = TIMEOUT_S,
        base_url: Optional[str] = None,
    ) -> None:
        self.base = (base_url or settings.rasa_url).rstrip("/")
        self.token = settings.rasa_token
        self.http = http or requests.Session()
        self.timeout_s = timeout_s

    def _url(self, conversation_id: str, tail: str) -> str:
        return f"{self.base}/conversations/{quote(conversation_id, safe='')}/{tail}"

    def _params(self, **extra: Any) -> Dict[str, Any]:
        params = {key: value for key, value in extra.items() if value is not None}
        if self.token:
            params["token"] = self.token
        return params

    def _call(self, method: str, url: str, expect_json: bool = True, **kwargs: Any) -> Any:
        where = f"{method} {url.split('?')[0]}"
        try:
            response = self.http.request(method, url, timeout=self.timeout_s, **kwargs)
        except requests.RequestException as error:
            # requests' messages name the URL without the query (where the token is)
            raise RasaError(f"{where}: {type(error).__name__}: {error}") from error
        if response.status_code >= 400:
            raise RasaError(f"{where}: HTTP {response.status_code} {_rasa_message(response)}")
        if not expect_json:
            return None
        try:
            return response.json()
        except ValueError as error:
            raise RasaError(f"{where}: answer is not JSON") from error

    def events(self, conversation_id: str) -> List[Dict[str, Any]]:
        """The tracker's events (after the last restart)."""
        tracker = self._call("GET", self._url(conversation_id, "tracker"), params=self._params())
        events = tracker.get("events") if isinstance(tracker, dict) else None
        if not isinstance(events, list):
            raise RasaError("tracker without an events list")
        return events

    def append(
        self, conversation_id: str, events: List[Dict[str, Any]], output_channel: str
    ) -> None:
        """Append events; bot events among them go out through `output_channel`."""
        self._call(
            "POST",
            self._url(conversation_id, "tracker/events"),
            params=self._params(output_channel=output_channel, execute_side_effects="true"),
            json=events,
        )

    def say(self, conversation_id: str, text: str, output_channel: str, agent: str) -> None:
        """Send an agent's message to the customer (a bot event with metadata.agent)."""
        event = {
            "event": "bot",
            "text": text,
            "timestamp": time.time(),
            "metadata": {"agent": agent},
        }
        self.append(conversation_id, [event], output_channel)

    def execute(self, conversation_id: str, action: str, output_channel: str) -> Dict[str, Any]:
        """Run one action of the assistant now (its messages go out through the channel)."""
        return self._call(
            "POST",
            self._url(conversation_id, "execute"),
            params=self._params(output_channel=output_channel),
            json={"name": action},
        )

    def load_model(self, model_file: str) -> None:
        """Make the server serve `model_file` (a path on the server's machine)."""
        self._call(
            "PUT",
            f"{self.base}/model",
            expect_json=False,
            params=self._params(),
            json={"model_file": model_file},
        )

    def status(self) -> Dict[str, Any]:
        """``GET /status``: the served model's file and fingerprint."""
        answer = self._call("GET", f"{self.base}/status", params=self._params())
        return answer if isinstance(answer, dict) else {}


def _rasa_message(response: requests.Response) -> str:
    """Rasa's own explanation of an error answer (its JSON "message"), briefly."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return (
        str(body.get("message") or body.get("reason") or "")[:200] if isinstance(body, dict) else ""
    )

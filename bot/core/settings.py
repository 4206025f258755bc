"""The one reader of configuration: environment variables and the files under config/.

Every process (Rasa plug-ins, the action server, the console, the tools) calls
`get_settings()`, which builds one frozen `Settings` the first time and returns the same
object afterwards, so a value is parsed once per process and every default is written once,
here. Configuration is read at start-up: change the environment or a file, then restart.
Tests build their own `Settings(...)` or call `reset_settings()` after changing the
environment.

    from bot.core.settings import get_settings
    settings = get_settings()
    settings.database_url, settings.service.handoff.claim_wait_minutes, settings.areas.districts

`.env.example` lists every variable below (a test compares the two).
"""

from __future__ import annotations

import secrets
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import yaml
from pydantic import BaseModel, BaseSettings, Field, validator

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
CONFIG_DIR = PROJECT_ROOT / "config"
# The `env` name of fields read from config/*.yml, never from the environment.
FILE_ONLY = "INTAKE_FROM_CONFIG_FILE_ONLY"


class _Section(BaseModel):
    """A part of a configuration file: typed, immutable, unknown keys refused."""

    class Config:
        allow_mutation = False
        extra = "forbid"


# ------------------------------------------------------------------ config/service.yml


class DutyHours(_Section):
    start: str = "00:00"
    end: str = "24:00"


class HandoffConfig(_Section):
    duty_hours: DutyHours = DutyHours()
    claim_wait_minutes: float = 10


class DialogueConfig(_Section):
    fallbacks_before_handoff: int = 2
    validation_failures_before_handoff: int = 3
    just_filed_minutes: float = 30


class NotificationsConfig(_Section):
    retry_after_seconds: Tuple[float, ...] = (30, 120, 600, 1800, 7200)
    check_every_seconds: float = 10


class LimitsConfig(_Section):
    """What one customer (or one address) may send, before any processing."""

    message_max_chars: int = 2000
    body_max_bytes: int = 64 * 1024
    messages_per_sender_per_minute: int = 30
    messages_per_ip_per_minute: int = 120
    handoffs_per_sender_per_hour: int = 3
    handoffs_per_ip_per_hour: int = 10
    # Proxies whose X-Forwarded-For is believed (the nginx in front of the servers).
    trusted_proxies: Tuple[str, ...] = ("127.0.0.1", "::1")


class ConsoleSecurityConfig(_Section):
    """Sign-in throttling, lockout and sessions of the staff console."""

    failures_before_lockout: int = 5
    lockout_minutes: float = 15
    attempts_per_ip_per_15_minutes: int = 30
    session_hours: float = 12  # absolute: a session ends this long after sign-in
    password_min_length: int = 10


class RetentionConfig(_Section):
    """How long personal data is kept (PIPL: no longer than needed); 0 keeps forever."""

    tracker_days: int = 180
    closed_ticket_personal_data_days: int = 365
    inbox_days: int = 90
    purge_every_hours: float = 24


class ForwardRetryConfig(_Section):
    """Bounded retries of one outbound item, then a dead letter (bot/core/dead_letters.py).

    Attempt n+1 waits `retry_after_seconds[n-1]` (the last wait repeats); after
    `max_attempts` failed attempts the item is recorded as a dead letter and skipped."""

    max_attempts: int = 5
    retry_after_seconds: Tuple[float, ...] = (1, 2, 5, 15)

    @validator("max_attempts")
    def _at_least_one(cls, value: int) -> int:
        if value < 1:
            raise ValueError("at least 1")
        return value

    @validator("retry_after_seconds")
    def _some_waits(cls, value: Tuple[float, ...]) -> Tuple[float, ...]:
        if not value or any(wait < 0 for wait in value):
            raise ValueError("give at least one wait, none negative")
        return value

    def wait_before(self, attempt: int) -> float:
        """Seconds to wait before attempt `attempt` (2, 3, …)."""
        index = min(max(attempt - 2, 0), len(self.retry_after_seconds) - 1)
        return float(self.retry_after_seconds[index])


class TelegramPollConfig(_Section):
    """`python -m bot telegram poll`: forwarding each update to the Rasa server."""

    forward: ForwardRetryConfig = ForwardRetryConfig()


class TelegramWebhookConfig(_Section):
    """Telegram's webhook: how long an update being handled holds off its retries."""

    in_progress_seconds: float = 20
    wait_seconds: float = 20  # a re-delivery waits this long for the turn under way to end


class MediaConfig(_Section):
    """Photos customers send (bot/core/media): what is accepted and how long a staff link lasts."""

    max_bytes: int = 10 * 1024 * 1024
    max_per_ticket: int = 9
    min_side_px: int = 32  # smaller is no photo of anything (a tracking pixel, a mistake)
    max_pixels: int = 40_000_000  # a decompression bomb is refused before it is decoded
    thumbnail_px: int = 320
    link_minutes: float = 10  # staff links are signed and stop working after this long
    held_days: int = 7  # photos never attached to a ticket are deleted after this long


class EscalationLevel(_Section):
    """One level of escalation: reached `multiple` times a ticket's time limit after filing,
    sent to `to` ("{department}" is the ticket's department)."""

    to: str
    multiple: float

    @validator("multiple")
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be positive")
        return value


class EscalationConfig(_Section):
    """Escalation of tickets not resolved on time (bot/core/tickets/escalation.py): level n
    is `levels[n-1]`; the levels' multiples must grow."""

    levels: Tuple[EscalationLevel, ...] = (
        EscalationLevel(to="{department}", multiple=1),
        EscalationLevel(to="{department}", multiple=2),
    )

    @validator("levels")
    def _growing(cls, value: Tuple[EscalationLevel, ...]) -> Tuple[EscalationLevel, ...]:
        multiples = [level.multiple for level in value]
        if multiples != sorted(set(multiples)):
            raise ValueError("each level's multiple must be larger than the one before")
        return value


class ServiceConfig(_Section):
    escalation: EscalationConfig = EscalationConfig()
    handoff: HandoffConfig = HandoffConfig()
    dialogue: DialogueConfig = DialogueConfig()
    notifications: NotificationsConfig = NotificationsConfig()
    limits: LimitsConfig = LimitsConfig()
    console: ConsoleSecurityConfig = ConsoleSecurityConfig()
    retention: RetentionConfig = RetentionConfig()
    telegram_poll: TelegramPollConfig = TelegramPollConfig()
    telegram_webhook: TelegramWebhookConfig = TelegramWebhookConfig()
    media: MediaConfig = MediaConfig()


# ------------------------------------------------------------------ config/areas.yml


class Town(_Section):
    """A place a shared location is named after: the nearest one within `max_km`."""

    name: str  # as an address begins: 潮南区峡山街道
    district: str  # a key of `districts`
    lat: float
    lon: float


class Branch(_Section):
    """A branch office (供电所 / 营业厅) and the districts and towns it serves."""

    name: str  # 金平供电所
    districts: Tuple[str, ...] = ()  # keys of `districts`
    towns: Tuple[str, ...] = ()  # names found in an address (峡山, 陈店): win over the district


class AreasConfig(_Section):
    default: str = "urban"
    districts: Dict[str, str] = {}
    towns: Tuple[Town, ...] = ()
    branches: Tuple[Branch, ...] = ()
    # Cities a customer may write before the district (汕头市金平区…, 揭阳市普宁市…): where an
    # address begins when they do (bot/core/addresses.py).
    cities: Tuple[str, ...] = ()
    # The other districts and counties of the province: address parts known by name.
    counties: Tuple[str, ...] = ()
    max_km: float = 15  # a location farther from every town is outside the service area
    map_link: str = ""  # staff's link for a location, e.g. "https://maps.example/?q={lat},{lon}"


# ------------------------------------------------------------------ config/holidays.yml


class HolidayYear(_Section):
    holidays: Tuple[date, ...] = ()
    workdays: Tuple[date, ...] = ()


# ------------------------------------------------------------------ config/trainer.yml


class InboxConfig(_Section):
    confidence_margin: float = 0.6
    reaction_turns: int = 2
    reaction_intents: Dict[str, str] = {}
    correction_cues: Tuple[str, ...] = ()
    not_blamed_intents: Tuple[str, ...] = ()
    not_blamed_max_chars: int = 6


class LintConfig(_Section):
    min_examples_per_intent: int = 10
    near_duplicate_similarity: float = 0.9
    leak_min_chars: int = 6
    leak_similarity: float = 0.6


class PiiConfig(_Section):
    name_cues: Tuple[str, ...] = ()
    house_number_units: Tuple[str, ...] = ()


class RetrainConfig(_Section):
    """The trainer's 「训练新模型」: what a candidate is trained from and when it may go live."""

    config: Path = Path("config.yml")  # relative paths are the project's
    domain: Path = Path("domain")
    data: Path = Path("data")
    holdout: Path = Path("tests/nlu/holdout.yml")
    models_dir: Path = Path("models")  # candidates/ and previous/ are kept here
    live_model: Path = Path("models/intake.tar.gz")  # what the runner starts Rasa with
    overall_margin: float = 0.005  # accuracy and macro-F1 may drop by at most this
    intent_margin: float = 0.05  # and any intent's F1 by at most this
    load_timeout_s: float = 300  # one Rasa server loading a model (PUT /model)
    stale_after_s: float = 120  # a run whose worker has not reported for this long failed

    def path(self, name: str) -> Path:
        """One of the paths above, resolved against the project folder."""
        value = Path(getattr(self, name))
        return value if value.is_absolute() else PROJECT_ROOT / value


class TrainerConfig(_Section):
    inbox: InboxConfig = InboxConfig()
    lint: LintConfig = LintConfig()
    pii: PiiConfig = PiiConfig()
    retrain: RetrainConfig = RetrainConfig()


def _read_yaml(path: Path) -> Dict[Any, Any]:
    if not path.exists():
        return {}
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


class Settings(BaseSettings):
    """Resolved settings of one process (environment variable names in `env=`)."""

    # ports, addresses, files
    bind_host: str = Field("127.0.0.1", env="BIND_HOST")
    rasa_port: int = Field(5005, env="RASA_PORT")
    action_port: int = Field(5055, env="ACTION_PORT")
    console_port: int = Field(8000, env="CONSOLE_PORT")
    var_dir: Path = Field(PROJECT_ROOT / "var", env="INTAKE_VAR_DIR")
    database_url_override: str = Field("", env="DATABASE_URL")
    rasa_url_override: str = Field("", env="RASA_URL")
    # every Rasa server a new model goes live on (comma-separated; default: RASA_URL's one)
    rasa_server_urls_env: str = Field("", env="INTAKE_RASA_SERVER_URLS")
    rasa_tracker_db: str = Field("", env="RASA_TRACKER_DB")
    rasa_tracker_url: str = Field("", env="RASA_TRACKER_URL")
    timezone: str = Field("Asia/Shanghai", env="INTAKE_TIMEZONE")
    seed_demo: Optional[bool] = Field(None, env="INTAKE_SEED_DEMO")
    nlu_dir: Path = Field(PROJECT_ROOT / "data" / "nlu", env="INTAKE_NLU_DIR")
    catalog_path: Path = Field(PROJECT_ROOT / "bot" / "catalog.yml", env="INTAKE_CATALOG")
    service_config: Path = Field(CONFIG_DIR / "service.yml", env="INTAKE_SERVICE_CONFIG")
    trainer_config: Path = Field(CONFIG_DIR / "trainer.yml", env="INTAKE_TRAINER_CONFIG")
    # secrets (created once under var/ when unset, see `secret`)
    api_token_env: str = Field("", env="INTAKE_API_TOKEN")
    rasa_token_env: str = Field("", env="RASA_TOKEN")
    console_secret_key: str = Field("", env="CONSOLE_SECRET_KEY")
    webchat_secret_env: str = Field("", env="INTAKE_WEBCHAT_SECRET")
    action_token_env: str = Field("", env="ACTION_SERVER_TOKEN")
    action_bind_host: str = Field("127.0.0.1", env="ACTION_BIND_HOST")
    # shared stores (dedup, nonces, menus, rate limits, the WeChat access token): Redis or memory
    redis_url: str = Field("", env="INTAKE_REDIS_URL")
    redis_prefix: str = Field("intake:", env="INTAKE_REDIS_PREFIX")  # every key, and Rasa's locks
    # the production profile (`python -m bot run --profile prod`)
    rabbitmq_url: str = Field("amqp://guest:guest@127.0.0.1:5672/", env="RABBITMQ_URL")
    rabbitmq_queue: str = Field("intake_events", env="RABBITMQ_QUEUE")
    rasa_servers: int = Field(2, env="INTAKE_SERVERS")  # Rasa + action server pairs
    door_port: int = Field(8080, env="INTAKE_DOOR_PORT")  # nginx, the one door
    encoder_threads: int = Field(0, env="INTAKE_ENCODER_THREADS")  # 0: as the model says
    # Rasa's conversation lock (Redis in the production profile) outlives a server killed in
    # mid-turn by this long; under nginx's 30 s read timeout, so the customer's next try gets in
    lock_lifetime_s: int = Field(15, env="TICKET_LOCK_LIFETIME")
    rate_limits: str = Field("on", env="INTAKE_RATE_LIMITS")
    # photos: files under var/media (local) or an S3-compatible object store (s3)
    media_backend: str = Field("local", env="INTAKE_MEDIA_BACKEND")
    media_dir_override: str = Field("", env="INTAKE_MEDIA_DIR")
    s3_endpoint_url: str = Field("", env="S3_ENDPOINT_URL")
    s3_bucket: str = Field("intake-media", env="S3_BUCKET")
    s3_region: str = Field("us-east-1", env="S3_REGION")
    s3_access_key_id: str = Field("", env="S3_ACCESS_KEY_ID")
    s3_secret_access_key: str = Field("", env="S3_SECRET_ACCESS_KEY")
    # console
    console_https_only: bool = Field(True, env="CONSOLE_HTTPS_ONLY")  # 0: plain local HTTP
    console_sweep_seconds: float = Field(30, env="CONSOLE_SWEEP_SECONDS")
    # billing system
    billing_api_url: str = Field("", env="BILLING_API_URL")
    billing_api_token: str = Field("", env="BILLING_API_TOKEN")
    billing_api_timeout: float = Field(5.0, env="BILLING_API_TIMEOUT")
    # Telegram
    telegram_bot_token: str = Field("", env="TELEGRAM_BOT_TOKEN")
    telegram_webhook_secret: str = Field("", env="TELEGRAM_WEBHOOK_SECRET")
    telegram_api_base_url: str = Field("https://api.telegram.org/bot", env="TELEGRAM_API_BASE_URL")
    # WeChat
    wechat_token: str = Field("", env="WECHAT_TOKEN")
    wechat_encoding_aes_key: str = Field("", env="WECHAT_ENCODING_AES_KEY")
    wechat_app_id: str = Field("", env="WECHAT_APP_ID")
    wechat_app_secret: str = Field("", env="WECHAT_APP_SECRET")
    wechat_api_base_url: str = Field(
        "https://api.weixin.qq.com/cgi-bin/", env="WECHAT_API_BASE_URL"
    )
    wechat_reply_budget_s: float = Field(4.5, env="WECHAT_REPLY_BUDGET_S")
    # files under config/ (read by `load_settings`, never from the environment)
    service: ServiceConfig = Field(ServiceConfig(), env=FILE_ONLY)
    areas: AreasConfig = Field(AreasConfig(), env=FILE_ONLY)
    holidays: Dict[int, HolidayYear] = Field({}, env=FILE_ONLY)
    trainer: TrainerConfig = Field(TrainerConfig(), env=FILE_ONLY)

    class Config:
        allow_mutation = False

    @validator(
        "telegram_bot_token",
        "telegram_webhook_secret",
        "telegram_api_base_url",
        "wechat_token",
        "wechat_encoding_aes_key",
        "wechat_app_id",
        "wechat_app_secret",
        "wechat_api_base_url",
        "redis_url",
        "rasa_token_env",
        "api_token_env",
        "console_secret_key",
        "webchat_secret_env",
        "action_token_env",
        "database_url_override",
        "rasa_url_override",
        "rasa_server_urls_env",
        "billing_api_url",
        "billing_api_token",
        "rasa_tracker_db",
        "rasa_tracker_url",
        "media_dir_override",
        "s3_endpoint_url",
        "s3_access_key_id",
        "s3_secret_access_key",
        pre=True,
    )
    def _blank_placeholder(cls, value: Any) -> Any:
        """Blank values and an unexpanded `${…}` placeholder (credentials.yml) read as unset."""
        text = str(value or "").strip()
        return "" if text.startswith("${") else text

    @validator(
        "seed_demo",
        "console_sweep_seconds",
        "billing_api_timeout",
        "wechat_reply_budget_s",
        pre=True,
    )
    def _blank_is_default(cls, value: Any, field: Any) -> Any:
        return field.default if isinstance(value, str) and not value.strip() else value

    # ------------------------------------------------------------ derived values

    @property
    def database_url(self) -> str:
        """DATABASE_URL, else SQLite under var/ (``postgres://`` accepted as an alias)."""
        url = self.database_url_override or f"sqlite:///{self.var_dir / 'intake.db'}"
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://") :]
        return url

    @property
    def rasa_url(self) -> str:
        """Base URL of the Rasa server as seen from this machine."""
        host = "127.0.0.1" if self.bind_host in ("0.0.0.0", "::") else self.bind_host
        return self.rasa_url_override or f"http://{host}:{self.rasa_port}"

    @property
    def rasa_server_urls(self) -> List[str]:
        """Every Rasa server (a model goes live on each): INTAKE_RASA_SERVER_URLS, else rasa_url."""
        urls = [u.strip().rstrip("/") for u in self.rasa_server_urls_env.split(",") if u.strip()]
        return urls or [self.rasa_url]

    @property
    def tracker_db_path(self) -> Path:
        """Rasa's SQLite tracker store of the embedded profile."""
        return Path(self.rasa_tracker_db) if self.rasa_tracker_db else self.var_dir / "tracker.db"

    @property
    def media_dir(self) -> Path:
        """Where the local media store keeps photos (INTAKE_MEDIA_DIR, else var/media)."""
        return Path(self.media_dir_override) if self.media_dir_override else self.var_dir / "media"

    @property
    def api_token_file(self) -> Path:
        return self.var_dir / "api_token"

    @property
    def demo_data_wanted(self) -> bool:
        """Seed demo bills and outages: INTAKE_SEED_DEMO, else only on the embedded SQLite."""
        if self.seed_demo is not None:
            return self.seed_demo
        return self.database_url.startswith("sqlite")

    def secret(self, value: str, file_name: str, length: int = 32) -> str:
        """`value` when set, else a secret kept under var/ (created once, mode 600)."""
        if value:
            return value
        path = self.var_dir / file_name
        if path.exists():
            return path.read_text(encoding="utf-8").strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        created = secrets.token_urlsafe(length)
        while created.startswith(
            "-"
        ):  # one that begins with "-" reads as an option on a command line
            created = secrets.token_urlsafe(length)
        path.write_text(created + "\n", encoding="utf-8")
        path.chmod(0o600)
        return created

    def api_token(self) -> str:
        """The JSON API bearer token: INTAKE_API_TOKEN, else var/api_token."""
        return self.secret(self.api_token_env, self.api_token_file.name)

    @property
    def rate_limits_on(self) -> bool:
        """INTAKE_RATE_LIMITS=off turns the rate limits off (load tests, evaluations)."""
        return self.rate_limits.strip().lower() not in ("off", "0", "false", "no")

    @property
    def rasa_token(self) -> str:
        """The token of Rasa's HTTP API: RASA_TOKEN, else var/rasa_token (created once).

        Rasa's API is never open: the runner starts Rasa with this token and every process
        that calls the API reads the same value."""
        return self.secret(self.rasa_token_env, "rasa_token")

    def action_token(self) -> str:
        """The token Rasa sends the action server: ACTION_SERVER_TOKEN, else var/action_token."""
        return self.secret(self.action_token_env, "action_token")

    def webchat_secret(self) -> str:
        """What the console's web chat shows the REST channel to speak for `web-` senders."""
        return self.secret(self.webchat_secret_env, "webchat_secret")

    def console_session_key(self) -> str:
        """The console's cookie-signing key: CONSOLE_SECRET_KEY, else var/console_secret."""
        return self.secret(self.console_secret_key, "console_secret", length=48)


def environment_variables() -> List[str]:
    """The names of every environment variable `Settings` reads (for .env.example's test)."""
    return sorted(
        str(field.field_info.extra["env"])
        for field in Settings.__fields__.values()
        if field.field_info.extra["env"] != FILE_ONLY
    )


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment and config/ (no caching: see `get_settings`)."""
    environment = Settings(**overrides)
    files: Dict[str, Any] = {
        "service": ServiceConfig.parse_obj(_read_yaml(environment.service_config)),
        "areas": AreasConfig.parse_obj(_read_yaml(CONFIG_DIR / "areas.yml")),
        "holidays": {
            int(year): HolidayYear.parse_obj(spec or {})
            for year, spec in _read_yaml(CONFIG_DIR / "holidays.yml").items()
        },
        "trainer": TrainerConfig.parse_obj(_read_yaml(environment.trainer_config)),
    }
    files.update({k: v for k, v in overrides.items() if k in files})
    return environment.copy(update=files)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read once."""
    return load_settings()


def reset_settings() -> None:
    """Forget the cached settings (tests that change the environment)."""
    get_settings.cache_clear()

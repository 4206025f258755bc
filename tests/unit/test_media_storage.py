"""Where photo files live (bot/core/media/storage.py): a directory, or an S3 object store.

The S3 tests talk to a real S3 API: moto's standalone server on a loopback port, started once
for this module from the tools venv (`make tools` installs it in .venv-tools; MOTO_SERVER may
name another moto_server binary). Without it they are skipped, saying so.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any, Iterator, List

import pytest
import requests

from bot.core.media import storage
from bot.core.media.storage import (
    LocalMediaStore,
    MediaNotFound,
    MediaStoreError,
    S3MediaStore,
    make_media_store,
    media_store,
)
from bot.core.settings import PROJECT_ROOT, Settings

MOTO_SERVER = Path(
    os.environ.get("MOTO_SERVER") or PROJECT_ROOT / ".venv-tools" / "bin" / "moto_server"
)

BAD_KEYS = [
    "../outside.jpg",
    "2026/../../outside.jpg",
    "2026/12/..",
    "/etc/passwd",
    "/abs/photo.jpg",
    "",
    "Photo.JPG",  # upper case
    "a\\b.jpg",
    "a b.jpg",
    "2026/12/01/\x00.jpg",
    ".hidden.jpg",
    "a" * 202,
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def files_under(root: Path) -> List[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


# ---------------------------------------------------------------- the local store


@pytest.fixture
def local(tmp_path: Path) -> LocalMediaStore:
    return LocalMediaStore(tmp_path / "media")


def test_local_put_get_delete(local: LocalMediaStore) -> None:
    local.put("2026/12/01/abc123.jpg", b"\xff\xd8photo", "image/jpeg")
    assert local.get("2026/12/01/abc123.jpg") == b"\xff\xd8photo"
    assert (local.root / "2026" / "12" / "01" / "abc123.jpg").read_bytes() == b"\xff\xd8photo"

    local.delete("2026/12/01/abc123.jpg")

    assert not (local.root / "2026" / "12" / "01" / "abc123.jpg").exists()
    with pytest.raises(MediaNotFound):
        local.get("2026/12/01/abc123.jpg")


def test_local_put_replaces_what_was_there(local: LocalMediaStore) -> None:
    local.put("k/photo.png", b"first", "image/png")
    local.put("k/photo.png", b"second, longer", "image/png")
    assert local.get("k/photo.png") == b"second, longer"
    assert len(files_under(local.root)) == 1


def test_local_files_are_private(local: LocalMediaStore) -> None:
    local.put("2026/12/01/a.jpg", b"x", "image/jpeg")
    path = local.root / "2026" / "12" / "01" / "a.jpg"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_local_put_leaves_no_partial_files(local: LocalMediaStore) -> None:
    for number in range(3):
        local.put(f"2026/12/01/{number}.jpg", bytes(1000), "image/jpeg")
    names = [path.name for path in local.root.rglob("*")]
    assert not [name for name in names if name.startswith(".part-")]
    assert len(files_under(local.root)) == 3


def test_a_failed_local_write_leaves_neither_a_partial_file_nor_a_changed_one(
    local: LocalMediaStore,
) -> None:
    local.put("2026/12/01/a.jpg", b"old", "image/jpeg")

    def disk_full(*_args: Any) -> None:
        raise OSError(28, "No space left on device")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(storage.os, "replace", disk_full)
        with pytest.raises(OSError, match="No space left"):
            local.put("2026/12/01/a.jpg", b"new", "image/jpeg")

    assert local.get("2026/12/01/a.jpg") == b"old"
    assert [path.name for path in local.root.rglob(".part-*")] == []


def test_local_missing_key_is_media_not_found(local: LocalMediaStore) -> None:
    with pytest.raises(MediaNotFound) as caught:
        local.get("2026/12/01/never.jpg")
    assert isinstance(caught.value, LookupError)


def test_local_delete_of_a_missing_key_is_fine(local: LocalMediaStore) -> None:
    local.delete("2026/12/01/never.jpg")
    local.put("a.jpg", b"x", "image/jpeg")
    local.delete("a.jpg")
    local.delete("a.jpg")
    assert files_under(local.root) == []


@pytest.mark.parametrize("key", BAD_KEYS)
def test_local_refuses_keys_that_are_not_media_keys(
    local: LocalMediaStore, tmp_path: Path, key: str
) -> None:
    outside = tmp_path / "outside.jpg"
    with pytest.raises(ValueError):
        local.put(key, b"x", "image/jpeg")
    with pytest.raises(ValueError):
        local.get(key)
    with pytest.raises(ValueError):
        local.delete(key)
    assert not outside.exists()
    assert not local.root.exists() or files_under(local.root) == []


def test_local_accepts_the_longest_media_key(local: LocalMediaStore) -> None:
    key = "a" * 201
    local.put(key, b"x", "image/jpeg")
    assert local.get(key) == b"x"


# ---------------------------------------------------------------- choosing the store


@pytest.fixture
def no_cached_store() -> Iterator[None]:
    media_store.cache_clear()
    yield
    media_store.cache_clear()


def test_make_media_store_local_by_default(tmp_path: Path) -> None:
    store = make_media_store(Settings(var_dir=tmp_path / "var"))
    assert isinstance(store, LocalMediaStore)
    assert store.root == tmp_path / "var" / "media"


def test_make_media_store_local_in_the_media_dir(tmp_path: Path) -> None:
    settings = Settings(media_backend=" Local ", media_dir_override=str(tmp_path / "photos"))
    store = make_media_store(settings)
    assert isinstance(store, LocalMediaStore)
    assert store.root == tmp_path / "photos"


def test_make_media_store_s3() -> None:
    settings = Settings(
        media_backend="S3",
        s3_endpoint_url="http://127.0.0.1:9",
        s3_bucket="photos-of-customers",
        s3_access_key_id="test",
        s3_secret_access_key="test",
    )
    store = make_media_store(settings)
    assert isinstance(store, S3MediaStore)
    assert store.bucket == "photos-of-customers"
    assert store.client.meta.endpoint_url == "http://127.0.0.1:9"


def test_make_media_store_refuses_an_unknown_backend() -> None:
    with pytest.raises(ValueError, match="local or s3"):
        make_media_store(Settings(media_backend="ftp"))


def test_media_store_follows_the_environment_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_cached_store: None
) -> None:
    monkeypatch.setenv("INTAKE_MEDIA_BACKEND", "local")
    monkeypatch.setenv("INTAKE_MEDIA_DIR", str(tmp_path / "from-env"))
    store = media_store()
    assert isinstance(store, LocalMediaStore)
    assert store.root == tmp_path / "from-env"
    assert media_store() is store


# ---------------------------------------------------------------- S3, against moto's server


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a moto S3 server on loopback, for this module's tests."""
    if not MOTO_SERVER.exists():
        pytest.skip(
            f"moto_server is not installed at {MOTO_SERVER}: `make tools` installs it "
            "(requirements-tools.txt, moto[server]) in .venv-tools"
        )
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    environment = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1"}
    with log.open("wb") as output:
        server = subprocess.Popen(
            [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            if server.poll() is not None:
                pytest.fail(f"moto_server exited: {log.read_text(errors='replace')[-2000:]}")
            try:
                requests.get(f"{url}/moto-api/", timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    pytest.fail(f"moto_server did not answer on {url} within 20 s")
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


@pytest.fixture(autouse=True)
def plain_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No profile, credentials or proxy of the machine running the tests."""
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def s3_settings(endpoint: str, bucket: str = "", region: str = "us-east-1") -> Settings:
    return Settings(
        media_backend="s3",
        s3_endpoint_url=endpoint,
        s3_bucket=bucket or f"intake-media-{uuid.uuid4().hex[:10]}",
        s3_region=region,
        s3_access_key_id="test",
        s3_secret_access_key="test",
    )


def bucket_exists(store: S3MediaStore) -> bool:
    from botocore.exceptions import ClientError

    try:
        store.client.head_bucket(Bucket=store.bucket)
    except ClientError:
        return False
    return True


def test_s3_put_get_delete(s3_endpoint: str) -> None:
    store = S3MediaStore(s3_settings(s3_endpoint))
    store.put("2026/12/01/abc.jpg", b"\xff\xd8photo", "image/jpeg")

    assert store.get("2026/12/01/abc.jpg") == b"\xff\xd8photo"
    head = store.client.head_object(Bucket=store.bucket, Key="2026/12/01/abc.jpg")
    assert head["ContentType"] == "image/jpeg"

    store.delete("2026/12/01/abc.jpg")
    with pytest.raises(MediaNotFound):
        store.get("2026/12/01/abc.jpg")


def test_s3_uses_path_style_addressing(s3_endpoint: str) -> None:
    store = S3MediaStore(s3_settings(s3_endpoint))
    seen: List[str] = []
    store.client.meta.events.register(
        "before-send.s3", lambda request, **_: seen.append(request.url)
    )
    store.put("a.png", b"png", "image/png")
    assert f"{s3_endpoint}/{store.bucket}/a.png" in seen  # not http://bucket.host/a.png
    assert all(url.startswith(f"{s3_endpoint}/{store.bucket}") for url in seen)


def test_s3_put_replaces_the_object(s3_endpoint: str) -> None:
    store = S3MediaStore(s3_settings(s3_endpoint))
    store.put("k.webp", b"one", "image/webp")
    store.put("k.webp", b"two", "image/webp")
    assert store.get("k.webp") == b"two"


def test_s3_bucket_is_created_when_missing(s3_endpoint: str) -> None:
    store = S3MediaStore(s3_settings(s3_endpoint))
    assert not bucket_exists(store)

    store.put("2026/12/01/first.jpg", b"x", "image/jpeg")

    assert bucket_exists(store)
    listed = store.client.list_objects_v2(Bucket=store.bucket)
    assert [item["Key"] for item in listed["Contents"]] == ["2026/12/01/first.jpg"]


def test_s3_an_existing_bucket_is_used_and_checked_once(s3_endpoint: str) -> None:
    settings = s3_settings(s3_endpoint)
    store = S3MediaStore(settings)
    store.client.create_bucket(Bucket=settings.s3_bucket)
    store.client.put_object(Bucket=settings.s3_bucket, Key="old.jpg", Body=b"kept")
    calls: List[str] = []
    store.client.meta.events.register("before-call.s3", lambda model, **_: calls.append(model.name))

    store.put("a.jpg", b"1", "image/jpeg")
    store.put("b.jpg", b"2", "image/jpeg")

    assert calls.count("HeadBucket") == 1
    assert "CreateBucket" not in calls
    assert store.get("old.jpg") == b"kept"


def test_s3_bucket_is_created_outside_us_east_1(s3_endpoint: str) -> None:
    store = S3MediaStore(s3_settings(s3_endpoint, region="eu-west-1"))
    store.put("a.jpg", b"x", "image/jpeg")
    assert store.get("a.jpg") == b"x"
    location = store.client.get_bucket_location(Bucket=store.bucket)
    assert location["LocationConstraint"] == "eu-west-1"


def test_s3_two_processes_creating_the_bucket_at_once_both_succeed(s3_endpoint: str) -> None:
    from botocore.exceptions import ClientError

    settings = s3_settings(s3_endpoint, region="eu-west-1")
    first, second = S3MediaStore(settings), S3MediaStore(settings)

    def not_there_yet(**_: Any) -> None:  # the second looked before the first created it
        raise ClientError({"Error": {"Code": "404", "Message": "Not Found"}}, "HeadBucket")

    second.client.head_bucket = not_there_yet  # type: ignore[method-assign]
    first.put("one.jpg", b"1", "image/jpeg")

    second.put("two.jpg", b"2", "image/jpeg")  # CreateBucket: BucketAlreadyOwnedByYou

    assert first.get("two.jpg") == b"2"


def test_s3_missing_key_is_media_not_found(s3_endpoint: str) -> None:
    store = S3MediaStore(s3_settings(s3_endpoint))
    store.put("there.jpg", b"x", "image/jpeg")
    with pytest.raises(MediaNotFound):
        store.get("2026/12/01/not-there.jpg")


def test_s3_missing_bucket_is_media_not_found(s3_endpoint: str) -> None:
    store = S3MediaStore(s3_settings(s3_endpoint))
    with pytest.raises(MediaNotFound):
        store.get("any.jpg")


def test_s3_delete_of_a_missing_key_is_fine(s3_endpoint: str) -> None:
    store = S3MediaStore(s3_settings(s3_endpoint))
    store.delete("no-bucket-yet.jpg")  # not even the bucket exists
    store.put("there.jpg", b"x", "image/jpeg")
    store.delete("never.jpg")
    store.delete("there.jpg")
    store.delete("there.jpg")
    assert store.client.list_objects_v2(Bucket=store.bucket).get("KeyCount") == 0


@pytest.mark.parametrize("key", ["../outside.jpg", "/abs/photo.jpg", "Photo.JPG", ""])
def test_s3_refuses_bad_keys_before_touching_the_store(s3_endpoint: str, key: str) -> None:
    store = S3MediaStore(s3_settings(s3_endpoint))
    with pytest.raises(ValueError):
        store.put(key, b"x", "image/jpeg")
    with pytest.raises(ValueError):
        store.get(key)
    with pytest.raises(ValueError):
        store.delete(key)
    assert not bucket_exists(store)


@pytest.mark.parametrize("operation", ["put", "get", "delete"])
def test_s3_endpoint_down_is_media_store_error(operation: str) -> None:
    store = S3MediaStore(s3_settings(f"http://127.0.0.1:{free_port()}"))  # nobody listens
    arguments = ("a.jpg", b"x", "image/jpeg") if operation == "put" else ("a.jpg",)
    started = time.monotonic()
    with pytest.raises(MediaStoreError, match="object store") as caught:
        getattr(store, operation)(*arguments)
    assert time.monotonic() - started < 10
    assert not isinstance(caught.value, MediaNotFound)

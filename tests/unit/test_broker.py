"""The embedded broker (julesweb/broker.py): a reader never sees half a message."""

from __future__ import annotations

import threading
from pathlib import Path
from queue import Empty
from typing import Any

import pytest
from kombu import Connection

QUEUE = "sync"
FOLDERS = ("queue", "control", "incoming", "claimed", "rejected")


def _connection(root: Path, transport: str = "julesweb.broker:Transport") -> Connection:
    options: dict[str, Any] = {
        "data_folder_in": str(root / "queue"),
        "data_folder_out": str(root / "queue"),
        "control_folder": str(root / "control"),
        "store_processed": False,
    }
    for name in FOLDERS[2:]:
        options[f"{name}_folder"] = str(root / name)
    for name in FOLDERS:
        (root / name).mkdir(parents=True, exist_ok=True)
    return Connection("filesystem://", transport=transport, transport_options=options)


def _race(root: Path, transport: str, count: int = 400) -> tuple[int, list[BaseException]]:
    """A writer and a reader on one queue folder at once; returns messages read and errors."""
    payload = {"body": "x" * 400_000}
    errors: list[BaseException] = []
    done = threading.Event()

    def write() -> None:
        with _connection(root, transport) as conn:
            channel: Any = conn.default_channel
            for index in range(count):
                channel._put(QUEUE, payload | {"n": index})
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    read = 0
    with _connection(root, transport) as conn:
        channel: Any = conn.default_channel
        while read < count and not errors:
            try:
                message = channel._get(QUEUE)
            except Empty:
                if done.is_set() and not any((root / "queue").iterdir()):
                    break
                continue
            except Exception as exc:  # The old transport's decode errors.
                errors.append(exc)
                break
            assert message["body"] == payload["body"]
            read += 1
    writer.join()
    return read, errors


def test_it_never_hands_a_reader_a_message_still_being_written(tmp_path: Path) -> None:
    read, errors = _race(tmp_path, "julesweb.broker:Transport")
    assert errors == []
    assert read == 400


def test_it_keeps_the_queue_first_in_first_out(tmp_path: Path) -> None:
    with _connection(tmp_path) as conn:
        channel: Any = conn.default_channel
        for index in range(20):
            channel._put(QUEUE, {"n": index})
        assert [channel._get(QUEUE)["n"] for _ in range(20)] == list(range(20))
        with pytest.raises(Empty):
            channel._get(QUEUE)
    assert list((tmp_path / "claimed").iterdir()) == []
    assert list((tmp_path / "incoming").iterdir()) == []


def test_it_sets_an_unreadable_message_aside_and_goes_on(tmp_path: Path) -> None:
    with _connection(tmp_path) as conn:
        channel: Any = conn.default_channel
        (tmp_path / "queue" / f"0_bad.{QUEUE}.msg").write_bytes(b"")
        channel._put(QUEUE, {"n": 1})
        assert channel._get(QUEUE) == {"n": 1}
    assert [p.name for p in (tmp_path / "rejected").iterdir()] == [f"0_bad.{QUEUE}.msg"]


def test_it_delivers_a_celery_task_end_to_end(tmp_path: Path) -> None:
    with _connection(tmp_path) as conn:
        queue = conn.SimpleQueue(QUEUE)
        queue.put({"task": "ping"})
        message = queue.get(timeout=2)
        assert message.payload == {"task": "ping"}
        message.ack()
        queue.close()

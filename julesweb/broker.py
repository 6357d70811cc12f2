"""The embedded broker: kombu's filesystem transport, with messages that appear whole.

kombu's own transport creates a message file under its final name and then writes it, so a
worker polling the folder can claim the still-empty file and die decoding it (docs/operations.md,
"The embedded broker"). Here a message is written under a temporary name in a folder of its own
and renamed into the queue folder, and a reader claims a file by renaming it into its own
folder: both renames are atomic on one filesystem, so a reader sees a whole message or none,
and two readers never both take the same one. A file that still fails to decode is set aside
with a log line instead of stopping the worker.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from pathlib import Path
from queue import Empty
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

log = logging.getLogger(__name__)


class Channel(filesystem.Channel):
    def _folder(self, name: str) -> Path:
        folder = Path(self.transport_options[f"{name}_folder"])
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    # kombu's stubs give the filesystem _put a signature its base lacks, and ignore it too.
    def _put(self, queue: str, payload: dict[str, Any], **kwargs: Any) -> None:  # type: ignore[override]
        # The name sorts by time, as kombu's does, so that a queue stays first in, first out.
        name = f"{time.time_ns()}_{uuid.uuid4()}.{queue}.msg"
        incoming = self._folder("incoming") / name
        try:
            with open(incoming, "wb") as handle:
                handle.write(str_to_bytes(dumps(payload)))
            os.replace(incoming, Path(self.data_folder_out) / name)
        except OSError as exc:
            raise ChannelError(f"Cannot add message {name!r} to the queue folder") from exc

    def _get(self, queue: str, timeout: float | None = None) -> Any:
        suffix = f".{queue}.msg"
        folder = Path(self.data_folder_in)
        claimed = self._folder("claimed")
        for name in sorted(n for n in os.listdir(folder) if n.endswith(suffix)):
            mine = claimed / f"{os.getpid()}-{name}"
            try:
                os.rename(folder / name, mine)
            except FileNotFoundError:
                continue  # Another reader claimed it first.
            try:
                payload = mine.read_bytes()
                message = loads(bytes_to_str(payload))
            except (OSError, ValueError):
                log.error("Broker message %s could not be read; moved to rejected/", name)
                os.replace(mine, self._folder("rejected") / name)
                continue
            mine.unlink()
            return message
        raise Empty()


class Transport(filesystem.Transport):
    Channel = Channel
    driver_name = "filesystem-atomic"

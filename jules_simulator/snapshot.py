"""An optional JSON snapshot of the whole world: loaded at start if present, saved at stop
(and every `snapshot_seconds` while running, when `start_simulator` is given it).

It keeps accounts (keys, tiers, sources), sessions with their lifecycle bookkeeping and
activities, and the virtual time, so a restarted simulator carries on where it stopped.
Pending events resume on the restored clock; faults and request counts are not kept.
"""

from __future__ import annotations

import dataclasses
import heapq
import json
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

from jules_simulator.model import (
    BUSY_STATES,
    Account,
    SimActivity,
    SimSession,
    dumps,
)
from jules_simulator.scenarios import Scenario
from jules_simulator.world import World

VERSION = 1
SKIPPED = {"activities", "scenario", "extras", "_json"}


def _session_data(session: SimSession) -> dict[str, Any]:
    data = {
        f.name: getattr(session, f.name)
        for f in dataclasses.fields(session)
        if f.name not in SKIPPED
    }
    data["scenario"] = session.scenario.to_dict()
    data["extras"] = sorted(session.extras)
    data["activities"] = [
        activity.to_dict() | {"_ts": activity.ts} for activity in session.activities
    ]
    return data


def save(world: World, path: str) -> None:
    with world.lock:
        data = {
            "version": VERSION,
            "nowUs": world.now_us(),
            "accounts": [
                {
                    "id": account.id,
                    "keys": account.keys,
                    "revokedKeys": sorted(account.revoked_keys),
                    "revoked": account.revoked,
                    "tier": account.tier,
                    "dailyCap": account.daily_cap,
                    "concurrentCap": account.concurrent_cap,
                    "parallelCreateLimit": account.parallel_create_limit,
                    "sources": list(account.sources.values()),
                    "sourceLangs": account.source_langs,
                    "prNumbers": account.pr_numbers,
                    "createLog": account.create_log,
                    "sessions": [_session_data(s) for s in account.sessions.values()],
                }
                for account in world.accounts.values()
            ],
        }
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Write next to the target and rename, so a crash never leaves half a snapshot.
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    with os.fdopen(fd, "wb") as handle:
        handle.write(json.dumps(data, separators=(",", ":")).encode())
    os.replace(temp, target)


def load(world: World, path: str) -> bool:
    """Replace the world's accounts with the snapshot's; False when there is no file."""
    target = Path(path)
    if not target.exists():
        return False
    data = json.loads(target.read_bytes())
    if data.get("version") != VERSION:
        raise ValueError(f"unsupported snapshot version {data.get('version')!r}")
    # On the wall clock a run may have handed out ids after its last save and died: fresh
    # randomness keeps the next run from handing them out again. A manual clock stays
    # deterministic.
    nonce = "" if world.manual else f"/{secrets.token_hex(8)}"
    with world.lock:
        world.clock.jump_to(int(data["nowUs"]))
        world.accounts.clear()
        world.key_index.clear()
        world.session_index.clear()
        for item in data["accounts"]:
            account = Account(
                item["id"],
                list(item["keys"]),
                tier=item.get("tier"),
                daily_cap=item.get("dailyCap"),
                concurrent_cap=item.get("concurrentCap"),
                parallel_create_limit=item.get("parallelCreateLimit"),
                revoked=bool(item.get("revoked")),
                revoked_keys=set(item.get("revokedKeys", [])),
                pr_numbers=dict(item.get("prNumbers", {})),
                create_log=sorted(item.get("createLog", [])),
            )
            account.rng.seed(
                f"{world.seed}/{account.id}/ids/restored/{len(item['sessions'])}{nonce}"
            )
            for source in item["sources"]:
                account.sources[source["name"]] = source
                account.source_bytes[source["name"]] = dumps(source)
            account.source_langs = dict(item.get("sourceLangs", {}))
            world.accounts[account.id] = account
            for key in account.keys:
                world.key_index[key] = account
            for raw in item["sessions"]:
                _restore_session(world, account, raw)
            account.order.sort()
    return True


def _restore_session(world: World, account: Account, raw: dict[str, Any]) -> None:
    names = {f.name for f in dataclasses.fields(SimSession)} - SKIPPED
    values = {k: v for k, v in raw.items() if k in names}
    session = SimSession(**values)
    session.scenario = Scenario.from_dict(raw.get("scenario", {}))
    session.extras = set(raw.get("extras", []))
    session.activities = [SimActivity.from_dict(a) for a in raw.get("activities", [])]
    account.sessions[session.id] = session
    account.order.append(session.create_key)
    account.last_create_us = max(account.last_create_us, session.create_us)
    world.session_index[session.id] = account
    if session.state in BUSY_STATES:
        account.busy.add(session.id)
    if session.next_us is not None:
        heapq.heappush(account.heap, (session.next_us, next(world.sequence), session.id))

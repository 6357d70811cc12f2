"""The test-only admin API under `/_sim/` (no key; never used by the production client).

- `GET  /_sim/` — the clock and a census of accounts and sessions.
- `GET  /_sim/clock`, `POST /_sim/clock/advance {"seconds": n}` — read or move the clock;
  both answer `{"now": epoch seconds, "time": RFC 3339}`.
- `GET  /_sim/requests` — request counts per operation, in total and per account id (keys
  never appear).
- `GET  /_sim/quotas` — per account: caps, sessions busy and created in the last 24 h,
  the peaks of both (and of creates in flight), and the creates refused over a cap or
  failed as parallel creates.
- `GET  /_sim/sessions/{id}` — one session's state, phase and scenario.
- `POST /_sim/reset` — back to the state at start.
- `GET|POST|DELETE /_sim/faults` — list, add (an object, a list, `{"spec": "..."}` or a
  SPEC string) or clear fault rules (see faults.py).
- `POST /_sim/accounts` — add an account `{"id", "keys": [...], "tier", "daily_cap",
  "concurrent_cap", "parallel_create_limit", "seed_sessions", "activities_per_session"}`,
  add keys to an existing one or change its caps `{"id", "keys", "tier", ...}`, or revoke `{"revoke": true, "keys": [...]}`
  / `{"revoke": true, "id": ...}`.
- `POST /_sim/scenarios {"scenarios": ["question", "failure step=1"], "account": id}` —
  queue scenarios for the next creates (of that account, or any).
- `POST /_sim/snapshot {"path": ...}` — write a snapshot now.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

from jules_simulator.clock import format_ts
from jules_simulator.config import AccountSpec
from jules_simulator.errors import SimError, invalid, not_found
from jules_simulator.model import TIERS

if TYPE_CHECKING:
    from jules_simulator.http import SimServer


def handle_admin(server: SimServer, method: str, path: str, body: bytes) -> tuple[int, Any]:
    try:
        try:
            data = json.loads(body) if body.strip() else {}
        except ValueError:
            raise invalid("Invalid JSON payload received.") from None
        return 200, _route(server, method, path, data)
    except SimError as error:
        return error.code, error.body()
    except (ValueError, TypeError, KeyError) as exc:
        return 400, invalid(str(exc)).body()


def _route(server: SimServer, method: str, path: str, data: Any) -> Any:
    world = server.world
    if path == "/" and method == "GET":
        with world.lock:
            world.tick_all()
            states: Counter[str] = Counter(
                s.state for a in world.accounts.values() for s in a.sessions.values()
            )
            return {
                **_clock(server),
                "accounts": sorted(world.accounts),
                "sessions": sum(states.values()),
                "states": dict(states),
            }
    if path == "/clock" and method == "GET":
        return _clock(server) | {"manual": world.manual, "speed": world.speed}
    if path == "/clock/advance" and method == "POST":
        world.advance(float(data.get("seconds", 0)))
        return _clock(server)
    if path == "/requests" and method == "GET":
        with world.lock:
            return {
                "counts": dict(world.counts),
                "accounts": {a.id: dict(a.counts) for a in world.accounts.values()},
            }
    if path == "/quotas" and method == "GET":
        return {"accounts": world.quotas()}
    if path.startswith("/sessions/") and method == "GET":
        session = world.session(path.removeprefix("/sessions/"))
        if session is None:
            raise not_found()
        with world.lock:
            return world.describe_session(session)
    if path == "/reset" and method == "POST":
        world.reset()
        return {}
    if path == "/faults":
        return _faults(server, method, data)
    if path == "/accounts" and method == "POST":
        return _accounts(server, data)
    if path == "/scenarios" and method == "POST":
        texts = data.get("scenarios") if isinstance(data, dict) else data
        if isinstance(texts, str):
            texts = [texts]
        account = data.get("account") if isinstance(data, dict) else None
        return {"queued": world.enqueue_scenarios([str(t) for t in texts or []], account)}
    if path == "/snapshot" and method == "POST":
        from jules_simulator.snapshot import save

        target = data.get("path") or world.config.snapshot_path
        if not target:
            raise invalid('No snapshot path: pass {"path": ...} or start with one.')
        save(world, str(target))
        return {"path": str(target)}
    raise not_found()


def _clock(server: SimServer) -> dict[str, Any]:
    """Virtual now as epoch seconds (`now`) and as an RFC 3339 string (`time`)."""
    now_us = server.world.now_us()
    return {"now": now_us / 1_000_000, "time": format_ts(now_us)}


def _faults(server: SimServer, method: str, data: Any) -> Any:
    world = server.world
    if method == "GET":
        with world.lock:
            return {"faults": [rule.to_dict() for rule in world.faults]}
    if method == "DELETE":
        world.clear_faults()
        return {}
    if method == "POST":
        if isinstance(data, dict) and "spec" in data:
            items: list[Any] = [data["spec"]]
        elif isinstance(data, list):
            items = data
        else:
            items = [data]
        rules = [world.add_fault(item) for item in items]
        return {"faults": [rule.to_dict() for rule in rules]}
    raise not_found()


def _accounts(server: SimServer, data: dict[str, Any]) -> Any:
    world = server.world
    keys = [str(k) for k in data.get("keys", [])]
    if data.get("revoke"):
        for key in keys:
            world.revoke(key=key)
        if data.get("id") and not keys:
            world.revoke(account_id=str(data["id"]))
        return {}
    account_id = str(data.get("id") or f"account-{len(world.accounts) + 1}")
    with world.lock:
        existing = world.accounts.get(account_id)
        if existing is not None:
            tier = data.get("tier", existing.tier)
            if tier is not None and tier not in TIERS:
                raise ValueError(f"unknown tier {tier!r}; expected one of {sorted(TIERS)}")
            for key in keys:
                world.add_key(existing, key)
            existing.tier = tier
            for name in ("daily_cap", "concurrent_cap", "parallel_create_limit"):
                if name in data:
                    setattr(existing, name, data[name])
            return {"account": existing.id, "keys": len(existing.keys)}
        spec = AccountSpec(
            id=account_id,
            keys=tuple(keys),
            tier=data.get("tier"),
            daily_cap=data.get("daily_cap"),
            concurrent_cap=data.get("concurrent_cap"),
            parallel_create_limit=data.get("parallel_create_limit"),
            seed_sessions=int(data.get("seed_sessions", 0)),
            activities_per_session=int(data.get("activities_per_session", 10)),
        )
        account = world.add_account_from_spec(spec)
        return {"account": account.id, "keys": len(account.keys)}

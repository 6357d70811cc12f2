"""Writing to and checking the audit history.

`record` is the one way entries are made. It locks the chain head, so appends from several
processes are serialised and the hash chain stays linear.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from sessions_app.models.audit import GENESIS_HASH, AuditChainHead, AuditEntry
from sessions_app.models.teams import Team
from sessions_app.web.client_address import client_address


@dataclass(frozen=True)
class Target:
    type: str
    id: str
    label: str = ""

    @classmethod
    def of_session(cls, session: Any) -> Target:
        return cls("session", str(session.pk), session.display_title[:300])

    @classmethod
    def of_connection(cls, connection: Any) -> Target:
        return cls("connection", str(connection.pk), connection.label)

    @classmethod
    def of_user(cls, user: Any) -> Target:
        return cls("user", str(user.pk), user.get_username())

    @classmethod
    def of_team(cls, team: Any) -> Target:
        return cls("team", str(team.pk), team.name)


def client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    # Behind proxies the client is found in X-Forwarded-For (AXES_PROXY_COUNT), the same
    # way as for the sign-in lockout.
    ip = getattr(request, "axes_ip_address", None) or client_address(request)
    return str(ip) if ip else None


def _actor_fields(actor: Any) -> tuple[int | None, str]:
    if actor is None or not getattr(actor, "is_authenticated", False):
        return None, ""
    return actor.pk, actor.get_username()


def record(
    action: str,
    *,
    actor: Any = None,
    actor_label: str = "",
    team: Team | int | None = None,
    target: Target | None = None,
    details: dict[str, Any] | None = None,
    request: HttpRequest | None = None,
    ip_address: str | None = None,
) -> AuditEntry:
    """Append one entry; call inside the transaction that makes the change it records."""
    return record_many(
        [
            {
                "action": action,
                "actor": actor,
                "actor_label": actor_label,
                "team": team,
                "target": target,
                "details": details,
                "ip_address": ip_address or client_ip(request),
            }
        ]
    )[0]


def record_many(items: Iterable[dict[str, Any]]) -> list[AuditEntry]:
    """Append several entries under one lock of the chain head (the sync's bulk path)."""
    items = list(items)
    if not items:
        return []
    with transaction.atomic():
        head = _locked_head()
        entries = []
        now = timezone.now()
        for item in items:
            actor_id, label = _actor_fields(item.get("actor"))
            team = item.get("team")
            target: Target | None = item.get("target")
            entry = AuditEntry(
                seq=head.last_seq + 1,
                created_at=item.get("created_at") or now,
                actor_id=actor_id,
                actor_label=label or item.get("actor_label") or "",
                team_id=team.pk if isinstance(team, Team) else team,
                action=item["action"],
                target_type=target.type if target else "",
                target_id=str(target.id)[:64] if target else "",
                target_label=(target.label if target else "")[:300],
                details=item.get("details") or {},
                ip_address=item.get("ip_address"),
                prev_hash=head.last_hash,
            )
            entry.hash = entry.compute_hash()
            head.last_seq = entry.seq
            head.last_hash = entry.hash
            entries.append(entry)
        AuditEntry.objects.bulk_create(entries)
        head.save(update_fields=["last_seq", "last_hash"])
    return entries


def _locked_head() -> AuditChainHead:
    head = AuditChainHead.objects.select_for_update().filter(pk=1).first()
    if head is None:
        AuditChainHead.objects.get_or_create(pk=1)
        head = AuditChainHead.objects.select_for_update().get(pk=1)
    return head


@dataclass(frozen=True)
class ChainBreak:
    seq: int
    reason: str


def verify_chain(entries: Iterator[AuditEntry] | None = None) -> tuple[int, ChainBreak | None]:
    """Walk the chain in order; return how many entries were checked and the first break."""
    if entries is None:
        entries = AuditEntry.objects.order_by("seq").iterator(chunk_size=2000)
    prev_hash = GENESIS_HASH
    expected_seq = 1
    checked = 0
    for entry in entries:
        if entry.seq != expected_seq:
            return checked, ChainBreak(expected_seq, f"entry #{expected_seq} is missing")
        if entry.prev_hash != prev_hash:
            return checked, ChainBreak(entry.seq, "its link to the previous entry does not match")
        if entry.compute_hash() != entry.hash:
            return checked, ChainBreak(entry.seq, "its content does not match its hash")
        prev_hash = entry.hash
        expected_seq += 1
        checked += 1
    head = AuditChainHead.objects.filter(pk=1).first()
    if head is not None and head.last_seq != checked:
        return checked, ChainBreak(checked + 1, f"entries after #{checked} are missing")
    if head is not None and checked and head.last_hash != prev_hash:
        # The newest entry has no successor to vouch for it; the head does.
        return checked - 1, ChainBreak(checked, "its hash is not the one the chain recorded")
    return checked, None

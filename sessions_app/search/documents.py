"""Build and write search documents from the cache, in the caller's transaction.

`index_sessions` is what the sync calls after it wrote sessions, outputs or activities
(sessions_app/sync/writers.py): three reads for the whole batch, then one write of the
documents whose content hash changed, so a re-sync of unchanged sessions writes nothing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from sessions_app.models import Activity, Session, SessionOutput, SessionSearchDocument
from sessions_app.search.fields import COLUMNS, FIELD_LIMIT, GT, LT, START, STOP

_MARKS = str.maketrans({START: " ", STOP: " ", LT: " ", GT: " ", "\x00": " "})
# "diff --git a/x b/y", "+++ b/y" and "--- a/x" name the files a patch touches.
_DIFF_GIT = re.compile(r"^diff --git a/(\S+) b/(\S+)", re.MULTILINE)
_PLUS = re.compile(r"^(?:\+\+\+|---) (?:[ab]/)?(\S+)", re.MULTILINE)
BATCH = 500


def patch_paths(patch: str) -> set[str]:
    """The file paths a unified diff touches (never /dev/null)."""
    found: set[str] = set()
    for a, b in _DIFF_GIT.findall(patch):
        found.update((a, b))
    found.update(_PLUS.findall(patch))
    found.discard("/dev/null")
    return {p[:500] for p in found if p}


def _clean(parts: Iterable[str]) -> str:
    text = "\n".join(p for p in parts if p).translate(_MARKS)
    return text[:FIELD_LIMIT]


def document_values(
    session: Mapping[str, Any],
    outputs: Sequence[Mapping[str, Any]],
    activities: Sequence[Mapping[str, Any]],
) -> dict[str, str]:
    """The searchable text of one session (pure: values in, values out)."""
    plan: list[str] = []
    agent: list[str] = []
    user: list[str] = []
    commands: list[str] = []
    patches: list[str] = []
    paths: set[str] = set()
    pulls: list[str] = []
    for activity in activities:
        kind = activity["kind"]
        if kind == "userMessaged":
            user.append(activity["message"])
        elif activity["message"]:
            agent.append(activity["message"])
        agent.extend((activity["progress_title"], activity["progress_description"]))
        agent.append(activity["failure_reason"])
        for step in activity["plan_steps"] or []:
            if isinstance(step, dict):
                plan.extend((str(step.get("title") or ""), str(step.get("description") or "")))
        for artifact in activity["artifacts"] or []:
            if not isinstance(artifact, dict):
                continue
            if artifact.get("kind") == "bashOutput":
                commands.extend(
                    (str(artifact.get("command") or ""), str(artifact.get("output") or ""))
                )
            elif artifact.get("kind") == "changeSet":
                patch = str(artifact.get("patch") or "")
                patches.append(patch)
                paths |= patch_paths(patch)
    for output in outputs:
        if output["kind"] == SessionOutput.Kind.PULL_REQUEST:
            pulls.extend((output["title"], output["description"]))
        if output["patch"]:
            patches.append(output["patch"])
            paths |= patch_paths(output["patch"])
    path_lines = _clean(sorted(paths))
    return {
        "title": _clean([session["title"]]),
        "prompt": _clean([session["prompt"]]),
        "plan": _clean(plan),
        "agent_messages": _clean(agent),
        "user_messages": _clean(user),
        "commands": _clean(commands),
        "paths": f"\n{path_lines}\n" if path_lines else "",
        "patches": _clean(patches),
        "pull_requests": _clean(pulls),
    }


def content_hash(values: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for column in COLUMNS:
        digest.update(values[column].encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return digest.hexdigest()


def enabled() -> bool:
    """Whether the sync keeps the index (off only to measure its cost: bench/search.py)."""
    return bool(getattr(settings, "SEARCH_INDEX_ON_SYNC", True))


def index_sessions(session_ids: Iterable[int], *, force: bool = False) -> int:
    """Write the documents of these sessions whose content changed; how many were written.

    Runs in the caller's transaction (a savepoint-free atomic block), so the documents
    commit or roll back with the rows they were built from.
    """
    ids = sorted(set(session_ids))
    written = 0
    for start in range(0, len(ids), BATCH):
        written += _index_batch(ids[start : start + BATCH], force)
    return written


def _index_batch(ids: list[int], force: bool) -> int:
    sessions: dict[int, Mapping[str, Any]] = {
        row["id"]: row
        for row in Session.objects.filter(pk__in=ids).values(
            "id", "team_id", "connection_id", "title", "prompt"
        )
    }
    if not sessions:
        return 0
    outputs: dict[int, list[Mapping[str, Any]]] = {}
    for output in SessionOutput.objects.filter(session_id__in=ids).values(
        "session_id", "kind", "title", "description", "patch"
    ):
        outputs.setdefault(output["session_id"], []).append(output)
    activities: dict[int, list[Mapping[str, Any]]] = {}
    for row in (
        Activity.objects.filter(session_id__in=ids)
        .order_by("session_id", "create_time", "id")
        .values(
            "session_id",
            "kind",
            "message",
            "plan_steps",
            "progress_title",
            "progress_description",
            "failure_reason",
            "artifacts",
        )
    ):
        activities.setdefault(row["session_id"], []).append(row)
    hashes = dict(
        SessionSearchDocument.objects.filter(session_id__in=ids).values_list(
            "session_id", "content_hash"
        )
    )
    now = timezone.now()
    new: list[SessionSearchDocument] = []
    changed: list[SessionSearchDocument] = []
    for pk, session in sessions.items():
        values = document_values(session, outputs.get(pk, []), activities.get(pk, []))
        digest = content_hash(values)
        if not force and hashes.get(pk) == digest:
            continue
        document = SessionSearchDocument(
            session_id=pk,
            team_id=session["team_id"],
            connection_id=session["connection_id"],
            content_hash=digest,
            indexed_at=now,
            **values,
        )
        (changed if pk in hashes else new).append(document)
    with transaction.atomic(savepoint=False):
        if new:
            SessionSearchDocument.objects.bulk_create(new, ignore_conflicts=True)
        if changed:
            SessionSearchDocument.objects.bulk_update(
                changed, [*COLUMNS, "team", "connection", "content_hash", "indexed_at"]
            )
    return len(new) + len(changed)


def index_after_sync(session_ids: Iterable[int]) -> None:
    """The sync's hook: keep the index current unless it is switched off."""
    if enabled():
        index_sessions(session_ids)


def batch_session_ids(batch: Any) -> set[int]:
    """The sessions an activity batch of either store touches."""
    if hasattr(batch, "fetched"):
        return {session.pk for session, _ in batch.fetched}
    return set(batch.session_ids) | {row[0] for row in batch.direct_rows}

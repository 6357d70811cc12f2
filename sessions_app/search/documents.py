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
from django.db import connection, transaction
from django.utils import timezone

from jules import resources as jr
from sessions_app.models import Activity, Session, SessionOutput, SessionSearchDocument
from sessions_app.search.fields import COLUMNS, FIELD_LIMIT, GT, LT, START, STOP

_MARKS = str.maketrans({START: " ", STOP: " ", LT: " ", GT: " ", "\x00": " "})
# "diff --git a/x b/y", "+++ b/y" and "--- a/x" name the files a patch touches.
_DIFF_GIT = re.compile(r"^diff --git a/(\S+) b/(\S+)", re.MULTILINE)
_PLUS = re.compile(r"^(?:\+\+\+|---) (?:[ab]/)?(\S+)", re.MULTILINE)
BATCH = 500
# What a document copies of its session (a trigger of migration 0016 follows later changes).
COPIED = ("team", "connection", "create_time", "archived")
# The activity columns a document reads.
ACTIVITY_TEXT = (
    "kind",
    "message",
    "plan_steps",
    "progress_title",
    "progress_description",
    "failure_reason",
    "artifacts",
)


def patch_paths(patch: str) -> set[str]:
    """The file paths a unified diff touches (never /dev/null)."""
    found: set[str] = set()
    for a, b in _DIFF_GIT.findall(patch):
        found.update((a, b))
    found.update(_PLUS.findall(patch))
    found.discard("/dev/null")
    return {p[:500] for p in found if p}


def changed_lines(patch: str) -> str:
    """The lines a patch adds or removes, without their +/-: what a person searches a
    change for. Context lines and headers are left out (paths are indexed apart), which
    also halves what the database parses on every write."""
    return "\n".join(
        line[1:]
        for line in patch.splitlines()
        if line[:1] in ("+", "-") and not line.startswith(("+++", "---"))
    )


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
                patches.append(changed_lines(patch))
                paths |= patch_paths(patch)
    for output in outputs:
        if output["kind"] == SessionOutput.Kind.PULL_REQUEST:
            pulls.extend((output["title"], output["description"]))
        if output["patch"]:
            patches.append(changed_lines(output["patch"]))
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


Loaded = tuple[Mapping[str, Any], list[Mapping[str, Any]], list[Mapping[str, Any]]]


def _index_batch(ids: list[int], force: bool) -> int:
    return _write(_load(ids), force=force)


def _load(ids: list[int]) -> dict[int, Loaded]:
    """What the documents of these sessions are built from, in three reads."""
    sessions = Session.objects.filter(pk__in=ids).values(
        "id", "team_id", "connection_id", "title", "prompt", "create_time", "archived"
    )
    loaded: dict[int, Loaded] = {row["id"]: (row, [], []) for row in sessions}
    if not loaded:
        return loaded
    for output in SessionOutput.objects.filter(session_id__in=ids).values(
        "session_id", "kind", "title", "description", "patch"
    ):
        loaded[output["session_id"]][1].append(output)
    for activity in (
        Activity.objects.filter(session_id__in=ids)
        .order_by("session_id", "create_time", "id")
        .values("session_id", *ACTIVITY_TEXT)
    ):
        loaded[activity["session_id"]][2].append(activity)
    return loaded


def _write(loaded: dict[int, Loaded], *, force: bool = False, known: bool = True) -> int:
    """Upsert the documents whose content hash changed. `known=False`: the sessions were
    inserted by the caller's transaction, so no document of theirs can exist yet."""
    if not loaded:
        return 0
    hashes: dict[int, str] = {}
    if known and not force:
        hashes = dict(
            SessionSearchDocument.objects.filter(session_id__in=list(loaded)).values_list(
                "session_id", "content_hash"
            )
        )
    now = timezone.now()
    rows: list[dict[str, Any]] = []
    for pk, (session, outputs, activities) in loaded.items():
        values = document_values(session, outputs, activities)
        digest = content_hash(values)
        if hashes.get(pk) == digest:
            continue
        rows.append(
            {
                "session_id": pk,
                "team_id": session["team_id"],
                "connection_id": session["connection_id"],
                "create_time": session["create_time"],
                "archived": session["archived"],
                "content_hash": digest,
                "indexed_at": now,
                **values,
            }
        )
    if rows and not known and connection.vendor == "postgresql":
        _copy(rows)
    elif rows:
        # One statement whatever the mix of new and changed documents.
        SessionSearchDocument.objects.bulk_create(
            [SessionSearchDocument(**row) for row in rows],
            batch_size=BATCH,
            update_conflicts=True,
            unique_fields=["session"],
            update_fields=[*COLUMNS, *COPIED, "content_hash", "indexed_at"],
        )
    return len(rows)


# Every stored column but the generated `search_vector`, which is not a model field.
_COPY_COLUMNS = [(f.attname, f.column) for f in SessionSearchDocument._meta.concrete_fields]


def _copy(rows: list[dict[str, Any]]) -> None:
    """New documents by COPY: building a model instance and an INSERT's parameters per
    document cost the sync more than the rest of the hook (docs/performance.md, "Search")."""
    table = SessionSearchDocument._meta.db_table
    names = ", ".join(f'"{column}"' for _, column in _COPY_COLUMNS)
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy,
    ):
        for row in rows:
            copy.write_row([row[attname] for attname, _ in _COPY_COLUMNS])


def _activity_text(remote: jr.Activity) -> dict[str, Any]:
    """What a document reads of an activity, as `Activity` rows hold it (see
    sessions_app/sync/mapping.py, `activity_values`), straight from the API's answer."""
    artifacts: list[dict[str, str]] = []
    for artifact in remote.artifacts or []:
        if artifact.change_set is not None:
            artifacts.append(
                {"kind": "changeSet", "patch": artifact.change_set.unidiff_patch or ""}
            )
        elif artifact.bash_output is not None:
            bash = artifact.bash_output
            artifacts.append(
                {"kind": "bashOutput", "command": bash.command or "", "output": bash.output or ""}
            )
    plan = remote.plan
    return {
        "kind": remote.kind[:32],
        "message": remote.agent_message or remote.user_message or "",
        "plan_steps": [{"title": s.title, "description": s.description} for s in plan.steps]
        if plan
        else [],
        "progress_title": remote.progress_title or "",
        "progress_description": remote.progress_description or "",
        "failure_reason": remote.failure_reason or "",
        "artifacts": artifacts,
    }


def _output_text(output: jr.SessionOutput) -> dict[str, Any]:
    """What a document reads of an output, as `SessionOutput` rows hold it."""
    if output.pull_request is not None:
        pr = output.pull_request
        return {
            "kind": SessionOutput.Kind.PULL_REQUEST,
            "title": (pr.title or "")[:500],
            "description": pr.description or "",
            "patch": "",
        }
    patch = output.change_set.unidiff_patch or "" if output.change_set is not None else ""
    return {"kind": "", "title": "", "description": "", "patch": patch}


def index_written_page(
    results: Sequence[Any], remotes: Sequence[Any], fetched: Mapping[str, Any]
) -> None:
    """The hook of `write_page`: sessions it inserted with all their activities are
    indexed from what the sync holds in memory (no read); the others from the cache."""
    if not enabled():
        return
    by_id = {remote.id: remote for remote in remotes if remote.id}
    fresh: dict[int, Loaded] = {}
    others: list[int] = []
    for result in results:
        if not result.changed:
            continue
        session = result.session
        remote = by_id.get(session.remote_id)
        if not (result.preset and remote is not None and session.remote_id in fetched):
            others.append(session.pk)
            continue
        seen: set[str] = set()
        activities: list[Mapping[str, Any]] = []
        for item in fetched[session.remote_id]:
            if item.id and item.id[:64] not in seen:
                seen.add(item.id[:64])
                activities.append(_activity_text(item))
        outputs: list[Mapping[str, Any]] = [_output_text(o) for o in remote.outputs]
        fresh[session.pk] = (
            {
                "team_id": session.team_id,
                "connection_id": session.connection_id,
                "create_time": session.create_time,
                "archived": session.archived,
                "title": session.title,
                "prompt": session.prompt,
            },
            outputs,
            activities,
        )
    with transaction.atomic(savepoint=False):
        _write(fresh, known=False)
        index_sessions(others)


def index_after_sync(session_ids: Iterable[int]) -> None:
    """The sync's hook: keep the index current unless it is switched off."""
    if enabled():
        index_sessions(session_ids)


def batch_session_ids(batch: Any) -> set[int]:
    """The sessions an activity batch of either store touches."""
    if hasattr(batch, "fetched"):
        return {session.pk for session, _ in batch.fetched}
    return set(batch.session_ids) | {row[0] for row in batch.direct_rows}

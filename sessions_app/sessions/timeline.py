"""What the session page shows, assembled from the cache: plan progress, the timeline's
activities ready to render, outputs with their diffs, and actions still on their way.

Pure reads; the views decide which parts a request needs, so that a poll every few
seconds loads only what its fragment shows.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q
from django.utils import timezone

from sessions_app.models import Activity, OutboxAction, Session, SessionOutput, SessionState
from sessions_app.models.jules import ActivityKind
from sessions_app.sessions.rendering import (
    DiffSummary,
    media_data_url,
    render_diff,
    render_markdown,
)

# Progress updates that report tool use rather than a step of the plan; they do not count
# as moving on to the next step.
GENERIC_PROGRESS = frozenset({"", "ran bash command", "frontend verification"})
# How long a delivered message waits, shown as "delivered", for the sync to bring back
# the activity that Jules recorded for it.
DELIVERED_GRACE = dt.timedelta(hours=1)
# Failed actions stay on the page this long, so the person who tried sees why.
FAILED_VISIBLE_FOR = dt.timedelta(days=1)


# --- plan -----------------------------------------------------------------------------


@dataclass
class PlanStep:
    number: int
    title: str
    description: str
    status: str  # "done", "current", "failed" or "todo"


@dataclass
class PlanView:
    activity: Activity
    steps: list[PlanStep]
    approved: bool
    current: int | None
    # Whether an earlier plan came before this one (Jules revises plans after feedback).
    revised: bool = False


def _normalise(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", (text or "").lower()).strip()


def _step_matching(title: str, steps: Sequence[str]) -> int | None:
    wanted = _normalise(title)
    if len(wanted) < 8:
        return None
    for index, step in enumerate(steps):
        if wanted == step or (len(step) >= 8 and (wanted in step or step in wanted)):
            return index
    return None


def plan_view(session: Session, activities: Iterable[Activity]) -> PlanView | None:
    """The latest plan, with the step the agent is on (best effort).

    Jules does not say which step it is on, so the portal guesses from what follows the
    plan's approval:

    1. Before any approval after the latest plan, no step is current.
    2. If a progress update after the approval names a step (its title equals one, or one
       contains the other, ignoring case and punctuation), the step named by the latest
       such update is current.
    3. Otherwise each progress update with a real title (not tool noise such as "Ran bash
       command") counts as starting the next step: after n of them the agent is on step
       n (1-based), never past the last. Live sessions and the simulator both report about
       one titled update per step.

    Steps before the current one show as done. A COMPLETED session has every step done; a
    FAILED one shows its current step as failed.
    """
    plan: Activity | None = None
    after: list[Activity] = []
    plans = 0
    for activity in activities:
        if activity.kind == ActivityKind.PLAN_GENERATED:
            plan, after = activity, []
            plans += 1
        elif plan is not None:
            after.append(activity)
    if plan is None:
        return None
    raw_steps = sorted(
        enumerate(plan.plan_steps or []), key=lambda pair: (pair[1].get("index") or 0, pair[0])
    )
    steps = [step for _, step in raw_steps]
    titles = [_normalise(step.get("title", "")) for step in steps]
    approved_at = next(
        (i for i, a in enumerate(after) if a.kind == ActivityKind.PLAN_APPROVED), None
    )
    current: int | None = None
    if approved_at is not None and steps:
        progress = [a for a in after[approved_at + 1 :] if a.kind == ActivityKind.PROGRESS_UPDATED]
        matched = None
        for update in progress:
            found = _step_matching(update.progress_title, titles)
            if found is not None:
                matched = found
        if matched is not None:
            current = matched
        else:
            counted = sum(
                1 for a in progress if _normalise(a.progress_title) not in GENERIC_PROGRESS
            )
            current = max(0, min(counted - 1, len(steps) - 1))
    finished = session.state == SessionState.COMPLETED
    failed = session.state == SessionState.FAILED
    shown: list[PlanStep] = []
    for index, step in enumerate(steps):
        if finished and approved_at is not None:
            status = "done"
        elif current is None or index > current:
            status = "todo"
        elif index < current:
            status = "done"
        else:
            status = "failed" if failed else "current"
        shown.append(
            PlanStep(
                number=index + 1,
                title=str(step.get("title") or ""),
                description=str(step.get("description") or ""),
                status=status,
            )
        )
    return PlanView(
        activity=plan,
        steps=shown,
        approved=approved_at is not None,
        current=current if session.can_change else None,
        revised=plans > 1,
    )


def plan_view_for(session: Session) -> PlanView | None:
    """The plan view with two small queries, for the header's poll."""
    # The latest two plans: the second, if any, only says that the first is a revision.
    latest_two = list(
        session.activities.filter(kind=ActivityKind.PLAN_GENERATED)
        .order_by("-create_time", "-id")
        .only("id", "session_id", "kind", "plan_id", "plan_steps", "create_time", "description")[:2]
    )
    if not latest_two:
        return None
    latest = latest_two[0]
    # Rows are written in the order Jules lists them (oldest first), so a larger id is a
    # later activity; that also holds when a time is missing.
    later = session.activities.filter(
        kind__in=[ActivityKind.PLAN_APPROVED, ActivityKind.PROGRESS_UPDATED], pk__gt=latest.pk
    ).order_by("create_time", "id")
    rows = later.only("id", "session_id", "kind", "progress_title", "create_time")
    return plan_view(session, [*reversed(latest_two), *rows])


# --- activities -----------------------------------------------------------------------


@dataclass
class Item:
    """One artifact of an activity, ready for the template."""

    kind: str
    data: dict[str, Any]
    anchor: str = ""
    diff: DiffSummary | None = None
    data_url: str | None = None
    same_as_output: bool = False


@dataclass
class ActivityView:
    activity: Activity
    html: str = ""
    items: list[Item] = field(default_factory=list)
    # The portal user behind a reply or an approval, when the portal sent it.
    who: str = ""
    # The agent's message that the session waits on (AWAITING_USER_FEEDBACK).
    question: bool = False

    @property
    def pk(self) -> int:
        return self.activity.pk


KIND_WORDS = dict(ActivityKind.choices)


def _name(username: str | None) -> str:
    return username or "someone"


def people_behind(session: Session, activities: Sequence[Activity]) -> dict[int, str]:
    """Who in the portal sent each `userMessaged` and `planApproved`, by activity id.

    Jules records every reply and approval as the user's: the portal knows who, from its
    outbox. A reply is matched by text and by order (the n-th activity of one text is the
    n-th delivered message of that text, as `_unrecorded` counts them); an approval by the
    plan it approved. Activities the portal did not send stay unattributed.
    """
    texts = {a.message for a in activities if a.kind == ActivityKind.USER_MESSAGED and a.message}
    plan_ids = {a.plan_id for a in activities if a.kind == ActivityKind.PLAN_APPROVED and a.plan_id}
    people: dict[int, str] = {}
    if texts:
        senders: dict[str, list[str]] = {}
        for payload, username in (
            OutboxAction.objects.filter(
                session=session,
                kind=OutboxAction.Kind.MESSAGE,
                status=OutboxAction.Status.DONE,
                payload__prompt__in=list(texts),
            )
            .order_by("delivered_at", "created_at")
            .values_list("payload", "actor__username")
        ):
            senders.setdefault(str(payload.get("prompt", "")), []).append(_name(username))
        seen: Counter[str] = Counter()
        for pk, text in (
            session.activities.filter(kind=ActivityKind.USER_MESSAGED, message__in=list(texts))
            .order_by("create_time", "id")
            .values_list("pk", "message")
        ):
            names = senders.get(text, [])
            if seen[text] < len(names):
                people[pk] = names[seen[text]]
            seen[text] += 1
    if plan_ids:
        approvers: dict[str, str] = {}
        for payload, username in (
            OutboxAction.objects.filter(
                session=session,
                kind=OutboxAction.Kind.APPROVE,
                payload__plan_id__in=list(plan_ids),
            )
            .exclude(status=OutboxAction.Status.FAILED)
            .order_by("created_at")
            .values_list("payload", "actor__username")
        ):
            approvers.setdefault(str(payload.get("plan_id", "")), _name(username))
        for activity in activities:
            if activity.kind == ActivityKind.PLAN_APPROVED and activity.plan_id in approvers:
                people[activity.pk] = approvers[activity.plan_id]
    return people


def activity_views(
    activities: Iterable[Activity],
    output_patches: frozenset[str] = frozenset(),
    people: dict[int, str] | None = None,
) -> list[ActivityView]:
    """Markdown rendered and sanitised, diffs parsed, images checked.

    A change set identical to one of the session's outputs is shown in full once, in the
    outputs section; the timeline then only summarises it. `people` names who sent a
    reply or an approval (`people_behind`).
    """
    views = []
    for activity in activities:
        view = ActivityView(activity, who=(people or {}).get(activity.pk, ""))
        if (
            activity.kind in {ActivityKind.AGENT_MESSAGED, ActivityKind.USER_MESSAGED}
            and activity.message
        ):
            view.html = render_markdown(activity.message)
        for index, artifact in enumerate(activity.artifacts or []):
            if not isinstance(artifact, dict):
                continue
            kind = str(artifact.get("kind", "unknown"))
            item = Item(kind=kind, data=artifact, anchor=f"activity-{activity.pk}-{index}")
            if kind == "changeSet":
                patch = str(artifact.get("patch") or "")
                item.same_as_output = bool(patch) and patch in output_patches
                item.diff = render_diff(patch, highlight=not item.same_as_output)
            elif kind == "media":
                item.data_url = media_data_url(
                    str(artifact.get("mime_type", "")), str(artifact.get("data", ""))
                )
            elif kind == "unknown":
                raw = artifact.get("raw")
                item.data = {"types": ", ".join(sorted(raw)) if isinstance(raw, dict) else ""}
            view.items.append(item)
        views.append(view)
    return views


def mark_question(session: Session, views: list[ActivityView]) -> list[ActivityView]:
    """Set apart the agent's latest message while the session waits for an answer."""
    if session.state == SessionState.AWAITING_USER_FEEDBACK:
        asked = [v for v in views if v.activity.kind == ActivityKind.AGENT_MESSAGED]
        if asked:
            asked[-1].question = True
    return views


# --- outputs --------------------------------------------------------------------------


@dataclass
class OutputView:
    output: SessionOutput
    diff: DiffSummary | None = None
    description_html: str = ""

    @property
    def anchor(self) -> str:
        return f"output-{self.output.pk}"


def output_views(outputs: Iterable[SessionOutput]) -> list[OutputView]:
    views = []
    for output in outputs:
        view = OutputView(output)
        if output.kind == SessionOutput.Kind.CHANGE_SET:
            view.diff = render_diff(output.patch)
        elif output.kind == SessionOutput.Kind.PULL_REQUEST and output.description:
            view.description_html = render_markdown(output.description)
        views.append(view)
    return views


# --- actions on their way -------------------------------------------------------------


@dataclass
class Pending:
    """Actions of one session that the page should mention."""

    messages: list[OutboxAction]
    problems: list[OutboxAction]

    @property
    def waiting(self) -> bool:
        return any(action.is_open for action in self.messages + self.problems)


def _unrecorded(session: Session, delivered: list[OutboxAction]) -> set[Any]:
    """Which delivered messages Jules' timeline does not show yet.

    Matched by text and by count, not by time (Jules' clock is not the portal's): with k
    delivered messages of one text and s `userMessaged` activities of that text, the
    first s are in the timeline and the other k - s are still on their way.
    """
    texts = {str(action.payload.get("prompt", "")) for action in delivered}
    every = (
        OutboxAction.objects.filter(
            session=session,
            kind=OutboxAction.Kind.MESSAGE,
            status=OutboxAction.Status.DONE,
            payload__prompt__in=list(texts),
        )
        .order_by("delivered_at", "created_at")
        .values_list("pk", "payload")
    )
    seen = Counter(
        session.activities.filter(
            kind=ActivityKind.USER_MESSAGED, message__in=list(texts)
        ).values_list("message", flat=True)
    )
    unrecorded: set[Any] = set()
    sent: Counter[str] = Counter()
    for pk, payload in every:
        text = str(payload.get("prompt", ""))
        sent[text] += 1
        if sent[text] > seen[text]:
            unrecorded.add(pk)
    return unrecorded


def pending_actions(session: Session, now: dt.datetime | None = None) -> Pending:
    """Messages not yet in the timeline, and other actions that failed or are retrying.

    A message shows at once as pending, then as delivered until the sync brings back the
    `userMessaged` activity Jules recorded for it, then it disappears: the timeline shows
    it from there on.
    """
    now = now or timezone.now()
    actions = list(
        OutboxAction.objects.filter(session=session)
        .filter(
            Q(status__in=[OutboxAction.Status.PENDING, OutboxAction.Status.SENDING])
            | Q(status=OutboxAction.Status.FAILED, updated_at__gte=now - FAILED_VISIBLE_FOR)
            | Q(
                status=OutboxAction.Status.DONE,
                kind=OutboxAction.Kind.MESSAGE,
                delivered_at__gte=now - DELIVERED_GRACE,
            )
        )
        .select_related("actor")
        .order_by("created_at")
    )
    delivered = [a for a in actions if a.kind == OutboxAction.Kind.MESSAGE and a.status == "done"]
    unrecorded = _unrecorded(session, delivered) if delivered else set()
    messages = [
        action
        for action in actions
        if action.kind == OutboxAction.Kind.MESSAGE
        and (action.status != "done" or action.pk in unrecorded)
    ]
    problems = [
        a
        for a in actions
        if a.kind not in {OutboxAction.Kind.MESSAGE, OutboxAction.Kind.APPROVE}
        and (a.status == "failed" or (a.is_open and a.last_error))
    ]
    return Pending(messages=messages, problems=problems)

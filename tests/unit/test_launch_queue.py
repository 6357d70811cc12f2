"""The launch queue: caps, creates in flight, fairness, learned caps, cancel and reorder.

docs/launch-queue.md
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.http import Http404
from django.utils import timezone

from jules_simulator import SimulatorConfig, start_simulator
from sessions_app.access import ActionNotAllowed
from sessions_app.launch_queue import gate, selectors
from sessions_app.launch_queue import services as queue
from sessions_app.models import AuditEntry, LaunchCaps, LaunchTicket, OutboxAction, SessionState
from sessions_app.outbox import delivery
from sessions_app.sessions import services
from tests.factories import ConnectionFactory, MembershipFactory, SessionFactory, UserFactory

pytestmark = pytest.mark.django_db

Wait = LaunchTicket.Wait


@pytest.fixture
def conn(cast):
    return ConnectionFactory(team=cast.team, label="main")


def _caps(connection, **fields):
    caps = gate.caps_for(connection.pk)
    for name, value in fields.items():
        setattr(caps, name, value)
    caps.save()
    return caps


def _launch(user, connection, prompt="Fix it", **kwargs):
    return services.session_launch(user=user, connection=connection, prompt=prompt, **kwargs)


def _ticket(action):
    return LaunchTicket.objects.get(pk=action.pk)


def _finish(action):
    """What delivery does after a create: the session exists and the ticket started."""
    session = SessionFactory(connection=action.connection, state=SessionState.QUEUED)
    session.create_time = timezone.now()
    session.save()
    OutboxAction.objects.filter(pk=action.pk).update(status="done", session=session)
    gate.started(OutboxAction.objects.get(pk=action.pk))
    return session


def test_it_starts_launches_while_the_account_has_room(cast, conn):
    _caps(conn, tier="free")  # 3 at once
    SessionFactory.create_batch(2, connection=conn, state=SessionState.IN_PROGRESS)
    SessionFactory(connection=conn, state=SessionState.COMPLETED)
    first, second = _launch(cast.member, conn), _launch(cast.member, conn)
    assert gate.admit(first).admitted
    verdict = gate.admit(second)
    # Two running plus one create in flight fill the three slots.
    assert not verdict.admitted and verdict.reason == Wait.CONCURRENT
    assert "3 of 3" in verdict.detail
    assert _ticket(second).wait_reason == Wait.CONCURRENT


def test_it_counts_paused_and_finished_sessions_as_free_slots(cast, conn):
    _caps(conn, tier="custom", concurrent_cap=1)
    SessionFactory(connection=conn, state=SessionState.PAUSED)
    SessionFactory(connection=conn, state=SessionState.FAILED)
    SessionFactory(connection=conn, state=SessionState.IN_PROGRESS, deleted_remotely=True)
    assert gate.admit(_launch(cast.member, conn)).admitted


def test_it_waits_for_the_daily_window_and_says_until_when(cast, conn):
    _caps(conn, tier="custom", daily_cap=2)
    now = timezone.now()
    oldest = SessionFactory(connection=conn, create_time=now - dt.timedelta(hours=23))
    SessionFactory(connection=conn, create_time=now - dt.timedelta(hours=1))
    SessionFactory(connection=conn, create_time=now - dt.timedelta(hours=30))  # outside
    verdict = gate.admit(_launch(cast.member, conn))
    assert not verdict.admitted and verdict.reason == Wait.DAILY
    assert "2 of 2" in verdict.detail
    # The oldest create leaves the window in about an hour.
    assert 3500 < verdict.retry_in <= 3600
    oldest.create_time = now - dt.timedelta(hours=25)
    oldest.save()
    assert gate.admit(OutboxAction.objects.latest("created_at")).admitted


def test_it_keeps_at_most_a_few_creates_in_flight(cast, conn):
    _caps(conn, max_in_flight=2)
    actions = [_launch(cast.member, conn) for _ in range(3)]
    assert [gate.admit(a).admitted for a in actions] == [True, True, False]
    assert _ticket(actions[2]).wait_reason == Wait.IN_FLIGHT
    _finish(actions[0])
    assert gate.admit(actions[2]).admitted


def test_it_holds_later_launches_behind_earlier_ones(cast, conn):
    _caps(conn, tier="custom", concurrent_cap=1)
    first, second = _launch(cast.member, conn), _launch(cast.member, conn)
    verdict = gate.admit(second)
    assert not verdict.admitted and verdict.reason == Wait.POSITION
    assert "1 earlier launch" in verdict.detail
    assert gate.admit(first).admitted


def test_it_is_fair_between_members(cast, conn):
    _caps(conn, tier="custom", concurrent_cap=1)
    a = [_launch(cast.member, conn, f"a{i}") for i in range(3)]
    b = [_launch(cast.approver, conn, f"b{i}") for i in range(2)]
    started = []
    pending = a + b
    for _ in range(5):
        admitted = [x for x in pending if gate.admit(x).admitted]
        assert len(admitted) == 1  # one slot: exactly the head starts
        started.append(admitted[0].payload["prompt"])
        pending.remove(admitted[0])
        session = _finish(admitted[0])
        session.state = SessionState.COMPLETED
        session.save()
    assert started == ["a0", "b0", "a1", "b1", "a2"]


def test_it_spreads_a_launch_over_the_teams_connections_when_allowed(cast, conn):
    other = ConnectionFactory(team=cast.team, label="spare")
    for connection in (conn, other):
        _caps(connection, tier="custom", concurrent_cap=1)
    SessionFactory(connection=conn, state=SessionState.IN_PROGRESS)
    pinned = _launch(cast.member, conn, "pinned")
    roaming = _launch(cast.member, conn, "roaming", any_connection=True)
    assert not gate.admit(pinned).admitted
    verdict = gate.admit(roaming)
    assert verdict.admitted and verdict.connection == other
    assert OutboxAction.objects.get(pk=roaming.pk).connection_id == other.pk


def test_it_spreads_only_to_connections_that_have_the_repository(cast, conn):
    ConnectionFactory(team=cast.team, label="spare")  # without the repository
    _caps(conn, tier="custom", concurrent_cap=1)
    SessionFactory(connection=conn, state=SessionState.IN_PROGRESS)
    action = _launch(
        cast.member,
        conn,
        source_name="sources/github/acme/billing",
        starting_branch="main",
        any_connection=True,
    )
    assert gate.candidates(_ticket(action)) == [conn]
    assert not gate.admit(action).admitted


def test_it_waits_while_the_connection_is_disabled(cast, conn):
    action = _launch(cast.member, conn)
    conn.enabled = False
    conn.save()
    verdict = gate.admit(action)
    assert not verdict.admitted and verdict.reason == Wait.DISABLED


def test_it_learns_a_cap_from_a_refusal_and_then_waits_for_room(cast):
    config = SimulatorConfig(concurrent_cap=2)
    with start_simulator(api_keys=["test-key"], manual_clock=True, config=config) as sim:
        connection = ConnectionFactory(team=cast.team, base_url=sim.base_url, api_key="test-key")
        cast.team.require_plan_approval = False
        cast.team.save()
        actions = [_launch(cast.member, connection, f"task {i}") for i in range(3)]
        assert [delivery.deliver(str(a.pk)) for a in actions[:2]] == ["done", "done"]
        assert delivery.deliver(str(actions[2].pk)) == "pending"
        caps = LaunchCaps.objects.get(pk=connection.pk)
        assert caps.learned_concurrent_cap == 2 and caps.effective() == (None, 2)
        ticket = _ticket(actions[2])
        assert ticket.status == LaunchTicket.Status.QUEUED and ticket.wait_reason == Wait.REFUSED
        assert sim.quotas()
        [account] = sim.quotas().values()
        assert account["refused_concurrent"] == 1 and account["peak_busy"] == 2
        # Next time the gate knows the cap and does not ask Jules at all.
        OutboxAction.objects.filter(pk=actions[2].pk).update(next_attempt_at=timezone.now())
        assert delivery.deliver(str(actions[2].pk)) == "pending"
        assert _ticket(actions[2]).wait_reason == Wait.CONCURRENT
        assert sim.quotas()[account_id(sim)]["refused_concurrent"] == 1


def account_id(sim):
    [name] = sim.quotas()
    return name


def test_it_never_lowers_caps_an_admin_set(cast, conn):
    from jules import errors as jerrors

    _caps(conn, tier="pro")
    action = _launch(cast.member, conn)
    refusal = jerrors.RateLimitedError("over", status=429, reason="CONCURRENT_SESSION_LIMIT")
    gate.learn(conn, refusal)
    assert LaunchCaps.objects.get(pk=conn.pk).effective() == (100, 15)
    assert action


def test_it_learns_no_cap_from_a_rate_limit_that_says_when_to_come_back(cast, conn):
    from jules import errors as jerrors

    _launch(cast.member, conn)
    throttled = jerrors.RateLimitedError("slow down", status=429, retry_after=1.0)
    gate.learn(conn, throttled)
    assert gate.caps_for(conn.pk).effective() == (None, None)
    # A quota refusal that names its cap still teaches it.
    full = jerrors.RateLimitedError("over", status=429, reason="CONCURRENT_SESSION_LIMIT")
    gate.learn(conn, full)
    assert LaunchCaps.objects.get(pk=conn.pk).effective()[1] is not None


def test_it_lets_the_launcher_or_an_admin_cancel_a_waiting_launch(cast, conn):
    mine, again = _launch(cast.member, conn), _launch(cast.member, conn)
    with pytest.raises(ActionNotAllowed):
        queue.ticket_cancel(user=cast.approver, ticket=_ticket(mine))
    with pytest.raises(Http404):
        queue.ticket_cancel(user=cast.outsider, ticket=_ticket(mine))
    assert queue.ticket_cancel(user=cast.member, ticket=_ticket(mine)).status == "cancelled"
    assert queue.ticket_cancel(user=cast.admin, ticket=_ticket(again)).status == "cancelled"
    action = OutboxAction.objects.get(pk=mine.pk)
    assert action.status == "failed" and "Cancelled in the queue by member" in action.last_error
    assert AuditEntry.objects.filter(action="queue.cancel").count() == 2
    assert delivery.deliver(str(mine.pk)) == "failed"  # nothing left to send


def test_it_refuses_to_cancel_a_launch_being_created(cast, conn):
    action = _launch(cast.member, conn)
    assert delivery._claim(str(action.pk))
    gate.admit(action)
    with pytest.raises(ActionNotAllowed, match="Too late"):
        queue.ticket_cancel(user=cast.member, ticket=_ticket(action))
    assert _ticket(action).status == LaunchTicket.Status.CREATING


def test_admins_reorder_the_queue(cast, conn):
    _caps(conn, tier="custom", concurrent_cap=1)
    SessionFactory(connection=conn, state=SessionState.IN_PROGRESS)
    first, _second, third = (_launch(cast.member, conn, p) for p in ("one", "two", "three"))
    with pytest.raises(ActionNotAllowed):
        queue.ticket_move(user=cast.member, ticket=_ticket(third), direction="up")
    queue.ticket_move(user=cast.admin, ticket=_ticket(third), direction="up")
    queue.ticket_move(user=cast.admin, ticket=_ticket(third), direction="up")
    queue.ticket_move(user=cast.admin, ticket=_ticket(first), direction="down")
    view = selectors.team_queue(cast.team)
    assert [entry.prompt for entry in view.entries] == ["three", "two", "one"]
    assert [entry.position for entry in view.entries] == [1, 2, 3]
    assert AuditEntry.objects.filter(action="queue.move").count() == 3


def test_the_queue_view_says_why_and_estimates_a_start(cast, conn):
    _caps(conn, tier="custom", concurrent_cap=1)
    now = timezone.now()
    SessionFactory(
        connection=conn,
        state=SessionState.COMPLETED,
        create_time=now - dt.timedelta(minutes=30),
        update_time=now - dt.timedelta(minutes=20),
    )
    SessionFactory(connection=conn, state=SessionState.IN_PROGRESS, create_time=now)
    action = _launch(cast.member, conn)
    gate.admit(action)
    [entry] = selectors.team_queue(cast.team).entries
    assert entry.reason == Wait.CONCURRENT and entry.why.startswith("Concurrent cap")
    # One finished session took ten minutes: a slot frees in about that.
    assert entry.estimate is not None
    assert now + dt.timedelta(minutes=5) < entry.estimate < now + dt.timedelta(minutes=15)


def test_the_caps_need_an_admin(cast, conn):
    with pytest.raises(ActionNotAllowed):
        queue.caps_update(user=cast.approver, connection=conn, tier="free")
    caps = queue.caps_update(user=cast.admin, connection=conn, tier="custom", daily_cap=7)
    assert caps.effective() == (7, None)
    with pytest.raises(ActionNotAllowed):
        queue.caps_update(user=cast.admin, connection=conn, tier="custom")
    assert AuditEntry.objects.filter(action="queue.caps").count() == 1


def test_a_new_member_gets_a_turn_before_a_long_queue(cast, conn):
    _caps(conn, tier="custom", concurrent_cap=1)
    SessionFactory(connection=conn, state=SessionState.IN_PROGRESS)
    for i in range(4):
        _launch(cast.member, conn, f"m{i}")
    newcomer = UserFactory(username="newcomer")
    MembershipFactory(team=cast.team, user=newcomer, role="member")
    _launch(newcomer, conn, "n0")
    prompts = [e.prompt for e in selectors.team_queue(cast.team).entries]
    assert prompts == ["m0", "n0", "m1", "m2", "m3"]


# --- the pages ---------------------------------------------------------------------------


def test_the_queue_page_shows_position_reason_and_polls_until_empty(client, cast, conn):
    from django.urls import reverse

    _caps(conn, tier="custom", concurrent_cap=1)
    SessionFactory(connection=conn, state=SessionState.IN_PROGRESS)
    first = _launch(cast.member, conn, "First thing")
    second = _launch(cast.admin, conn, "Second thing")
    gate.admit(first)
    client.force_login(cast.viewer)
    url = reverse("sessions_app:team-queue", args=[cast.team.slug])
    html = client.get(url).content.decode()
    assert "First thing" in html and "Second thing" in html
    assert "Concurrent cap reached" in html and 'hx-trigger="every 3s"' in html
    assert "Cancel" not in html and "↑" not in html  # a viewer only reads
    view = selectors.team_queue(cast.team)
    polled = client.get(f"{url}?v={view.version}", HTTP_HX_REQUEST="true", HTTP_HX_TRIGGER="queue")
    assert polled.status_code == 204
    client.force_login(cast.admin)
    html = client.get(url).content.decode()
    assert html.count(">Cancel<") == 2 and "↑" in html
    for action in (first, second):
        client.post(reverse("sessions_app:queue-cancel", args=[action.pk]))
    last = client.get(url, HTTP_HX_REQUEST="true", HTTP_HX_TRIGGER="queue")
    assert last.status_code == 286 and "Nothing waits" in last.content.decode()


def test_the_caps_form_keeps_what_was_typed_on_a_mistake(client, cast, conn):
    from django.urls import reverse

    client.force_login(cast.admin)
    url = reverse("sessions_app:connection-caps", args=[conn.pk])
    response = client.post(url, {"tier": "custom", "daily_cap": "", "max_in_flight": "7"})
    html = response.content.decode()
    assert response.status_code == 200 and "need a daily or a concurrent number" in html
    assert 'value="7"' in html
    assert not LaunchCaps.objects.filter(pk=conn.pk, tier="custom").exists()
    response = client.post(url, {"tier": "free", "max_in_flight": "2"})
    assert response.status_code == 302
    page = client.get(reverse("sessions_app:connection-detail", args=[conn.pk])).content.decode()
    assert "15 a day, 3 at once" in page and "Launch caps" in page


def test_a_failed_session_runs_again_prefilled_and_linked_both_ways(client, cast, conn):
    from django.urls import reverse

    from tests.factories import SourceFactory

    source = SourceFactory(
        connection=conn, name="sources/github/acme/billing", repo="billing", branches=["main"]
    )
    failed = SessionFactory(
        connection=conn,
        state=SessionState.FAILED,
        prompt="Fix the flaky test",
        title="Flaky",
        source_name=source.name,
        starting_branch="main",
        automation_mode="AUTO_CREATE_PR",
        launched_by=cast.member,
    )
    client.force_login(cast.member)
    page = client.get(reverse("sessions_app:session-detail", args=[failed.pk])).content.decode()
    assert f"?rerun={failed.pk}" in page
    form = client.get(reverse("sessions_app:session-launch") + f"?rerun={failed.pk}")
    html = form.content.decode()
    assert "Fix the flaky test" in html and f'name="rerun_of" value="{failed.pk}"' in html
    assert 'id="id_auto_create_pr" value="on" checked' in html
    response = client.post(
        reverse("sessions_app:session-launch"),
        {
            "connection": conn.pk,
            "source": source.pk,
            "branch": "main",
            "prompt": "Fix the flaky test, again",
            "require_plan_approval": "on",
            "rerun_of": failed.pk,
        },
    )
    assert response.status_code == 302
    ticket = LaunchTicket.objects.get(rerun_of=failed)
    assert ticket.action.payload["prompt"] == "Fix the flaky test, again"
    page = client.get(reverse("sessions_app:session-detail", args=[failed.pk])).content.decode()
    assert "Run again as:" in page and f'data-rerun="{ticket.action_id}"' in page
    rerun = _finish(ticket.action)
    page = client.get(reverse("sessions_app:session-detail", args=[rerun.pk])).content.decode()
    assert f'data-rerun-of="{failed.pk}"' in page and "A re-run of" in page


def test_only_resting_sessions_run_again(client, cast, conn):
    from django.urls import reverse

    running = SessionFactory(connection=conn, state=SessionState.IN_PROGRESS)
    client.force_login(cast.member)
    page = client.get(reverse("sessions_app:session-detail", args=[running.pk])).content.decode()
    assert "?rerun=" not in page
    response = client.post(
        reverse("sessions_app:session-launch"),
        {"connection": conn.pk, "prompt": "again", "rerun_of": running.pk},
    )
    assert "Only a failed or completed session can be run again." in response.content.decode()
    assert not LaunchTicket.objects.exists()
    client.force_login(cast.viewer)
    failed = SessionFactory(connection=conn, state=SessionState.FAILED)
    page = client.get(reverse("sessions_app:session-detail", args=[failed.pk])).content.decode()
    assert "?rerun=" not in page  # viewers do not launch


def test_one_message_reaches_each_selected_session_that_awaits_feedback(
    client, cast, simulator, sim_connection
):
    from django.urls import reverse

    from jules.client import JulesClient
    from sessions_app import sync

    remotes = [
        JulesClient("test-key", simulator.base_url).create_session(
            prompt=f"Ask me [sim:question] {i}", require_plan_approval=False
        )
        for i in range(2)
    ]
    simulator.advance(600)
    asking = []
    for remote in remotes:
        session = sync.upsert_remote_session(sim_connection, remote, launched_by=cast.member)
        sync.sync_one_session(session.pk)
        session.refresh_from_db()
        asking.append(session)
    assert {s.state for s in asking} == {SessionState.AWAITING_USER_FEEDBACK}
    done = SessionFactory(connection=sim_connection, state=SessionState.COMPLETED)
    client.force_login(cast.member)
    url = reverse("sessions_app:session-bulk")
    ids = [s.pk for s in asking] + [done.pk]
    response = client.post(url, {"action": "message", "prompt": "", "ids": ids})
    assert not OutboxAction.objects.filter(kind="message").exists()
    response = client.post(url, {"action": "message", "prompt": "Use option B", "ids": ids})
    assert response.status_code == 302
    status_url = response["Location"]
    actions = OutboxAction.objects.filter(kind="message").order_by("created_at")
    assert {a.session_id for a in actions} == {s.pk for s in asking}
    page = client.get(status_url)
    html = page.content.decode()
    assert html.count('data-status="pending"') == 2 and "0 delivered, 2 on the way" in html
    messages = [m.message for m in page.context["messages"]]
    assert any("does not await feedback" in m for m in messages)
    for action in actions:
        assert delivery.deliver(str(action.pk)) == "done"
    last = client.get(status_url, HTTP_HX_REQUEST="true")
    assert (
        last.status_code == 286 and "2 delivered, 0 on the way, 0 failed" in last.content.decode()
    )
    # Another person sees none of these messages on that page.
    client.force_login(cast.approver)
    assert "None of these messages is yours" in client.get(status_url).content.decode()


def test_the_tick_wakes_the_head_of_the_queue_when_a_slot_frees(
    cast, conn, django_capture_on_commit_callbacks
):
    from unittest import mock

    from sessions_app import tasks

    _caps(conn, tier="custom", concurrent_cap=1)
    running = SessionFactory(connection=conn, state=SessionState.IN_PROGRESS)
    first, second = _launch(cast.member, conn, "one"), _launch(cast.member, conn, "two")
    parked = timezone.now() + dt.timedelta(hours=1)
    OutboxAction.objects.filter(pk__in=[first.pk, second.pk]).update(next_attempt_at=parked)
    conf = tasks.deliver_action.app.conf
    conf.task_always_eager = False  # as with workers; the autouse fixture restores it
    with mock.patch.object(tasks.deliver_action, "delay") as delay:
        assert gate.tick() == 0  # no room yet
        running.state = SessionState.COMPLETED
        running.save()
        with django_capture_on_commit_callbacks(execute=True):
            assert gate.tick() == 1
    delay.assert_called_once_with(str(first.pk))
    assert OutboxAction.objects.get(pk=first.pk).next_attempt_at <= timezone.now()
    assert OutboxAction.objects.get(pk=second.pk).next_attempt_at == parked


def test_a_create_the_outbox_gave_up_on_holds_no_slot(cast, conn):
    _caps(conn, max_in_flight=1)
    stuck, next_one = _launch(cast.member, conn), _launch(cast.member, conn)
    assert gate.admit(stuck).admitted
    assert not gate.admit(next_one).admitted
    # The sweep fails an action whose workers died too often; its ticket stays "creating".
    OutboxAction.objects.filter(pk=stuck.pk).update(status="failed")
    assert gate.admit(next_one).admitted


def test_the_api_launches_into_the_queue_on_any_connection(client, cast, conn):
    from django.urls import reverse

    from sessions_app.api.tokens import token_create

    other = ConnectionFactory(team=cast.team, label="spare")
    _caps(conn, tier="custom", concurrent_cap=1)
    SessionFactory(connection=conn, state=SessionState.IN_PROGRESS)
    _token, secret = token_create(user=cast.member, name="ci", scopes=["read", "launch"])
    response = client.post(
        "/api/v1/sessions",
        {"connection": conn.pk, "prompt": "From CI", "any_connection": True},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert response.status_code == 202, response.content
    ticket = LaunchTicket.objects.get()
    assert ticket.any_connection
    assert gate.admit(ticket.action).connection == other
    page = client.get(reverse("sessions_app:team-queue", args=[cast.team.slug]))
    assert page.status_code == 302  # the API token signs nobody in to the pages


def test_a_rate_limit_that_names_no_quota_teaches_no_cap(cast, conn):
    from jules import errors as jerrors

    SessionFactory.create_batch(3, connection=conn, state=SessionState.IN_PROGRESS)
    assert gate.admit(_launch(cast.member, conn)).admitted  # the create Jules refuses
    gate.learn(conn, jerrors.RateLimitedError("slow down", status=429, retry_after=1))
    assert gate.caps_for(conn.pk).effective() == (None, None)
    gate.learn(conn, jerrors.RateLimitedError("over", status=429, reason="DAILY_SESSION_LIMIT"))
    assert gate.caps_for(conn.pk).effective() == (3, None)


def test_the_operator_reads_caps_and_tickets_in_the_admin_but_changes_nothing(client, cast, conn):
    from django.contrib.auth import get_user_model

    operator = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    _caps(conn, tier="pro")
    action = _launch(cast.member, conn, "Seen by the operator")
    client.force_login(operator)
    listing = client.get("/admin/sessions_app/launchticket/")
    assert listing.status_code == 200 and "Queued" in listing.content.decode()
    caps_page = client.get(f"/admin/sessions_app/launchcaps/{conn.pk}/change/")
    assert caps_page.status_code == 200
    client.post(f"/admin/sessions_app/launchcaps/{conn.pk}/change/", {"tier": "free"})
    assert LaunchCaps.objects.get(pk=conn.pk).tier == "pro"
    assert client.get("/admin/sessions_app/launchticket/add/").status_code == 403
    assert action


def test_learned_caps_lapse_after_a_day(cast, conn):
    from jules import errors as jerrors

    SessionFactory.create_batch(2, connection=conn, state=SessionState.IN_PROGRESS)
    assert gate.admit(_launch(cast.member, conn)).admitted
    refusal = jerrors.RateLimitedError("over", status=429, reason="CONCURRENT_SESSION_LIMIT")
    gate.learn(conn, refusal)
    assert gate.caps_for(conn.pk).effective() == (None, 2)
    LaunchCaps.objects.filter(pk=conn.pk).update(learned_at=timezone.now() - dt.timedelta(hours=25))
    assert gate.caps_for(conn.pk).effective() == (None, None)
    # A new refusal teaches afresh, even a higher number than before.
    SessionFactory(connection=conn, state=SessionState.IN_PROGRESS)
    gate.learn(conn, refusal)
    assert gate.caps_for(conn.pk).effective() == (None, 3)

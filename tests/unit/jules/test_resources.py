"""Tolerant parsing of every resource example and of drifts (docs/jules-api.md#resources)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from jules import resources as r
from jules.errors import MalformedResponseError
from jules.resources import (
    Activity,
    Session,
    Source,
    create_body,
    format_time,
    parse_time,
)
from tests.unit.jules import spec_examples

UTC = dt.UTC


def _activities() -> list[Activity]:
    return [Activity.from_json(a) for a in json.loads(spec_examples.ACTIVITIES)["activities"]]


# --- sessions ----------------------------------------------------------------------------


def test_it_parses_the_spec_session_field_by_field():
    session = Session.from_json(json.loads(spec_examples.SESSION))
    assert session.name == "sessions/8016242510392637154"
    assert session.id == "8016242510392637154"
    assert session.prompt == "Add unit tests for invoice rounding"
    assert session.title == "Invoice rounding tests"
    assert session.state == r.COMPLETED
    assert session.source == "sources/github/acme/billing"
    assert session.starting_branch == "main"
    assert session.working_branch == "jules/invoice-rounding-tests"
    assert session.environment_variables_enabled is True
    assert session.require_plan_approval is True
    assert session.automation_mode == "AUTO_CREATE_PR"
    assert session.create_time == dt.datetime(2026, 3, 2, 9, 14, 5, 118204, tzinfo=UTC)
    assert session.update_time == dt.datetime(2026, 3, 2, 9, 41, 47, 902611, tzinfo=UTC)
    assert session.url == "https://jules.google.com/session/8016242510392637154"
    assert session.archived is True
    assert session.raw["title"] == "Invoice rounding tests"


def test_it_parses_both_output_kinds_in_the_order_sent():
    session = Session.from_json(json.loads(spec_examples.SESSION))
    first_output, second_output = session.outputs
    first = first_output.change_set
    assert first is not None and first_output.pull_request is None
    assert first.source == "sources/github/acme/billing"
    assert first.unidiff_patch.startswith("diff --git a/tests/test_round.py")
    assert "\n" in first.unidiff_patch
    assert first.base_commit_id == "4f2a9c1d0e8b7a6f5e4d3c2b1a09f8e7d6c5b4a3"
    assert first.suggested_commit_message == "test: cover invoice rounding"
    pr = second_output.pull_request
    assert pr is not None and second_output.change_set is None
    assert pr.url == "https://github.com/acme/billing/pull/412" and pr.number == 412
    assert (pr.title, pr.base_ref, pr.head_ref) == (
        "Invoice rounding tests",
        "main",
        "jules/invoice-rounding-tests",
    )
    assert pr.description == "Adds tests for rounding edge cases."
    assert session.pull_request is pr and session.change_set is first


def test_it_reads_a_partial_create_answer_with_proto3_defaults():
    # The guide's create answer: only name, id, title, sourceContext and prompt.
    session = Session.from_json(
        {
            "name": "sessions/14550388554331055113",
            "id": "14550388554331055113",
            "title": "T",
            "prompt": "p",
            "sourceContext": {"source": "sources/github/acme/billing"},
        }
    )
    assert session.state == r.STATE_UNSPECIFIED and session.state_raw == ""
    assert session.outputs == [] and session.archived is False
    assert session.require_plan_approval is None and session.automation_mode == ""
    assert session.create_time is None and session.url == ""
    assert session.starting_branch == "" and session.environment_variables_enabled is False


def test_it_keeps_ids_beyond_2_to_the_53_exact():
    big = "14550388554331055113"
    assert int(big) > 2**53
    assert Session.from_json(json.loads(f'{{"id": "{big}"}}')).id == big
    # A number from a drifting schema is read exactly too (Python ints are unbounded).
    assert Session.from_json(json.loads(f'{{"id": {big}}}')).id == big


def test_it_links_to_the_web_app_even_without_a_url():
    assert Session.from_json({"id": "5"}).web_url == "https://jules.google.com/session/5"
    assert Session.from_json({"id": "5", "url": "https://x/5"}).web_url == "https://x/5"
    assert Session.from_json({}).web_url == ""


def test_it_derives_the_id_from_the_name_and_back():
    assert Session.from_json({"name": "sessions/5"}).id == "5"
    assert Session.from_json({"id": "6"}).name == "sessions/6"


def test_it_maps_unknown_states_to_unspecified_but_keeps_the_raw():
    session = Session.from_json({"id": "1", "state": "SNOOZING"})
    assert session.state == r.STATE_UNSPECIFIED and session.state_raw == "SNOOZING"
    # Third-party docs mention these; the real enum does not have them.
    for fake in ("ACTIVE", "CANCELLED", "PLAN_READY", "inProgress"):
        assert Session.from_json({"id": "1", "state": fake}).state == r.STATE_UNSPECIFIED
    for state in r.STATES:
        assert Session.from_json({"id": "1", "state": state}).state == state


def test_it_groups_states_like_the_sdk():
    assert r.is_terminal(r.COMPLETED) and r.is_terminal(r.FAILED)
    assert not r.is_terminal(r.PAUSED)
    assert r.needs_user(r.AWAITING_PLAN_APPROVAL) and r.needs_user(r.AWAITING_USER_FEEDBACK)
    assert r.is_busy(r.QUEUED) and r.is_busy(r.PLANNING) and r.is_busy(r.IN_PROGRESS)
    assert not r.is_busy(r.PAUSED) and not r.needs_user(r.PAUSED)
    assert r.normalize_state("PAUSED") == "PAUSED" and r.normalize_state(3) == r.STATE_UNSPECIFIED
    assert Session.from_json({"id": "1", "state": "FAILED"}).is_terminal
    assert Session.from_json({"id": "1", "state": "AWAITING_USER_FEEDBACK"}).needs_user


def test_it_degrades_nested_oddities_of_a_session_to_defaults():
    session = Session.from_json(
        {
            "id": "1",
            "title": 5,
            "sourceContext": ["not", "an", "object"],
            "outputs": [
                "junk",
                {"pullRequest": "junk"},
                {"pullRequest": {"url": "https://github.com/a/b/pull/x"}},
                {"somethingNew": {}},
            ],
            "archived": "yes",
            "requirePlanApproval": "true",
            "createTime": "yesterday",
        }
    )
    assert session.title == "" and session.source == "" and session.archived is False
    assert session.require_plan_approval is None and session.create_time is None
    assert session.outputs[0].pull_request is None and session.outputs[0].raw == {}
    assert session.outputs[1].pull_request == r.PullRequest()
    assert session.outputs[2].pull_request is not None
    assert session.outputs[2].pull_request.number is None
    assert session.outputs[3].raw == {"somethingNew": {}}
    assert Session.from_json({"id": "1", "outputs": {}}).outputs == []


@pytest.mark.parametrize("value", [["a"], "sessions/1", 7, None, True])
def test_it_rejects_a_top_level_resource_that_is_not_an_object(value):
    for parse in (Session.from_json, Activity.from_json, Source.from_json):
        with pytest.raises(MalformedResponseError):
            parse(value)


@pytest.mark.parametrize(
    ("url", "number"),
    [
        ("https://github.com/acme/billing/pull/412", 412),
        ("https://github.com/acme/billing/pull/412/", 412),
        ("https://github.com/acme/billing/pull/412/files", 412),
        ("https://github.com/acme/billing/pull/412#discussion_r1", 412),
        ("https://github.com/acme/billing/compare/main...x", None),
        ("", None),
    ],
)
def test_it_parses_the_pull_request_number_from_the_url(url, number):
    assert r.PullRequest(url=url).number == number


# --- activities --------------------------------------------------------------------------


def test_it_parses_every_activity_kind_of_the_spec():
    activities = _activities()
    assert [a.kind for a in activities] == [
        "planGenerated",
        "planApproved",
        "progressUpdated",
        "progressUpdated",
        "agentMessaged",
        "userMessaged",
        "sessionCompleted",
    ]
    failed = Activity.from_json(json.loads(spec_examples.FAILED_ACTIVITY))
    assert failed.kind == "sessionFailed"
    assert failed.failure_reason == "Unable to install dependencies"
    assert failed.session_id == "7730019482211045521"
    assert failed.create_time == dt.datetime(2026, 3, 3, 11, 2, 19, 440981, tzinfo=UTC)


def test_it_reads_the_common_activity_fields():
    first = _activities()[0]
    assert first.name == (
        "sessions/8016242510392637154/activities/c41f07a2d9e34b5f8a6017e2b3d4c5f6"
    )
    assert first.id == "c41f07a2d9e34b5f8a6017e2b3d4c5f6"
    assert first.session_id == "8016242510392637154"
    assert first.description == "Plan generated"
    assert first.originator == "agent"
    assert first.create_time_raw == "2026-03-02T09:15:40.201337Z"
    assert first.create_time == dt.datetime(2026, 3, 2, 9, 15, 40, 201337, tzinfo=UTC)
    assert first.artifacts == []


def test_it_reads_a_plan_with_the_first_step_index_omitted():
    plan = _activities()[0].plan
    assert plan is not None
    assert plan.id == "9a7e5c3b1d0f4e2a8c6b4d2f0e1a3c5b"
    assert plan.create_time == dt.datetime(2026, 3, 2, 9, 15, 40, 198001, tzinfo=UTC)
    assert [(s.id, s.title, s.description, s.index) for s in plan.steps] == [
        ("e1d2c3b4a5968778695a4b3c2d1e0f9a", "Read the rounding code.", "", 0),
        ("f0e9d8c7b6a5948372615a4b3c2d1e0f", "Write tests.", "", 1),
    ]


def test_it_reads_each_payload_into_its_own_field():
    (_, approved, bash, media, question, answer, completed) = _activities()
    assert approved.approved_plan_id == "9a7e5c3b1d0f4e2a8c6b4d2f0e1a3c5b"
    assert approved.originator == "user" and approved.plan is None
    assert bash.progress_title == "Ran bash command"
    assert bash.progress_description == "Command: pytest -q\nOutput: 41 passed"
    assert media.progress_title == "Frontend verification" and media.progress_description == ""
    assert question.agent_message == "Should negative totals round toward zero?"
    assert answer.user_message == "Yes, toward zero." and answer.originator == "user"
    assert completed.kind == "sessionCompleted" and completed.agent_message == ""
    # Payload fields of other kinds stay empty, so a reader cannot mistake them.
    assert question.user_message == "" and bash.failure_reason == ""


def test_it_parses_every_artifact_kind_of_the_spec():
    activities = _activities()
    bash = activities[2].artifacts[0]
    assert bash.kind == "bashOutput" and bash.bash_output is not None
    # exitCode 0 is omitted in proto3 JSON.
    assert (bash.bash_output.command, bash.bash_output.output, bash.bash_output.exit_code) == (
        "pytest -q",
        "41 passed",
        0,
    )
    media = activities[3].artifacts[0]
    assert media.kind == "media" and media.media is not None
    assert (media.media.data, media.media.mime_type) == ("iVBORw0KGgo=", "image/png")
    change = activities[6].artifacts[0]
    assert change.kind == "changeSet" and change.change_set is not None
    assert change.change_set.base_commit_id == "4f2a9c1d0e8b7a6f5e4d3c2b1a09f8e7d6c5b4a3"
    assert change.change_set.unidiff_patch == "diff --git ..."
    assert change.raw == json.loads(spec_examples.ACTIVITIES)["activities"][6]["artifacts"][0]


def test_it_reads_a_failed_bash_command():
    activity = Activity.from_json(
        {"id": "a", "artifacts": [{"bashOutput": {"command": "make", "exitCode": 2}}]}
    )
    assert activity.artifacts[0].bash_output == r.BashOutput(command="make", exit_code=2)


def test_it_keeps_unknown_kinds_and_artifacts_raw():
    odd = {
        "name": "sessions/1/activities/ab",
        "createTime": "2026-03-02T09:15:40Z",
        "description": "Searched the code",
        "toolCalled": {"tool": "grep"},
        "artifacts": [{"hologram": {"frames": 3}}, "junk"],
    }
    activity = Activity.from_json(odd)
    assert activity.kind == "unknown" and activity.description == "Searched the code"
    assert activity.originator == "system"  # the SDK's default when missing
    assert activity.id == "ab" and activity.session_id == "1"
    assert [a.kind for a in activity.artifacts] == ["unknown", "unknown"]
    assert activity.artifacts[0].raw == {"hologram": {"frames": 3}}
    assert activity.raw is odd


def test_it_reads_an_activity_with_no_kind_and_no_fields():
    activity = Activity.from_json({})
    assert (activity.kind, activity.id, activity.session_id, activity.originator) == (
        "unknown",
        "",
        "",
        "system",
    )
    assert activity.create_time is None and activity.create_time_raw == ""


def test_it_degrades_nested_oddities_of_an_activity_to_defaults():
    activity = Activity.from_json(
        {
            "id": "a",
            "originator": 3,
            "planGenerated": {"plan": {"steps": ["junk", {"title": "x", "index": "2"}]}},
            "artifacts": {"not": "a list"},
        }
    )
    assert activity.kind == "planGenerated" and activity.originator == "system"
    assert activity.plan is not None
    assert [(s.title, s.index) for s in activity.plan.steps] == [("", 0), ("x", 2)]
    assert activity.artifacts == []
    weird = Activity.from_json({"id": "b", "sessionCompleted": True, "agentMessaged": None})
    assert weird.kind == "agentMessaged" and weird.agent_message == ""
    assert Activity.from_json({"id": "c", "progressUpdated": {}}).progress_title == ""


def test_it_accepts_an_originator_beyond_the_three_known():
    assert Activity.from_json({"id": "a", "originator": "reviewer"}).originator == "reviewer"


# --- sources -----------------------------------------------------------------------------


def test_it_parses_the_spec_source():
    source = Source.from_json(json.loads(spec_examples.SOURCES)["sources"][0])
    assert source.name == "sources/github/acme/billing" and source.id == "github/acme/billing"
    assert (source.owner, source.repo, source.is_private) == ("acme", "billing", True)
    assert source.default_branch == "main"
    assert source.branches == ["main", "release-2026.03"]


def test_it_tolerates_both_source_name_styles_and_missing_branches():
    newer = Source.from_json({"name": "sources/github-acme-billing", "githubRepo": {}})
    assert newer.id == "github-acme-billing" and newer.default_branch is None
    assert newer.branches == [] and newer.is_private is False
    flat = Source.from_json(
        {"id": "github/a/b", "githubRepo": {"defaultBranch": "dev", "branches": ["dev", 3]}}
    )
    assert flat.name == "sources/github/a/b"
    assert flat.default_branch == "dev" and flat.branches == ["dev"]


# --- timestamps --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-10-03T05:43:42Z", dt.datetime(2025, 10, 3, 5, 43, 42, tzinfo=UTC)),
        ("2025-10-03T05:43:42.801Z", dt.datetime(2025, 10, 3, 5, 43, 42, 801000, tzinfo=UTC)),
        ("2025-10-03T05:43:42.801654Z", dt.datetime(2025, 10, 3, 5, 43, 42, 801654, tzinfo=UTC)),
        (
            "2025-10-03T05:43:42.801654999Z",
            dt.datetime(2025, 10, 3, 5, 43, 42, 801654, tzinfo=UTC),
        ),
        (
            "2025-10-03T07:43:42.801654+02:00",
            dt.datetime(2025, 10, 3, 5, 43, 42, 801654, tzinfo=UTC),
        ),
        (
            "2025-10-03T00:13:42.801654321-05:30",
            dt.datetime(2025, 10, 3, 5, 43, 42, 801654, tzinfo=UTC),
        ),
        ("2025-10-03t05:43:42.5z", dt.datetime(2025, 10, 3, 5, 43, 42, 500000, tzinfo=UTC)),
        (
            "2025-10-03T05:43:42.80165432198Z",
            dt.datetime(2025, 10, 3, 5, 43, 42, 801654, tzinfo=UTC),
        ),
    ],
)
def test_it_parses_rfc3339_times_to_aware_utc(text, expected):
    parsed = parse_time(text)
    assert parsed == expected and parsed is not None and parsed.tzinfo is UTC


def test_it_compares_times_across_zone_spellings_and_precision():
    # String comparison gets these wrong; parsed comparison must not.
    assert parse_time("2025-10-03T05:43:42Z") == parse_time("2025-10-03T05:43:42.000000000+00:00")
    assert parse_time("2025-10-03T05:43:42.9Z") > parse_time("2025-10-03T06:43:41.000+01:00")


@pytest.mark.parametrize("value", [None, "", "garbage", "2025-13-03T05:43:42Z", 1759470222, []])
def test_it_gives_none_for_unreadable_times(value):
    assert parse_time(value) is None


def test_it_formats_times_in_the_service_style():
    moment = dt.datetime(2025, 10, 3, 7, 43, 42, 801654, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert format_time(moment) == "2025-10-03T05:43:42.801654Z"
    assert parse_time(format_time(moment)) == moment


# --- create body -------------------------------------------------------------------------


def test_it_builds_a_bare_create_body_with_only_what_was_set():
    assert create_body(prompt="Explain closures") == {"prompt": "Explain closures"}
    body = create_body(
        prompt="Add tests",
        source="github/acme/billing",
        starting_branch="main",
        title="T",
        require_plan_approval=False,
        automation_mode="AUTO_CREATE_PR",
    )
    assert body == {
        "prompt": "Add tests",
        "sourceContext": {
            "source": "sources/github/acme/billing",
            "githubRepoContext": {"startingBranch": "main"},
        },
        "title": "T",
        "requirePlanApproval": False,
        "automationMode": "AUTO_CREATE_PR",
    }
    assert "session" not in body


def test_it_keeps_full_source_names_and_does_not_invent_a_branch():
    body = create_body(prompt="p", source="sources/github-acme-billing")
    assert body["sourceContext"] == {
        "source": "sources/github-acme-billing",
        "githubRepoContext": {},
    }

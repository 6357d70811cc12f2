"""Tolerant parsing of every resource shape in the spec, and error classification."""

from __future__ import annotations

import datetime as dt

import pytest

from sessions_app.jules import errors
from sessions_app.jules.resources import Activity, Session, Source, parse_time

SPEC_ACTIVITIES = [
    {
        "name": "sessions/8016242510392637154/activities/c41f07a2d9e34b5f8a6017e2b3d4c5f6",
        "id": "c41f07a2d9e34b5f8a6017e2b3d4c5f6",
        "createTime": "2026-03-02T09:15:40.201337Z",
        "originator": "agent",
        "description": "Plan generated",
        "planGenerated": {
            "plan": {
                "id": "9a7e5c3b1d0f4e2a8c6b4d2f0e1a3c5b",
                "createTime": "2026-03-02T09:15:40.198001Z",
                "steps": [
                    {"id": "e1", "title": "Read the rounding code."},
                    {"id": "f0", "title": "Write tests.", "index": 1},
                ],
            }
        },
    },
    {
        "name": "sessions/8016242510392637154/activities/d5",
        "id": "d5",
        "createTime": "2026-03-02T09:18:02.554120Z",
        "originator": "user",
        "planApproved": {"planId": "9a7e5c3b1d0f4e2a8c6b4d2f0e1a3c5b"},
    },
    {
        "name": "sessions/1/activities/e6",
        "id": "e6",
        "createTime": "2026-03-02T09:19:31.007415Z",
        "originator": "agent",
        "progressUpdated": {
            "title": "Ran bash command",
            "description": "Command: pytest -q\nOutput: 41 passed",
        },
        "artifacts": [{"bashOutput": {"command": "pytest -q", "output": "41 passed"}}],
    },
    {
        "name": "sessions/1/activities/f7",
        "id": "f7",
        "createTime": "2026-03-02T09:22:10.912003Z",
        "originator": "agent",
        "progressUpdated": {"title": "Frontend verification"},
        "artifacts": [{"media": {"data": "iVBORw0KGgo=", "mimeType": "image/png"}}],
    },
    {
        "name": "sessions/1/activities/08",
        "id": "08",
        "createTime": "2026-03-02T09:25:44.300870Z",
        "originator": "agent",
        "agentMessaged": {"agentMessage": "Should negative totals round toward zero?"},
    },
    {
        "name": "sessions/1/activities/19",
        "id": "19",
        "createTime": "2026-03-02T09:31:02.118452Z",
        "originator": "user",
        "userMessaged": {"userMessage": "Yes, toward zero."},
    },
    {
        "name": "sessions/1/activities/2a",
        "id": "2a",
        "createTime": "2026-03-02T09:41:47.902611Z",
        "originator": "agent",
        "sessionCompleted": {},
        "artifacts": [
            {
                "changeSet": {
                    "source": "sources/github/acme/billing",
                    "gitPatch": {
                        "unidiffPatch": "diff --git ...",
                        "baseCommitId": "4f2a9c1d0e8b7a6f5e4d3c2b1a09f8e7d6c5b4a3",
                        "suggestedCommitMessage": "test: cover invoice rounding",
                    },
                }
            }
        ],
    },
    {
        "name": "sessions/7/activities/9e",
        "id": "9e",
        "createTime": "2026-03-03T11:02:19.440981Z",
        "originator": "agent",
        "sessionFailed": {"reason": "Unable to install dependencies"},
    },
]


def test_it_parses_every_activity_kind_of_the_spec():
    parsed = [Activity.from_json(a) for a in SPEC_ACTIVITIES]
    assert [a.kind for a in parsed] == [
        "planGenerated",
        "planApproved",
        "progressUpdated",
        "progressUpdated",
        "agentMessaged",
        "userMessaged",
        "sessionCompleted",
        "sessionFailed",
    ]
    plan = parsed[0].plan
    assert plan is not None and [s.index for s in plan.steps] == [0, 1]
    assert parsed[1].approved_plan_id == plan.id and parsed[1].originator == "user"
    assert parsed[2].artifacts[0].bash_output.exit_code == 0
    assert parsed[3].artifacts[0].media.mime_type == "image/png"
    assert (
        parsed[4].agent_message.startswith("Should")
        and parsed[5].user_message == "Yes, toward zero."
    )
    assert (
        parsed[6].artifacts[0].change_set.suggested_commit_message == "test: cover invoice rounding"
    )
    assert parsed[7].failure_reason == "Unable to install dependencies"
    assert parsed[0].create_time_raw == "2026-03-02T09:15:40.201337Z"
    assert parsed[0].session_id == "8016242510392637154"


def test_it_keeps_unknown_kinds_and_artifacts_raw():
    odd = {
        "id": "x",
        "createTime": "2026-03-02T09:15:40Z",
        "description": "Something new",
        "toolCalled": {"tool": "grep"},
        "artifacts": [{"hologram": {}}],
        "extra": 1,
    }
    activity = Activity.from_json(odd)
    assert activity.kind == "unknown" and activity.originator == "system"
    assert activity.artifacts[0].kind == "unknown" and activity.raw == odd


def test_it_parses_the_spec_session_and_tolerates_omissions():
    session = Session.from_json(
        {
            "name": "sessions/8016242510392637154",
            "id": "8016242510392637154",
            "prompt": "Add unit tests",
            "sourceContext": {
                "source": "sources/github/acme/billing",
                "githubRepoContext": {"startingBranch": "main"},
                "workingBranch": "jules/x",
                "environmentVariablesEnabled": True,
            },
            "state": "COMPLETED",
            "archived": True,
            "createTime": "2026-03-02T09:14:05.118204Z",
            "outputs": [
                {"changeSet": {"gitPatch": {"unidiffPatch": "d"}}},
                {
                    "pullRequest": {
                        "url": "https://github.com/acme/billing/pull/412",
                        "baseRef": "main",
                    }
                },
            ],
        }
    )
    assert (
        session.id == "8016242510392637154"
        and session.archived
        and session.environment_variables_enabled
    )
    assert (
        session.outputs[1].pull_request.number == 412
        and session.outputs[0].change_set.unidiff_patch == "d"
    )
    bare = Session.from_json({"name": "sessions/5", "state": "SOMETHING_NEW"})
    assert (
        bare.id == "5"
        and bare.state == "STATE_UNSPECIFIED"
        and bare.outputs == []
        and bare.title == ""
    )
    with pytest.raises(errors.MalformedResponseError):
        Session.from_json(["not", "an", "object"])


def test_it_parses_sources_and_times():
    source = Source.from_json(
        {
            "name": "sources/github/acme/billing",
            "githubRepo": {
                "owner": "acme",
                "repo": "billing",
                "defaultBranch": {"displayName": "main"},
                "branches": [{"displayName": "main"}, {"displayName": "dev"}],
            },
        }
    )
    assert (
        source.id == "github/acme/billing"
        and source.branches == ["main", "dev"]
        and not source.is_private
    )
    nine = parse_time("2025-10-03T05:43:42.801654321Z")
    offset = parse_time("2025-10-03T07:43:42.801654+02:00")
    assert nine == offset == dt.datetime(2025, 10, 3, 5, 43, 42, 801654, tzinfo=dt.UTC)
    assert parse_time("2025-10-03T05:43:42Z").microsecond == 0
    assert parse_time("garbage") is None and parse_time(None) is None


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (
            400,
            '{"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "bad"}}',
            errors.InvalidArgumentError,
        ),
        (
            400,
            '{"error": {"code": 400, "status": "FAILED_PRECONDITION", "message": "no"}}',
            errors.FailedPreconditionError,
        ),
        (401, '{"error": {"code": 401, "status": "UNAUTHENTICATED"}}', errors.AuthError),
        (403, "", errors.PermissionDeniedError),
        (404, "Not Found", errors.NotFoundError),
        (429, '{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}}', errors.RateLimitedError),
        (502, "<html>Bad Gateway</html>", errors.TransientServerError),
        (504, "", errors.TransientServerError),
    ],
)
def test_it_classifies_errors_by_status_only(status, body, cls):
    error = errors.error_from_response(status, body, {"Retry-After": "3"})
    assert type(error) is cls and error.status == status and error.retry_after == 3.0
    assert error.retryable is (status in {429, 502, 504})

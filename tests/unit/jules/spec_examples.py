"""JSON examples of each resource and error, as the service writes them (docs/jules-api.md)."""

from __future__ import annotations

SESSION = r"""{
  "name": "sessions/8016242510392637154",
  "id": "8016242510392637154",
  "prompt": "Add unit tests for invoice rounding",
  "sourceContext": {
    "source": "sources/github/acme/billing",
    "githubRepoContext": {"startingBranch": "main"},
    "workingBranch": "jules/invoice-rounding-tests",
    "environmentVariablesEnabled": true
  },
  "title": "Invoice rounding tests",
  "requirePlanApproval": true,
  "automationMode": "AUTO_CREATE_PR",
  "createTime": "2026-03-02T09:14:05.118204Z",
  "updateTime": "2026-03-02T09:41:47.902611Z",
  "state": "COMPLETED",
  "url": "https://jules.google.com/session/8016242510392637154",
  "outputs": [
    {"changeSet": {"source": "sources/github/acme/billing",
      "gitPatch": {"unidiffPatch": "diff --git a/tests/test_round.py b/tests/test_round.py\n...",
        "baseCommitId": "4f2a9c1d0e8b7a6f5e4d3c2b1a09f8e7d6c5b4a3",
        "suggestedCommitMessage": "test: cover invoice rounding"}}},
    {"pullRequest": {"url": "https://github.com/acme/billing/pull/412",
      "title": "Invoice rounding tests", "description": "Adds tests for rounding edge cases.",
      "baseRef": "main", "headRef": "jules/invoice-rounding-tests"}}
  ],
  "archived": true
}
"""

ACTIVITIES = r"""{"activities": [
  {"name": "sessions/8016242510392637154/activities/c41f07a2d9e34b5f8a6017e2b3d4c5f6", "id": "c41f07a2d9e34b5f8a6017e2b3d4c5f6",
   "createTime": "2026-03-02T09:15:40.201337Z", "originator": "agent", "description": "Plan generated",
   "planGenerated": {"plan": {"id": "9a7e5c3b1d0f4e2a8c6b4d2f0e1a3c5b", "createTime": "2026-03-02T09:15:40.198001Z",
     "steps": [{"id": "e1d2c3b4a5968778695a4b3c2d1e0f9a", "title": "Read the rounding code."},
               {"id": "f0e9d8c7b6a5948372615a4b3c2d1e0f", "title": "Write tests.", "index": 1}]}}},
  {"name": "sessions/8016242510392637154/activities/d52a18b3e0f4c6a9b7128f3c4e5d6a07", "id": "d52a18b3e0f4c6a9b7128f3c4e5d6a07",
   "createTime": "2026-03-02T09:18:02.554120Z", "originator": "user",
   "planApproved": {"planId": "9a7e5c3b1d0f4e2a8c6b4d2f0e1a3c5b"}},
  {"name": "sessions/8016242510392637154/activities/e63b29c4f1a5d7b0c8239a4d5f6e7b18", "id": "e63b29c4f1a5d7b0c8239a4d5f6e7b18",
   "createTime": "2026-03-02T09:19:31.007415Z", "originator": "agent",
   "progressUpdated": {"title": "Ran bash command", "description": "Command: pytest -q\nOutput: 41 passed"},
   "artifacts": [{"bashOutput": {"command": "pytest -q", "output": "41 passed"}}]},
  {"name": "sessions/8016242510392637154/activities/f74c3ad5a2b6e8c1d934ab5e6a7f8c29", "id": "f74c3ad5a2b6e8c1d934ab5e6a7f8c29",
   "createTime": "2026-03-02T09:22:10.912003Z", "originator": "agent",
   "progressUpdated": {"title": "Frontend verification"},
   "artifacts": [{"media": {"data": "iVBORw0KGgo=", "mimeType": "image/png"}}]},
  {"name": "sessions/8016242510392637154/activities/085d4be6b3c7f9d2ea45bc6f7b8a9d3a", "id": "085d4be6b3c7f9d2ea45bc6f7b8a9d3a",
   "createTime": "2026-03-02T09:25:44.300870Z", "originator": "agent",
   "agentMessaged": {"agentMessage": "Should negative totals round toward zero?"}},
  {"name": "sessions/8016242510392637154/activities/196e5cf7c4d80ae3fb56cd7a8c9bae4b", "id": "196e5cf7c4d80ae3fb56cd7a8c9bae4b",
   "createTime": "2026-03-02T09:31:02.118452Z", "originator": "user",
   "userMessaged": {"userMessage": "Yes, toward zero."}},
  {"name": "sessions/8016242510392637154/activities/2a7f6d08d5e91bf40c67de8b9dacbf5c", "id": "2a7f6d08d5e91bf40c67de8b9dacbf5c",
   "createTime": "2026-03-02T09:41:47.902611Z", "originator": "agent", "sessionCompleted": {},
   "artifacts": [{"changeSet": {"source": "sources/github/acme/billing", "gitPatch": {
     "unidiffPatch": "diff --git ...", "baseCommitId": "4f2a9c1d0e8b7a6f5e4d3c2b1a09f8e7d6c5b4a3",
     "suggestedCommitMessage": "test: cover invoice rounding"}}}]}
]}
"""

SOURCES = r"""{
  "sources": [
    {"name": "sources/github/acme/billing", "id": "github/acme/billing",
     "githubRepo": {"owner": "acme", "repo": "billing", "isPrivate": true,
       "defaultBranch": {"displayName": "main"},
       "branches": [{"displayName": "main"}, {"displayName": "release-2026.03"}]}}
  ],
  "nextPageToken": "github/acme/web"
}
"""

NOT_FOUND = r"""{"error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND"}}
"""

MISSING_KEY = r"""{
  "error": {
    "code": 401,
    "message": "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
    "status": "UNAUTHENTICATED",
    "details": [
      {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "CREDENTIALS_MISSING",
        "domain": "googleapis.com"
      }
    ]
  }
}
"""

FAILED_ACTIVITY = r"""{"name": "sessions/7730019482211045521/activities/9e8d7c6b5a4f30211a2b3c4d5e6f7081", "id": "9e8d7c6b5a4f30211a2b3c4d5e6f7081", "createTime": "2026-03-03T11:02:19.440981Z", "originator": "agent", "sessionFailed": {"reason": "Unable to install dependencies"}}"""

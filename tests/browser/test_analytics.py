"""The analytics page in Chromium: its SVG charts, the table beside each, a filter that
narrows them and the CSV of a chart (docs/analytics.md)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path

import pytest
from django.utils import timezone

from sessions_app.analytics.rollup import refresh_facts
from sessions_app.models import Session
from tests.browser.conftest import sign_in
from tests.factories import ActivityFactory, ConnectionFactory, SessionFactory, SourceFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _seed(cast):
    conn = ConnectionFactory(team=cast.team, label="Main")
    for name in ("billing", "web"):
        SourceFactory(connection=conn, owner="acme", repo=name)
    start = timezone.now() - dt.timedelta(days=3)
    for i, (repo, state) in enumerate(
        [
            ("acme/billing", "COMPLETED"),
            ("acme/billing", "FAILED"),
            ("acme/web", "COMPLETED"),
            ("acme/web", "COMPLETED"),
        ]
    ):
        session = SessionFactory(
            connection=conn, repo=repo, state=state, launched_by=cast.member, create_time=start
        )
        ActivityFactory(
            session=session, kind="planGenerated", create_time=start + dt.timedelta(minutes=i + 1)
        )
        if state == "FAILED":
            ActivityFactory(
                session=session,
                kind="sessionFailed",
                failure_reason="=cmd|' /C calc'!A0",
                create_time=start + dt.timedelta(minutes=30),
            )
    refresh_facts(Session.objects.values_list("pk", flat=True))


def test_the_analytics_page_charts_filters_and_exports(page, live_server, cast, screenshot):
    _seed(cast)
    sign_in(page, live_server, "member")
    page.click("nav >> text=Analytics")
    page.wait_for_url(re.compile(r".*/analytics/$"))
    page.goto(f"{live_server.url}/teams/acme/analytics/")
    chart = page.locator("#chart-repositories")
    # Two bars, one per repository, drawn as SVG and named for assistive technology.
    assert chart.locator("svg[role=img] rect.bar-fill").count() == 2
    assert "acme/web" in (chart.locator("svg").text_content() or "")
    chart.locator("summary").click()
    table = chart.locator("table")
    assert table.is_visible()
    web = table.locator("tr", has=page.locator("th", has_text="acme/web"))
    assert web.locator("td").nth(0).inner_text() == "2"
    assert web.locator("td").nth(3).inner_text() == "100.0"
    columns = page.locator("#chart-sessions svg rect[class^=state-]")
    assert columns.count() >= 2  # completed and failed segments of the same day
    screenshot("analytics-team")

    with page.expect_download() as info:
        page.click("#chart-failures a[data-csv=failures]")
    path = Path(info.value.path())
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    # The reason is agent text: a spreadsheet shows it, never runs it.
    assert rows == [["reason", "sessions"], ["'=cmd|' /C calc'!A0", "1"]]

    page.select_option("#id_repo", "acme/billing")
    page.click("button:has-text('Apply')")
    page.wait_for_url(re.compile(r".*repo=acme%2Fbilling.*"))
    assert page.locator("#chart-repositories svg rect.bar-fill").count() == 1
    with page.expect_download() as info:
        page.click("#chart-repositories a[data-csv=repositories]")
    rows = list(csv.reader(io.StringIO(Path(info.value.path()).read_text(encoding="utf-8"))))
    assert [r[:4] for r in rows[1:]] == [["acme/billing", "2", "1", "1"]]

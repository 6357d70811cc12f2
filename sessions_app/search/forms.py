"""The search page's GET form: the words, a path prefix, and every filter of the list."""

from __future__ import annotations

from django import forms

from sessions_app.search.query import MAX_QUERY
from sessions_app.sessions.forms import SessionFilterForm


class SearchForm(SessionFilterForm):
    q = forms.CharField(required=False, max_length=MAX_QUERY, label="Search")
    path = forms.CharField(required=False, max_length=300, label="Path starts with")

"""The portal's URLs plus `/bench/trivial/`: the floor the list page is measured against."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import include, path


def trivial(request: HttpRequest) -> HttpResponse:
    """A tiny answer through the whole middleware stack (sign-in checked, session loaded)."""
    return HttpResponse(f"ok {request.user.pk}", content_type="text/plain")


urlpatterns = [
    path("bench/trivial/", trivial, name="bench-trivial"),
    path("", include("julesweb.urls")),
]

"""The Jules team portal's Django project package."""

from __future__ import annotations

# Importing the Celery app here makes `@shared_task` bind to it in every process
# that loads Django, web and worker alike.
from julesweb.celery import app as celery_app

__all__ = ["celery_app"]

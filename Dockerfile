# syntax=docker/dockerfile:1
# One image runs web, worker and beat; the command picks the role (see docker-compose.yml).
# It leaves out the Jules simulator, bench/ and tests/ (.dockerignore; docs/operations.md).

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
RUN python -m venv /venv
COPY requirements.txt .
RUN /venv/bin/pip install -r requirements.txt

FROM python:3.11-slim AS runtime
ENV PATH="/venv/bin:$PATH" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=julesweb.settings \
    DATA_DIR=/data
RUN groupadd --system portal && useradd --system --gid portal --home /app portal \
    && mkdir -p /data && chown portal:portal /data
WORKDIR /app
COPY --from=build /venv /venv
COPY --chown=portal:portal . .
# collectstatic needs settings but no database or secrets of the deployment.
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput \
    && chown -R portal:portal /app/staticfiles
USER portal
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"
CMD ["gunicorn", "julesweb.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4", "--access-logfile", "-"]

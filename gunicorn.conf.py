"""Gunicorn's settings for the portal; gunicorn reads this file from the directory it is
started in (the repository under `make run`, /app in the Docker image)."""

# Gunicorn's default (4094 bytes) answers a longer request line with a bare "414". A
# search of a few thousand characters should reach the portal, which says what it
# ignored; 8190 is the largest value gunicorn accepts.
limit_request_line = 8190

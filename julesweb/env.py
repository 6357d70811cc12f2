"""Tiny typed helpers that read settings from the environment.

Every variable the portal reads goes through these, so `.env.example` and the README's
configuration table can be checked against one place.
"""

from __future__ import annotations

import os
from pathlib import Path


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def envbool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def envint(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def envfloat(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    return float(value) if value else default


def envlist(name: str, default: str = "") -> list[str]:
    value = os.environ.get(name, default)
    return [item.strip() for item in value.split(",") if item.strip()]


def secret(name: str, default: str = "") -> str:
    """Read a secret from NAME, or else from the file that NAME_FILE points at.

    The file form lets Docker and Kubernetes secrets be mounted instead of being placed in
    the environment, where `ps` and crash reports could show them. NAME wins when both are
    set, so an operator's explicit value overrides a generated file.
    """
    value = os.environ.get(name, "")
    if value:
        return value
    path = os.environ.get(f"{name}_FILE")
    if path and Path(path).exists():
        return Path(path).read_text().strip()
    return default


def envgroups(name: str, default: str = "") -> list[str | list[str]]:
    """`a+b,c` -> [["a", "b"], "c"]: a list whose items may be groups joined with `+`."""
    groups: list[str | list[str]] = []
    for item in envlist(name, default):
        names = [part.strip() for part in item.split("+") if part.strip()]
        groups.append(names[0] if len(names) == 1 else names)
    return groups

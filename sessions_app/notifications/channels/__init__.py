"""One module per transport: email, and the team channels (webhook, slack, chat, teams)."""

from __future__ import annotations


class DeliveryError(Exception):
    """A delivery that did not go through; `retryable` says whether to try again."""

    def __init__(self, message: str, *, retryable: bool = True, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status

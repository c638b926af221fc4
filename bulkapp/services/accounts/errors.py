"""The accounts domain's error: a sentence for the user, on a form field when there is one."""

from __future__ import annotations


class AccountError(ValueError):
    """A domain error with a sentence for the user, attached to ``field`` when there is one. The sentence is lazy:
    it reads in the viewer's language where it is shown (English in the CLI)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

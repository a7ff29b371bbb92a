"""Scrubbing of vendor strings: the one gate between what a vendor says and what leaves us.

Every vendor string that reaches a caller, a log line or a metric label (ids, status words,
free text, details) goes through :class:`Scrubber` first. It removes the configured secrets
in any letter case and keeps text printable and short.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[redacted]"
MAX_TEXT_CHARS = 200
"""Vendor free text (a reason, a detail) shown to callers is cut to this."""
MAX_ID_CHARS = 256
"""Ids, the vendor's and the caller's alike (request ids, liveness data ids)."""


class Scrubber:
    """Removes the given secrets, case-insensitively, from vendor strings."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        words = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._pattern = (
            re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE) if words else None
        )

    def has_secret(self, text: str) -> bool:
        return self._pattern is not None and self._pattern.search(text) is not None

    def text(self, text: str, limit: int = MAX_TEXT_CHARS) -> str:
        """Free text, safe to show: secrets replaced, printable, at most ``limit`` chars."""
        if self._pattern is not None:
            text = self._pattern.sub(REDACTED, text)
        if not text.isprintable():
            text = "".join(ch if ch.isprintable() else " " for ch in text)
        if len(text) > limit:
            text = text[: limit - 1] + "…"
        return text

    def id(self, value: object) -> str:
        """An id the vendor sent, if it is short, printable and holds no secret; else ``""``.

        An id is used whole (echoed, logged, passed back to the vendor), so one that holds a
        secret is dropped rather than partly redacted.
        """
        if (
            isinstance(value, str)
            and 0 < len(value) <= MAX_ID_CHARS
            and value.isprintable()
            and not self.has_secret(value)
        ):
            return value
        return ""


NO_SECRETS = Scrubber()

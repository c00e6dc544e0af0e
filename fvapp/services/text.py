"""Text that people type, made safe to store: one helper every service uses for its fields."""

from __future__ import annotations

import re
import unicodedata

from .errors import DomainError

# Bidirectional embeddings, overrides and isolates: they can make "exe.txt" read "txt.exe", so a
# name could pass itself off as another in a confirmation dialog.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def invisible(char: str) -> bool:
    return unicodedata.category(char) == "Cc" or char in BIDI_CONTROLS


# The same rule as one regular expression (a character class: one pass in C over the text, where
# a call of invisible() per character costs ~0.2 µs each, 2 ms for a long description). Control
# characters (Cc: a set Unicode's stability policy keeps fixed, U+0000–U+001F, U+007F–U+009F)
# and the bidi controls are all below U+2070 (tests/services/test_text.py checks every code
# point); a multi-line text may hold tabs and line breaks.
INVISIBLE = "".join(c for c in map(chr, range(0x2070)) if invisible(c))
REFUSED = {multiline: re.compile("[" + "".join(
    re.escape(c) for c in INVISIBLE if not (multiline and c in "\n\t")) + "]")
    for multiline in (False, True)}


def clean_text(
    value: str | None,
    *,
    field: str,
    max_length: int,
    what: str,
    required: str | None = None,
    multiline: bool = False,
) -> str | None:
    """Trimmed text within `max_length` characters, or a DomainError naming `field`.

    NUL is refused (PostgreSQL text cannot hold it, and both databases must answer alike).
    Multi-line text has its line breaks normalized to \\n first, because browsers send a
    textarea's breaks as CRLF while counting each as one character against `maxlength`.
    Empty text is None, or an error when `required` (the message) is given.
    """
    text = value or ""
    if "\x00" in text:
        raise DomainError(f"{what} cannot contain NUL characters.", field=field)
    if multiline:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.strip()
    if REFUSED[multiline].search(text):
        raise DomainError(
            f"{what} cannot contain control characters or text-direction overrides"
            + ("." if multiline else " (nor line breaks)."),
            field=field,
        )
    if not text:
        if required:
            raise DomainError(required, field=field)
        return None
    if len(text) > max_length:
        raise DomainError(
            f"{what} can be at most {max_length} characters (this one has {len(text)}).",
            field=field,
        )
    return text

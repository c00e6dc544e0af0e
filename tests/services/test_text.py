"""clean_text's refusal of invisible characters: one regular expression, the same rule as
invisible() (Unicode's Cc, and the bidi controls) on every code point."""

from __future__ import annotations

import sys

import pytest

from fvapp.services.errors import DomainError
from fvapp.services.text import REFUSED, clean_text, invisible


@pytest.mark.parametrize("multiline", [False, True])
def test_the_pattern_refuses_exactly_what_invisible_names(multiline):
    every = "".join(map(chr, range(sys.maxunicode + 1)))
    expected = {c for c in every if invisible(c) and not (multiline and c in "\n\t")}
    assert set(REFUSED[multiline].findall(every)) == expected
    assert "\r" in expected  # a lone CR is a line break only after clean_text normalises it


@pytest.mark.parametrize(("text", "multiline", "refused"), [
    ("a\tb", False, True), ("a\tb", True, False), ("a\nb", True, False), ("a\r\nb", True, False),
    ("a\x7fb", True, True), ("a\x85b", True, True), ("a\u202eb", False, True),
    ("a\u2069b", True, True), ("a\u200bb", False, False), ("a\x1fb", True, True),
])
def test_clean_text_refuses_control_and_bidi_characters_anywhere(text, multiline, refused):
    def clean():
        return clean_text(text, field="f", max_length=10, what="Texts", multiline=multiline)

    if refused:
        with pytest.raises(DomainError, match="cannot contain control characters"):
            clean()
    else:
        assert clean() == text.replace("\r\n", "\n")

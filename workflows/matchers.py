r"""Label matchers with Alertmanager's semantics: ``=``, ``!=``, ``=~``, ``!~``.

Matching (Alertmanager ``pkg/labels/matcher.go``):

- A label the alert does not carry is the empty string, so ``foo!="bar"``, ``foo=""`` and
  ``foo=~".*"`` all match an alert without ``foo``.
- Regular expressions are fully anchored, as Alertmanager compiles ``^(?:<value>)$``:
  ``foo=~"bar"`` does not match ``foobar``. fireline uses ``re.fullmatch`` so that, unlike
  Python's ``$``, a trailing newline is not silently accepted. A value that starts with Go's
  inline flags (``(?i)critical|page``) keeps them for the whole expression.

Syntax (Alertmanager's UTF-8 matchers parser, ``matchers/parse``)::

    matchers := [ "{" ] [ matcher { "," matcher } [ "," ] ] [ "}" ]
    matcher  := name operator value        operator := = | != | =~ | !~
    name     := unquoted | quoted          value    := unquoted | quoted
    unquoted := characters other than whitespace and { } ! = ~ , " ' ` \
    quoted   := "..." with Go's escapes: \" \\ \n \t \r \a \b \f \v \xHH \NNN \uXXXX \UXXXXXXXX

Whitespace around tokens is ignored and a trailing comma is allowed. Single quotes and
backticks do not quote, so ``foo!~'x'`` is an error that says so. fireline does not fall back
to Alertmanager's classic parser: an unknown escape such as ``"\d+"`` is an error that tells
the author to write ``"\\d+"``, where the classic parser took a literal backslash and warned.

Where fireline differs from Go's RE2: regexes are compiled by Python's ``re``, so the few
constructs RE2 lacks (look-around, back-references) are accepted, and ``\z`` is not.

Matchers are recorded in Temporal history as ``{"name", "type", "value"}`` and read back
exactly; ``str(matcher)`` is the canonical text (``service="checkout"``), which parses back
to an equal matcher.

Exceptions::

    MatcherSyntaxError (ValueError)    text is not a matcher, or its regex does not compile
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any, NoReturn, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

__all__ = [
    "MatchType",
    "Matcher",
    "MatcherSyntaxError",
    "format_labels",
    "match_all",
    "parse_matcher",
    "parse_matchers",
]


class MatcherSyntaxError(ValueError):
    """Text that is not a valid matcher (or list of matchers), or a regex that does not compile."""


class MatchType(StrEnum):
    """The four matcher operators."""

    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


# Characters that end unquoted text (besides whitespace), as in the UTF-8 parser's lexer.
_RESERVED = frozenset("{}!=~,\"'`\\")
_SIMPLE_ESCAPES = {
    '"': '"',
    "\\": "\\",
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
}
_CHAR_ESCAPE_DIGITS = {"u": 4, "U": 8}
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_OCTAL_DIGITS = frozenset("01234567")
# Go applies flags written at the start of the value to the whole value; Python 3.11 refuses
# global flags anywhere but at the very start, so they are lifted out of the anchoring group.
_LEADING_FLAGS = re.compile(r"\(\?([A-Za-z]+)\)")


class Matcher(BaseModel):
    """One label matcher, e.g. ``service="checkout"`` or ``severity=~"critical|page"``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(min_length=1)
    type: MatchType
    value: str

    _regex: re.Pattern[str] | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        # Config files write matchers as text; history stores the three fields.
        if isinstance(data, str):
            name, match_type, value = _parse_single(data)
            return {"name": name, "type": match_type, "value": value}
        return data

    @model_validator(mode="after")
    def _compile_regex(self) -> Self:
        self._regex = _compile(self.name, self.type, self.value)
        return self

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this matcher; a missing label counts as ``""``."""
        actual = labels.get(self.name, "")
        if self.type is MatchType.EQUAL:
            return actual == self.value
        if self.type is MatchType.NOT_EQUAL:
            return actual != self.value
        assert self._regex is not None  # set by the validator for both regex types
        found = self._regex.fullmatch(actual) is not None
        return found if self.type is MatchType.REGEX else not found

    def __str__(self) -> str:
        return _format(self.name, self.type, self.value)


def match_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    """Whether every matcher matches ``labels`` (an empty list matches everything)."""
    return all(m.matches(labels) for m in matchers)


def parse_matcher(text: str) -> Matcher:
    """Parse exactly one matcher: ``alertname="Foo"``, ``env!~staging|dev``, ``{team=db}``."""
    name, match_type, value = _parse_single(text)
    return Matcher(name=name, type=match_type, value=value)


def parse_matchers(text: str) -> list[Matcher]:
    """Parse a comma-separated list, optionally in braces: ``{a="b", c!="d"}``; ``""`` is ``[]``."""
    return [
        Matcher(name=name, type=match_type, value=value)
        for name, match_type, value in _Parser(text).matcher_list()
    ]


def format_labels(labels: Mapping[str, str]) -> str:
    """Render a label set as ``{a="1", b="2"}``, sorted by name, values escaped."""
    return "{" + ", ".join(f"{_format_name(k)}={_quote(labels[k])}" for k in sorted(labels)) + "}"


# --- parsing ------------------------------------------------------------------------------

_Triple = tuple[str, MatchType, str]


def _parse_single(text: str) -> _Triple:
    found = _Parser(text, "matcher").matcher_list()
    if len(found) != 1:
        raise MatcherSyntaxError(
            f"cannot parse matcher {text!r}: expected exactly one matcher, found {len(found)}"
        )
    return found[0]


class _Parser:
    """Recursive descent over the matcher grammar in the module docstring."""

    def __init__(self, text: str, noun: str = "matchers") -> None:
        self.text = text
        self.noun = noun
        self.pos = 0

    def fail(self, problem: str, at: int | None = None) -> NoReturn:
        column = (self.pos if at is None else at) + 1
        raise MatcherSyntaxError(
            f"cannot parse {self.noun} {self.text!r} at column {column}: {problem}"
        )

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next_token(self) -> str:
        """The text at the cursor as the author would name it: a word, or one character."""
        end = self.pos
        while end < len(self.text) and not _ends_word(self.text[end]):
            end += 1
        return repr(self.text[self.pos : max(end, self.pos + 1)])

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def matcher_list(self) -> list[_Triple]:
        self.skip_space()
        braced = self.peek() == "{"
        if braced:
            self.pos += 1
        found: list[_Triple] = []
        while True:
            self.skip_space()
            if self.peek() in ("", "}"):
                break
            found.append(self.matcher())
            self.skip_space()
            if self.peek() == ",":
                self.pos += 1
                continue
            if self.peek() not in ("", "}"):
                expected = "',' or '}'" if braced else "',' or the end of input"
                self.fail(f"expected {expected} after a matcher, found {self.next_token()}")
        self.close(braced)
        return found

    def close(self, braced: bool) -> None:
        if braced:
            if self.peek() != "}":
                self.fail("expected '}' to close the opening '{'")
            self.pos += 1
        elif self.peek() == "}":
            self.fail("found '}' without an opening '{'")
        self.skip_space()
        if self.peek():
            self.fail(f"expected the end of input, found {self.next_token()}")

    def matcher(self) -> _Triple:
        start = self.pos
        name = self.string("label name")
        if not name:
            self.fail("the label name is empty", start)
        self.skip_space()
        match_type = self.operator(name)
        self.skip_space()
        value = self.string("label value")
        # Checked here so that a bad regex is reported against the text the author wrote.
        _compile(name, match_type, value)
        return name, match_type, value

    def operator(self, name: str) -> MatchType:
        first = self.peek()
        if first == "=":
            self.pos += 1
            if self.peek() == "~":
                self.pos += 1
                return MatchType.REGEX
            return MatchType.EQUAL
        if first == "!":
            self.pos += 1
            second = self.peek()
            if second not in ("=", "~"):
                self.fail("expected '=' or '~' after '!'")
            self.pos += 1
            return MatchType(first + second)
        found = self.next_token() if first else "the end of input"
        self.fail(
            f"expected an operator ('=', '!=', '=~' or '!~') after label name {name!r}, "
            f"found {found}"
        )

    def string(self, what: str) -> str:
        first = self.peek()
        if first == '"':
            return self.quoted()
        if first and not _ends_word(first):
            start = self.pos
            while self.peek() and not _ends_word(self.peek()):
                self.pos += 1
            return self.text[start : self.pos]
        if not first:
            self.fail(f"expected a {what}, found the end of input")
        if first in "'`":
            self.fail(f"expected a {what}, found {first!r}; only double quotes quote text")
        self.fail(f"expected a {what}, found {first!r}")

    def quoted(self) -> str:
        # Bytes, because Go's \x and octal escapes spell UTF-8 one byte at a time.
        start = self.pos
        self.pos += 1
        out = bytearray()
        while True:
            char = self.peek()
            if not char:
                self.fail("unterminated quoted text, missing the closing '\"'", start)
            if char == '"':
                self.pos += 1
                break
            if char == "\n":
                self.fail("line break inside quoted text; write \\n")
            if char == "\\":
                out += self.escape()
            else:
                out += char.encode()
                self.pos += 1
        try:
            return out.decode()
        except UnicodeDecodeError:
            self.fail("quoted text escapes bytes that are not valid UTF-8", start)

    def escape(self) -> bytes:
        start = self.pos
        code = self.text[self.pos + 1 : self.pos + 2]
        if code in _SIMPLE_ESCAPES:
            self.pos += 2
            return _SIMPLE_ESCAPES[code].encode()
        if code in _CHAR_ESCAPE_DIGITS:
            return self.numeric_escape(code, _CHAR_ESCAPE_DIGITS[code], 16, start).encode()
        if code == "x":
            return bytes([ord(self.numeric_escape(code, 2, 16, start))])
        if code in _OCTAL_DIGITS:
            octal = ord(self.numeric_escape("", 3, 8, start))
            if octal > 0xFF:
                self.fail(f"octal escape '\\{self.text[start + 1 : self.pos]}' exceeds 255", start)
            return bytes([octal])
        if not code:
            self.fail("unterminated quoted text, missing the closing '\"'", start)
        self.fail(
            f"invalid escape sequence '\\{code}' in quoted text; "
            f"write '\\\\{code}' for a literal backslash",
            start,
        )

    def numeric_escape(self, code: str, width: int, base: int, start: int) -> str:
        first = self.pos + 1 + len(code)
        digits = self.text[first : first + width]
        allowed = _OCTAL_DIGITS if base == 8 else _HEX_DIGITS
        if len(digits) == width and set(digits) <= allowed:
            point = int(digits, base)
            if point <= 0x10FFFF and not 0xD800 <= point <= 0xDFFF:
                self.pos = first + width
                return chr(point)
        kind = "octal" if base == 8 else "hex"
        self.fail(f"invalid escape '\\{code}': expected {width} {kind} digits", start)


def _ends_word(char: str) -> bool:
    return char.isspace() or char in _RESERVED


def _compile(name: str, match_type: MatchType, value: str) -> re.Pattern[str] | None:
    if match_type not in (MatchType.REGEX, MatchType.NOT_REGEX):
        return None
    flags = ""
    body = value
    while (lead := _LEADING_FLAGS.match(body)) is not None:
        flags += lead.group(1)
        body = body[lead.end() :]
    prefix = f"(?{flags})" if flags else ""
    try:
        return re.compile(f"{prefix}(?:{body})")
    except re.error as exc:
        problem = exc.msg
        if exc.pos is not None:
            # Report the position in the author's value, not in the wrapped pattern.
            shift = len(value) - len(body) - len(prefix) - len("(?:")
            problem += f" at position {min(max(exc.pos + shift, 0), len(value))}"
        raise MatcherSyntaxError(
            f"invalid regular expression in matcher {_format(name, match_type, value)}: {problem}"
        ) from None


# --- printing -----------------------------------------------------------------------------


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _format_name(name: str) -> str:
    if not name or any(_ends_word(c) for c in name):
        return _quote(name)
    return name


def _format(name: str, match_type: MatchType, value: str) -> str:
    return f"{_format_name(name)}{match_type.value}{_quote(value)}"

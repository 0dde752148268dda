"""Label matchers: Alertmanager's parser and matching edge cases, as tables."""

import re

import pytest
from pydantic import ValidationError

from workflows.matchers import (
    Matcher,
    MatcherSyntaxError,
    MatchType,
    format_labels,
    match_all,
    parse_matcher,
    parse_matchers,
)

EQ, NE, RE, NRE = MatchType.EQUAL, MatchType.NOT_EQUAL, MatchType.REGEX, MatchType.NOT_REGEX


def triples(matchers: list[Matcher]) -> list[tuple[str, MatchType, str]]:
    return [(m.name, m.type, m.value) for m in matchers]


# Most rows come from Alertmanager's matchers/parse tests.
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("{}", []),
        ("  { }  ", []),
        ('{foo="bar"}', [("foo", EQ, "bar")]),
        ("{foo=bar}", [("foo", EQ, "bar")]),
        ('foo="bar"', [("foo", EQ, "bar")]),
        ("foo=bar", [("foo", EQ, "bar")]),
        ('alertname="Foo"', [("alertname", EQ, "Foo")]),
        ("{foo=bar,}", [("foo", EQ, "bar")]),
        ('foo="bar",', [("foo", EQ, "bar")]),
        ('  foo  =  "bar"  ', [("foo", EQ, "bar")]),
        ("{foo!=bar}", [("foo", NE, "bar")]),
        ('{foo=~"[a-z]+"}', [("foo", RE, "[a-z]+")]),
        ("foo=~[a-z]+", [("foo", RE, "[a-z]+")]),
        ('{foo!~"[a-z]+"}', [("foo", NRE, "[a-z]+")]),
        ('foo=~"a|b"', [("foo", RE, "a|b")]),
        ('foo=""', [("foo", EQ, "")]),
        ('{foo="🙂"}', [("foo", EQ, "🙂")]),
        ("{foo=🙂bar}", [("foo", EQ, "🙂bar")]),
        ('{"foo"="bar"}', [("foo", EQ, "bar")]),
        ('{"foo bar"!="baz"}', [("foo bar", NE, "baz")]),
        ('{"foo"="\\xf0\\x9f\\x99\\x82"}', [("foo", EQ, "🙂")]),
        ('{"foo"="\\U0001f642"}', [("foo", EQ, "🙂")]),
        ('foo="caf\\u00e9"', [("foo", EQ, "café")]),
        ('foo="\\101"', [("foo", EQ, "A")]),
        ('{foo="bar\\n"}', [("foo", EQ, "bar\n")]),
        ('{foo="bar\\t"}', [("foo", EQ, "bar\t")]),
        ('{foo="\\"bar\\""}', [("foo", EQ, '"bar"')]),
        ('{foo="bar\\\\"}', [("foo", EQ, "bar\\")]),
        ('foo=~"bar\\\\.baz"', [("foo", RE, "bar\\.baz")]),
        ('quote="She said: \\"Hi, all!\\""', [("quote", EQ, 'She said: "Hi, all!"')]),
        ('foo="a,b=c{d}"', [("foo", EQ, "a,b=c{d}")]),
        ("service.name=checkout", [("service.name", EQ, "checkout")]),
        (
            '{foo="bar", bar!="baz"}',
            [("foo", EQ, "bar"), ("bar", NE, "baz")],
        ),
        ("foo=bar,bar!=baz", [("foo", EQ, "bar"), ("bar", NE, "baz")]),
        (
            'a = "1" ,b!~"2|3",  c=~ x ,',
            [("a", EQ, "1"), ("b", NRE, "2|3"), ("c", RE, "x")],
        ),
    ],
)
def test_parse_matchers(text: str, expected: list[tuple[str, MatchType, str]]) -> None:
    assert triples(parse_matchers(text)) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (",", "cannot parse matchers ',' at column 1: expected a label name, found ','"),
        ("{,}", "cannot parse matchers '{,}' at column 2: expected a label name, found ','"),
        ("{", "cannot parse matchers '{' at column 2: expected '}' to close the opening '{'"),
        ("}", "cannot parse matchers '}' at column 1: found '}' without an opening '{'"),
        (
            'foo="bar"}',
            "cannot parse matchers 'foo=\"bar\"}' at column 10: found '}' without an opening '{'",
        ),
        (
            "{foo=bar",
            "cannot parse matchers '{foo=bar' at column 9: expected '}' to close the opening '{'",
        ),
        (
            '{foo=:"bar"}',
            "cannot parse matchers '{foo=:\"bar\"}' at column 7: "
            "expected ',' or '}' after a matcher, found '\"'",
        ),
        (
            '{foo="bar\\w"}',
            "cannot parse matchers '{foo=\"bar\\\\w\"}' at column 10: invalid escape sequence "
            "'\\w' in quoted text; write '\\\\w' for a literal backslash",
        ),
        (
            "{foo=bar\\n}",
            "cannot parse matchers '{foo=bar\\\\n}' at column 9: "
            "expected ',' or '}' after a matcher, found '\\\\'",
        ),
        (
            '{"foo"="\\xf0\\x9f"}',
            'cannot parse matchers \'{"foo"="\\\\xf0\\\\x9f"}\' at column 8: '
            "quoted text escapes bytes that are not valid UTF-8",
        ),
        (
            "foo!~'x'",
            "cannot parse matchers \"foo!~'x'\" at column 6: "
            'expected a label value, found "\'"; only double quotes quote text',
        ),
        (
            "foo",
            "cannot parse matchers 'foo' at column 4: expected an operator "
            "('=', '!=', '=~' or '!~') after label name 'foo', found the end of input",
        ),
        (
            "foo%bar",
            "cannot parse matchers 'foo%bar' at column 8: expected an operator "
            "('=', '!=', '=~' or '!~') after label name 'foo%bar', found the end of input",
        ),
        (
            "foo==bar",
            "cannot parse matchers 'foo==bar' at column 5: expected a label value, found '='",
        ),
        (
            "foo=",
            "cannot parse matchers 'foo=' at column 5: "
            "expected a label value, found the end of input",
        ),
        ("x!y", "cannot parse matchers 'x!y' at column 3: expected '=' or '~' after '!'"),
        (
            "foo=bar baz",
            "cannot parse matchers 'foo=bar baz' at column 9: "
            "expected ',' or the end of input after a matcher, found 'baz'",
        ),
        (
            "{a=b} c",
            "cannot parse matchers '{a=b} c' at column 7: expected the end of input, found 'c'",
        ),
        (
            'foo="open',
            "cannot parse matchers 'foo=\"open' at column 5: "
            "unterminated quoted text, missing the closing '\"'",
        ),
        (
            'foo="two\nlines"',
            "cannot parse matchers 'foo=\"two\\nlines\"' at column 9: "
            "line break inside quoted text; write \\n",
        ),
        (
            'foo="\\u12"',
            "cannot parse matchers 'foo=\"\\\\u12\"' at column 6: "
            "invalid escape '\\u': expected 4 hex digits",
        ),
        (
            'foo="\\777"',
            "cannot parse matchers 'foo=\"\\\\777\"' at column 6: octal escape '\\777' exceeds 255",
        ),
        ('""=x', "cannot parse matchers '\"\"=x' at column 1: the label name is empty"),
        (
            'foo=~"("',
            'invalid regular expression in matcher foo=~"(": '
            "missing ), unterminated subpattern at position 0",
        ),
        (
            'a="1", b!~"[z-a]"',
            'invalid regular expression in matcher b!~"[z-a]": '
            "bad character range z-a at position 1",
        ),
    ],
)
def test_parse_matchers_rejects(text: str, message: str) -> None:
    with pytest.raises(MatcherSyntaxError, match=f"^{re.escape(message)}$"):
        parse_matchers(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('alertname="Foo"', ("alertname", EQ, "Foo")),
        ("{team=db}", ("team", EQ, "db")),
        ("env!~staging|dev", ("env", NRE, "staging|dev")),
    ],
)
def test_parse_matcher(text: str, expected: tuple[str, MatchType, str]) -> None:
    assert triples([parse_matcher(text)]) == [expected]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "cannot parse matcher '': expected exactly one matcher, found 0"),
        ("{}", "cannot parse matcher '{}': expected exactly one matcher, found 0"),
        ("a=b,c=d", "cannot parse matcher 'a=b,c=d': expected exactly one matcher, found 2"),
        ("a", "cannot parse matcher 'a' at column 2: expected an operator"),
    ],
)
def test_parse_matcher_rejects(text: str, message: str) -> None:
    with pytest.raises(MatcherSyntaxError, match=f"^{re.escape(message)}"):
        parse_matcher(text)


# Alertmanager's matcher_test cases and the edge cases its docs call out.
@pytest.mark.parametrize(
    ("matcher", "labels", "expected"),
    [
        ('foo="bar"', {"foo": "bar"}, True),
        ('foo="bar"', {"foo": "baz"}, False),
        ('foo="bar"', {}, False),
        ('foo="bar"', {"Foo": "bar"}, False),
        ('foo!="bar"', {"foo": "bar"}, False),
        ('foo!="bar"', {"foo": "baz"}, True),
        ('foo!="bar"', {}, True),
        ('foo=""', {}, True),
        ('foo=""', {"foo": ""}, True),
        ('foo=""', {"foo": "x"}, False),
        ('foo!=""', {}, False),
        ('foo!=""', {"foo": "x"}, True),
        ('foo=~"bar"', {"foo": "bar"}, True),
        ('foo=~"bar"', {"foo": "foobar"}, False),
        ('foo=~"bar"', {"foo": "barfoo"}, False),
        ('foo=~"bar"', {"foo": "bar\n"}, False),
        ('foo=~"a|bc"', {"foo": "abc"}, False),
        ('foo=~"a|bc"', {"foo": "bc"}, True),
        ('foo=~".*"', {}, True),
        ('foo=~".+"', {}, False),
        ('foo=~"ba."', {"foo": "ba\n"}, False),
        ('foo!~"bar"', {"foo": "bar"}, False),
        ('foo!~"bar"', {"foo": "foobar"}, True),
        ('foo!~"bar"', {}, True),
        ('foo!~".*"', {}, False),
        ('foo=~"bar\\\\.baz"', {"foo": "bar.baz"}, True),
        ('foo=~"bar\\\\.baz"', {"foo": "barxbaz"}, False),
        ('severity=~"(?i)critical|page"', {"severity": "CRITICAL"}, True),
        ('severity=~"(?i)critical|page"', {"severity": "Page"}, True),
        ('severity=~"(?i)critical|page"', {"severity": "paged"}, False),
        ('foo="a,b=c{d}"', {"foo": "a,b=c{d}"}, True),
        ('foo="say \\"hi\\""', {"foo": 'say "hi"'}, True),
        ('foo="🙂"', {"foo": "🙂"}, True),
        ('"サービス"="決済"', {"サービス": "決済"}, True),
        ('region=~"eu-.*"', {"region": "eu-west-1"}, True),
        ('region=~"eu-.*"', {"region": "us-east-1"}, False),
    ],
)
def test_matches(matcher: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_matcher(matcher).matches(labels) is expected


@pytest.mark.parametrize(
    ("matchers", "labels", "expected"),
    [
        ("", {"any": "thing"}, True),
        ('a="1", b=~"2|3"', {"a": "1", "b": "3"}, True),
        ('a="1", b=~"2|3"', {"a": "1", "b": "4"}, False),
        ('a="1", b!="2"', {"a": "1"}, True),
    ],
)
def test_match_all(matchers: str, labels: dict[str, str], expected: bool) -> None:
    assert match_all(parse_matchers(matchers), labels) is expected


@pytest.mark.parametrize(
    ("matcher", "text"),
    [
        (Matcher(name="service", type=EQ, value="checkout"), 'service="checkout"'),
        (Matcher(name="sev", type=RE, value="critical|page"), 'sev=~"critical|page"'),
        (Matcher(name="q", type=NE, value='a "b" \\ c\nd'), 'q!="a \\"b\\" \\\\ c\\nd"'),
        (Matcher(name="foo bar", type=NRE, value=""), '"foo bar"!~""'),
        (Matcher(name='we"ird', type=EQ, value="🙂"), '"we\\"ird"="🙂"'),
        (Matcher(name="tab", type=EQ, value="a\tb"), 'tab="a\tb"'),
    ],
)
def test_canonical_text_round_trips(matcher: Matcher, text: str) -> None:
    assert str(matcher) == text
    assert parse_matcher(text) == matcher


@pytest.mark.parametrize(
    "text", ['service="checkout"', 'sev=~"(?i)crit.*"', 'x!~"a|b"', '"a b"!="c\\nd"']
)
def test_json_round_trip(text: str) -> None:
    matcher = parse_matcher(text)
    dumped = matcher.model_dump(mode="json", by_alias=True)
    again = Matcher.model_validate(dumped)
    assert again == matcher
    assert again.matches({"sev": "critical"}) == matcher.matches({"sev": "critical"})


def test_json_shape() -> None:
    dumped = parse_matcher('sev=~"a|b"').model_dump(mode="json", by_alias=True)
    assert dumped == {"name": "sev", "type": "=~", "value": "a|b"}


def test_validates_from_text() -> None:
    assert Matcher.model_validate('team="db"') == Matcher(name="team", type=EQ, value="db")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"name": "foo", "type": "=~", "value": "("},
            'invalid regular expression in matcher foo=~"(": '
            "missing ), unterminated subpattern at position 0",
        ),
        ({"name": "foo", "type": "==", "value": "x"}, "Input should be '=', '!=', '=~' or '!~'"),
        ({"name": "", "type": "=", "value": "x"}, "String should have at least 1 character"),
        ({"name": "a", "type": "=", "value": "x", "extra": 1}, "Extra inputs are not permitted"),
        ("a=b,c=d", "cannot parse matcher 'a=b,c=d': expected exactly one matcher, found 2"),
    ],
)
def test_model_validation_errors(data: object, message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        Matcher.model_validate(data)


def test_matcher_is_frozen() -> None:
    matcher = parse_matcher("a=b")
    with pytest.raises(ValidationError, match="Instance is frozen"):
        matcher.value = "c"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("labels", "text"),
    [
        ({}, "{}"),
        ({"b": "2", "a": "1"}, '{a="1", b="2"}'),
        ({"x y": 'q"'}, '{"x y"="q\\""}'),
    ],
)
def test_format_labels(labels: dict[str, str], text: str) -> None:
    assert format_labels(labels) == text

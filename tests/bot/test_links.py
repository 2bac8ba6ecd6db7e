"""Links read as a browser reads them (WHATWG), and which may be put to a user."""

from __future__ import annotations

import pytest

from bot.links import inspect_link, visible


@pytest.mark.parametrize(
    ("url", "href", "host"),
    [
        ("HTTPS://Example.COM:443/a?b=1#c", "https://example.com/a?b=1#c", "example.com"),
        (
            "https://evil.example#@accounts.google.com/",
            "https://evil.example/#@accounts.google.com/",
            "evil.example",
        ),
        (
            "https://evil.example?@accounts.google.com/",
            "https://evil.example/?@accounts.google.com/",
            "evil.example",
        ),
        ("https://0x7f.1/", "https://127.0.0.1/", "127.0.0.1"),
        ("https://b\u00fccher.example/", "https://xn--bcher-kva.example/", "xn--bcher-kva.example"),
        ("https://\uff47\uff4f\uff4f\uff47\uff4c\uff45.com/", "https://google.com/", "google.com"),
        ("https://[::1]:8443/x", "https://[::1]:8443/x", "[::1]"),
    ],
)
def test_the_host_is_the_one_a_browser_opens_in_ascii(url: str, href: str, host: str) -> None:
    link = inspect_link(url)
    assert (link.ok, link.href, link.host) == (True, href, host)


def test_punycode_is_noticed() -> None:
    assert inspect_link("https://b\u00fccher.example/").is_punycode
    assert not inspect_link("https://example.com/").is_punycode


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://evil.example\\@accounts.google.com/", "a backslash in the link"),
        ("https://accounts.google.com%2F@evil.example/", "credentials in the link"),
        ("https://:@evil.example/", "credentials in the link"),
        ("https://user@evil.example/", "credentials in the link"),
        ("http://example.com/", "the scheme 'http:' (only https links are shown)"),
        ("file:///etc/passwd", "the scheme 'file:' (only https links are shown)"),
        ("data:text/html,<script>", "the scheme 'data:' (only https links are shown)"),
        ("https://exa\tmple.com/", "whitespace or control characters in the link"),
        ("https://example.com/\u202egnp.exe", "whitespace or control characters in the link"),
        ("https://", "not a valid URL"),
        ("//example.com/", "not a valid URL"),
    ],
)
def test_links_that_must_not_be_shown(url: str, problem: str) -> None:
    link = inspect_link(url)
    assert not link.ok and link.href == "" and link.problem == problem


def test_visible_shows_control_and_bidi_characters_instead_of_obeying_them() -> None:
    assert (
        visible("a\u202eb\u2066c\x00d\x1be\tf\ng") == "a<U+202E>b<U+2066>c<U+0000>d<U+001B>e f\ng"
    )
    assert visible("one\ntwo\u2028", lines=False) == "one<U+000A>two<U+2028>"
    assert (
        visible("\U0001f468\u200d\U0001f469 \u4e2d\u6587")
        == "\U0001f468\u200d\U0001f469 \u4e2d\u6587"
    )

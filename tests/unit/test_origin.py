"""Whether a form POST comes from one of our pages, from its headers alone (`web.origin`)."""

from __future__ import annotations

import pytest

from reminders.web.origin import is_from_elsewhere, may_post, origin_of

BASE = "https://links.example"
#: The site's own addresses: `web.base_url` and the address the request reached.
OWN = (BASE, "http://127.0.0.1:8080/")


@pytest.mark.parametrize(
    ("headers", "elsewhere"),
    [
        pytest.param({}, False, id="no-browser-header-a-script"),
        pytest.param({"sec-fetch-site": "same-origin"}, False, id="fetch-same-origin"),
        pytest.param({"sec-fetch-site": "none"}, False, id="fetch-none-typed-or-mail-program"),
        pytest.param({"sec-fetch-site": "same-site"}, True, id="fetch-same-site-subdomain"),
        pytest.param({"sec-fetch-site": "cross-site"}, True, id="fetch-cross-site"),
        pytest.param({"sec-fetch-site": "Same-Origin"}, False, id="fetch-letter-case"),
        pytest.param(
            {"sec-fetch-site": "same-origin", "origin": "https://evil.example"},
            False,
            id="fetch-wins-over-origin",
        ),
        pytest.param(
            {"sec-fetch-site": "cross-site", "origin": BASE}, True, id="fetch-wins-cross-site"
        ),
        pytest.param({"origin": BASE}, False, id="origin-base-url"),
        pytest.param({"origin": BASE + "/"}, False, id="origin-trailing-slash"),
        pytest.param({"origin": "HTTPS://Links.Example"}, False, id="origin-letter-case"),
        pytest.param({"origin": "https://links.example:443"}, False, id="origin-default-port"),
        pytest.param({"origin": "http://127.0.0.1:8080"}, False, id="origin-reached-address"),
        pytest.param({"origin": "http://links.example"}, True, id="origin-other-scheme"),
        pytest.param({"origin": "https://links.example:8443"}, True, id="origin-other-port"),
        pytest.param({"origin": "https://www.links.example"}, True, id="origin-subdomain"),
        pytest.param({"origin": "https://links.example.evil.example"}, True, id="origin-suffix"),
        pytest.param({"origin": "https://evil.example"}, True, id="origin-other-site"),
        pytest.param({"origin": "null"}, True, id="origin-null-sandboxed"),
        pytest.param({"origin": ""}, True, id="origin-empty"),
        pytest.param({"origin": "https://[::1"}, True, id="origin-unparsable"),
        pytest.param({"referer": BASE + "/confirm/abc"}, False, id="referer-own-page"),
        pytest.param({"referer": "https://evil.example/page"}, True, id="referer-other-site"),
        pytest.param({"referer": "not a url"}, True, id="referer-garbage"),
        pytest.param(
            {"origin": BASE, "referer": "https://evil.example/"}, False, id="origin-wins-referer"
        ),
        pytest.param(
            {"origin": "https://evil.example", "referer": BASE + "/x"},
            True,
            id="origin-wins-cross-site",
        ),
    ],
)
def test_is_from_elsewhere(headers: dict[str, str], elsewhere: bool) -> None:
    assert is_from_elsewhere(headers, OWN) is elsewhere


@pytest.mark.parametrize(
    ("field_is_right", "headers", "allowed"),
    [
        pytest.param(True, {"origin": "https://evil.example"}, True, id="right-field-anywhere"),
        pytest.param(False, {"origin": BASE}, False, id="wrong-field-even-from-us"),
        pytest.param(False, {}, False, id="wrong-field-from-a-script"),
        pytest.param(None, {"origin": BASE}, True, id="no-field-from-us"),
        pytest.param(None, {}, True, id="no-field-from-a-script"),
        pytest.param(None, {"sec-fetch-site": "cross-site"}, False, id="no-field-from-elsewhere"),
    ],
)
def test_may_post(field_is_right: bool | None, headers: dict[str, str], allowed: bool) -> None:
    assert may_post(headers, OWN, field_is_right=field_is_right) is allowed


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://links.example/path?q=1", "https://links.example"),
        ("http://links.example:80", "http://links.example"),
        ("http://links.example:8080/", "http://links.example:8080"),
        ("https://[::1]:8443/x", "https://[::1]:8443"),
        ("ftp://links.example", None),
        ("null", None),
        ("https://", None),
        ("https://links.example:99999", None),
    ],
)
def test_origin_of(url: str, origin: str | None) -> None:
    assert origin_of(url) == origin

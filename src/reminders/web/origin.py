"""Whether a form POST comes from one of our own pages: pure, from the request's headers.

There are no cookies: a POST carries no authority but its link's token, so the one
thing to stop is a page of another site making a browser post to us (a forgery that
would unsubscribe a guest who merely visited it). Browsers say where a request comes
from, most reliable first:

- `Sec-Fetch-Site` (every current browser): `same-origin` or `none` (typed, or opened
  from a bookmark or a mail program) is ours; `same-site`, `cross-site` are not;
- else `Origin`: ours when it is the origin of `web.base_url` (or of the address the
  request reached, behind a proxy that rewrites nothing); `null` (a sandboxed or
  privacy-redirected page) is not;
- else `Referer` (old browsers send no Origin on POST): its origin, the same way.

A request that says none of these comes from no browser (a script, a mail client's
one-click POST): it is accepted, as it could do nothing with a form field it could not
already do with the link.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from urllib.parse import urlsplit

#: The `Sec-Fetch-Site` values of a request our own page (or the user) made.
_OWN_FETCH_SITES = frozenset({"same-origin", "none"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str | None:
    """Return `scheme://host[:port]` of `url` as browsers write Origin; None if not a URL.

    Scheme and host are lower-cased and a default port dropped, so
    `HTTPS://Links.example:443/x` and `https://links.example` are one origin.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if ":" in host:
        host = f"[{host}]"  # IPv6
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def is_from_elsewhere(headers: Mapping[str, str], own_origins: Collection[str]) -> bool:
    """Tell whether a browser says this request comes from a page of another site.

    `headers` are the request's, by lower-case name; `own_origins` the URLs this
    site is served at (only their origins count).
    """
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site.strip().lower() not in _OWN_FETCH_SITES
    own = {origin for url in own_origins if (origin := origin_of(url)) is not None}
    for header in ("origin", "referer"):
        value = headers.get(header)
        if value is not None:
            return origin_of(value) not in own
    return False


def may_post(
    headers: Mapping[str, str], own_origins: Collection[str], *, field_is_right: bool | None
) -> bool:
    """Tell whether a form POST may act: its form's field is right, or it is not a forgery.

    `field_is_right` is None when the POST carries no form field: it may act unless a
    browser says it comes from elsewhere. A field that is sent must be the right one.
    """
    if field_is_right is not None:
        return field_is_right
    return not is_from_elsewhere(headers, own_origins)

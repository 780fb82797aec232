"""The HTTP API over real HTTP (SPEC §7): uvicorn on loopback, on SQLite and on PostgreSQL.

Every answer is checked against the OpenAPI description the app serves (`ApiClient`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from openapi_spec_validator import validate
from sqlalchemy import select
from starlette.routing import Route

from integration.api_client import PROBLEM, ApiClient
from integration.dispatch_world import World
from integration.web_site import GUEST, Site, running_site
from reminders import api_keys, registry
from reminders.consent import Action, Source
from reminders.schema import ApiKeyRow
from reminders.web import create_app

KEY_NAME = "crm-sync"
ADDRESS = f"/api/v1/addresses/{GUEST}"


@pytest.fixture
def site(world: World) -> Iterator[Site]:
    with running_site(world) as site:
        yield site


@pytest.fixture
def key(site: Site) -> str:
    _created, key = api_keys.create(site.world.database, KEY_NAME, created_by="ops")
    return key


@pytest.fixture
def api(site: Site, key: str) -> ApiClient:
    return ApiClient(site.client, key)


def opt_out_as(site: Site, source: Source, address: str = GUEST, method: str = "phone") -> None:
    with site.world.database.transaction() as store:
        registry.change(
            store,
            address,
            Action.OPT_OUT,
            source,
            method=method,
            actor="test",
            now=site.world.clock.now(),
        )


def assert_problem(response: object, status: int, *words: str) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == PROBLEM  # type: ignore[attr-defined]
    problem: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert problem["status"] == status
    assert {"type", "title", "status", "detail"} <= set(problem)
    for word in words:
        assert word in str(problem["detail"]), problem
    return problem


# -- keys -----------------------------------------------------------------------------------

ROUTES = [
    ("GET", "/api/v1/openapi.json", None),
    ("GET", ADDRESS, None),
    ("POST", f"{ADDRESS}/opt-out", {"method": "phone"}),
    ("POST", f"{ADDRESS}/opt-in", {"method": "phone"}),
    ("POST", f"{ADDRESS}/confirmation", None),
    ("GET", "/api/v1/opt-outs", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_every_route_refuses_a_request_without_a_valid_key(
    site: Site, key: str, method: str, path: str, body: dict[str, str] | None
) -> None:
    _name, revoked_key = api_keys.create(site.world.database, "old-crm", created_by="ops")
    api_keys.revoke(site.world.database, "old-crm")
    before = site.status(), len(site.world.mail_server.messages())

    attempts = {
        "no key": {},
        "unknown key": {"Authorization": "Bearer rk_" + "A" * 43},
        "revoked key": {"Authorization": f"Bearer {revoked_key}"},
        "not bearer": {"Authorization": f"Basic {key}"},
        "empty bearer": {"Authorization": "Bearer"},
    }
    for name, headers in attempts.items():
        response = ApiClient(site.client, None).request(method, path, json=body, headers=headers)

        problem = assert_problem(response, 401)
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith("Bearer"), name
        assert ("invalid_token" in challenge) is (name != "no key"), name
        assert key not in json.dumps(problem)
    assert (site.status(), len(site.world.mail_server.messages())) == before


def test_a_revoked_key_is_refused_from_then_on(site: Site, api: ApiClient) -> None:
    assert api.get(ADDRESS).status_code == 200

    api_keys.revoke(site.world.database, KEY_NAME)

    assert_problem(api.get(ADDRESS), 401, "revoked")


def test_the_database_keeps_only_the_hash_and_the_last_use(site: Site, key: str) -> None:
    assert key.startswith("rk_") and len(key) >= 40
    with site.world.database.engine.connect() as connection:
        [row] = connection.execute(select(ApiKeyRow)).all()
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in str(tuple(row))
    assert row.last_used_at is None

    ApiClient(site.client, key).get(ADDRESS)

    [listed] = api_keys.list_keys(site.world.database)
    assert listed.last_used_at == site.world.clock.now()


# -- reading an address ---------------------------------------------------------------------


def test_an_address_reads_as_consent_status_json_and_a_get_changes_nothing(
    site: Site, api: ApiClient
) -> None:
    before = site.status()

    response = api.get(f"/api/v1/addresses/{quote('GUEST@Example.COM')}")
    api.get(ADDRESS)

    assert response.status_code == 200
    found = response.json()
    assert found["address"] == GUEST
    assert found["consent"] == "unconfirmed"
    assert found["source"] is None
    assert found["contacts"] == [{"name": "Camille Martin", "agency": "annecy"}]
    assert site.status() == before


def test_an_address_never_seen_is_404_and_an_invalid_one_422(api: ApiClient) -> None:
    assert_problem(api.get("/api/v1/addresses/nobody@example.com"), 404, "not in the registry")
    problem = assert_problem(api.get("/api/v1/addresses/x@localhost"), 422, "not a valid")
    assert problem["field"] == "path.address"
    assert_problem(api.get("/api/v1/addresses/no-at-sign"), 422, "not a valid")


# -- opt-out, opt-in ----------------------------------------------------------------------------


def test_an_opt_out_is_recorded_as_agent_with_the_keys_name_as_actor(
    site: Site, api: ApiClient
) -> None:
    response = api.post(f"{ADDRESS}/opt-out", json={"method": "phone"})

    assert response.status_code == 200
    assert response.json()["consent"] == "opted_out"
    assert response.json()["source"] == "agent"
    assert site.last_event() == ("opt_out", "agent", "phone", f"api:{KEY_NAME}")
    event = response.json()["history"][-1]
    assert event["actor"] == "api:crm-sync"
    assert event["occurred_at"] == event["recorded_at"]


def test_a_kind_choice_is_the_contacts_with_the_keys_name_as_actor(
    site: Site, api: ApiClient
) -> None:
    # The site's agency sends arrival reminders only.
    refused = api.put(f"{ADDRESS}/kinds/arrival", json={"receive": False, "method": "crm"})
    again = api.put(f"{ADDRESS}/kinds/arrival", json={"receive": False, "method": "crm"})
    accepted = api.put(f"{ADDRESS}/kinds/arrival", json={"receive": True, "method": "crm"})

    assert refused.status_code == 200
    assert refused.json()["kinds"] == {"arrival": False}
    event = refused.json()["history"][-1]
    assert (event["action"], event["source"], event["method"], event["actor"]) == (
        "refuse_kind",
        "contact",
        "crm",
        "api:crm-sync",
    )
    assert event["kind"] == "arrival"
    # The same choice twice writes nothing; accepting again is one more event.
    assert len(again.json()["history"]) == len(refused.json()["history"])
    assert accepted.json()["kinds"] == {"arrival": True}
    assert accepted.json()["history"][-1]["action"] == "accept_kind"


@pytest.mark.parametrize(
    ("kind", "body", "status"),
    [
        pytest.param("no_such_kind", {"receive": False, "method": "crm"}, 404, id="unknown-kind"),
        pytest.param(
            "post_departure", {"receive": False, "method": "crm"}, 404, id="kind-not-sent"
        ),
        pytest.param("arrival", {"receive": "no", "method": "crm"}, 422, id="not-a-boolean"),
        pytest.param("arrival", {"receive": False}, 422, id="no-method"),
        pytest.param(
            "arrival", {"receive": False, "method": "crm", "extra": 1}, 422, id="unknown-field"
        ),
    ],
)
def test_a_kind_choice_that_cannot_be_recorded_is_a_problem(
    site: Site, api: ApiClient, kind: str, body: dict[str, Any], status: int
) -> None:
    response = api.put(f"{ADDRESS}/kinds/{kind}", json=body)

    assert_problem(response, status, "")
    assert "kinds" not in response.json()
    assert api.get(ADDRESS).json()["kinds"] == {}


def test_an_opt_out_received_elsewhere_keeps_its_source_and_past_time(
    site: Site, api: ApiClient
) -> None:
    at = (site.world.clock.now() - timedelta(days=2)).astimezone().isoformat()

    response = api.post(
        f"{ADDRESS}/opt-out", json={"method": "sms app", "source": "contact", "at": at}
    )

    assert response.status_code == 200
    assert response.json()["source"] == "contact"
    [*_, event] = registry.status(site.world.database, site.world.settings, GUEST).history
    assert event.occurred_at == site.world.clock.now() - timedelta(days=2)
    assert event.recorded_at == site.world.clock.now()
    assert (event.source, event.actor) == ("contact", "api:crm-sync")


def test_an_opt_out_of_an_address_not_yet_imported_is_recorded(api: ApiClient) -> None:
    response = api.post("/api/v1/addresses/new@example.org/opt-out", json={"method": "letter"})

    assert response.status_code == 200
    assert response.json()["address"] == "new@example.org"
    assert response.json()["consent"] == "opted_out"


def test_staff_opt_outs_are_lifted_by_the_api(site: Site, api: ApiClient) -> None:
    api.post(f"{ADDRESS}/opt-out", json={"method": "phone"})

    response = api.post(f"{ADDRESS}/opt-in", json={"method": "phone"})

    assert response.status_code == 200
    assert response.json()["consent"] == "unconfirmed"
    assert site.last_event() == ("opt_in", "agent", "phone", "api:crm-sync")


@pytest.mark.parametrize("source", [Source.CONTACT, Source.SYSTEM])
def test_an_opt_in_after_a_contacts_or_the_systems_opt_out_is_409(
    site: Site, api: ApiClient, source: Source
) -> None:
    opt_out_as(site, source)
    before = site.status()

    response = api.post(f"{ADDRESS}/opt-in", json={"method": "phone"})

    problem = assert_problem(response, 409, f"opted out by {source}", "only the contact")
    assert problem["type"] == "urn:reminders:problem:consent-refused"
    assert "\n" not in str(problem["detail"])
    assert site.status() == before


def test_an_opt_out_through_the_api_cannot_be_made_an_import(api: ApiClient) -> None:
    response = api.post(f"{ADDRESS}/opt-out", json={"method": "csv", "source": "import"})

    assert assert_problem(response, 422, "'agent', 'contact', 'system'")["field"] == "body.source"


# -- the confirmation email -------------------------------------------------------------------


def test_the_confirmation_email_is_sent_once(site: Site, api: ApiClient) -> None:
    first = api.post(f"{ADDRESS}/confirmation")

    assert first.status_code == 202
    assert first.json()["consent"] == "confirmation_pending"
    assert len(site.world.mail_server.to(GUEST)) == 1
    assert site.last_event() == ("send_confirmation", "agent", "api", "api:crm-sync")

    second = api.post(f"{ADDRESS}/confirmation", json={})

    assert_problem(second, 409, "already sent the confirmation email")
    assert len(site.world.mail_server.to(GUEST)) == 1


def test_no_confirmation_email_to_an_opted_out_address(site: Site, api: ApiClient) -> None:
    opt_out_as(site, Source.CONTACT)

    assert_problem(api.post(f"{ADDRESS}/confirmation"), 409, "unsubscribed")
    assert site.world.mail_server.to(GUEST) == []


def test_a_confirmation_email_to_an_unknown_address_is_404(api: ApiClient) -> None:
    assert_problem(api.post("/api/v1/addresses/nobody@example.com/confirmation"), 404)


def test_a_confirmation_takes_no_field(api: ApiClient) -> None:
    response = api.post(f"{ADDRESS}/confirmation", json={"force": True})

    assert_problem(response, 422, "unknown field 'force'")


# -- what is refused, and why -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        pytest.param({}, "body.method", ["'method' is required"], id="no-method"),
        pytest.param({"method": ""}, "body.method", ["empty"], id="empty-method"),
        pytest.param({"method": 12}, "body.method", ["must be a string"], id="number-method"),
        pytest.param({"method": "x" * 41}, "body.method", ["at most 40"], id="long-method"),
        pytest.param(
            {"method": "phone", "at": "2026-11-20T14:30"},
            "body.at",
            ["no UTC offset", "add it"],
            id="at-without-offset",
        ),
        pytest.param(
            {"method": "phone", "at": "2026-11-20"}, "body.at", ["no UTC offset"], id="at-a-date"
        ),
        pytest.param(
            {"method": "phone", "at": "yesterday"}, "body.at", ["not an ISO 8601"], id="at-words"
        ),
        pytest.param(
            {"method": "phone", "at": "2099-01-01T00:00:00Z"},
            "body.at",
            ["in the future"],
            id="at-in-the-future",
        ),
        pytest.param(
            {"method": "phone", "at": "0001-01-01T00:00+01:00"},
            "body.at",
            ["out of range"],
            id="at-calendar-end",
        ),
        pytest.param(
            {"method": "phone", "reason": "asked"},
            "body.reason",
            ["unknown field 'reason'", "'method', 'at', 'source'"],
            id="unknown-field",
        ),
        pytest.param(
            {"method": "phone", "source": "robot"}, "body.source", ["not one of"], id="bad-source"
        ),
    ],
)
def test_an_invalid_field_is_422_naming_it(
    site: Site, api: ApiClient, body: dict[str, object], field: str, words: list[str]
) -> None:
    before = site.status()

    problem = assert_problem(api.post(f"{ADDRESS}/opt-out", json=body), 422, *words)

    assert problem["field"] == field
    assert problem["type"] == "urn:reminders:problem:invalid-request"
    assert site.status() == before


def test_a_body_that_is_not_json_is_400_and_not_an_object_422(api: ApiClient) -> None:
    json_type = {"Content-Type": "application/json"}
    assert_problem(
        api.post(f"{ADDRESS}/opt-out", content=b'{"method": ', headers=json_type),
        400,
        "not valid JSON",
    )
    assert_problem(
        api.post(f"{ADDRESS}/opt-out", content=b"[" * 5000, headers=json_type),
        400,
        "not valid JSON",
    )
    assert_problem(
        api.post(f"{ADDRESS}/opt-out", content=b'["phone"]', headers=json_type),
        422,
        "JSON object",
    )
    assert_problem(
        api.post(f"{ADDRESS}/opt-out", data={"method": "phone"}), 415, "application/json"
    )


def test_unknown_routes_and_methods_are_problems(api: ApiClient) -> None:
    assert_problem(api.get("/api/v1/nothing"), 404)
    wrong_method = api.get(f"{ADDRESS}/opt-out")
    assert_problem(wrong_method, 405)
    assert wrong_method.headers["allow"] == "POST"
    assert_problem(api.request("DELETE", ADDRESS), 405)


# -- hostile strings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method",
    [
        pytest.param("phone\r\nBcc: x@evil.example", id="crlf"),
        pytest.param("phone\nthen", id="lf"),
        pytest.param("pho\x00ne", id="nul"),
        pytest.param("phone\u202eenohp", id="bidi-override"),
        pytest.param("phone\u2028", id="line-separator"),
    ],
)
def test_a_method_with_control_characters_is_refused(
    site: Site, api: ApiClient, method: str
) -> None:
    before = site.status()

    problem = assert_problem(api.post(f"{ADDRESS}/opt-out", json={"method": method}), 422)

    assert problem["field"] == "body.method"
    assert site.status() == before


@pytest.mark.parametrize(
    "method",
    [
        pytest.param("=?utf-8?b?QmNjOiB4QGV2aWwuZXhhbXBsZQ==?=", id="rfc2047-encoded-word"),
        pytest.param('=HYPERLINK("https://x")', id="formula"),
        pytest.param("+33 4 50 00 00 00", id="plus"),
        pytest.param("<script>alert(1)</script>", id="html"),
        pytest.param("Robert'); DROP TABLE--", id="sql"),
    ],
)
def test_other_strange_methods_are_stored_as_written_and_exported_safely(
    site: Site, api: ApiClient, method: str
) -> None:
    response = api.post(f"{ADDRESS}/opt-out", json={"method": method})

    assert response.status_code == 200
    assert response.json()["history"][-1]["method"] == method  # not decoded, not run
    assert site.last_event()[2] == method
    [row] = api.get("/api/v1/opt-outs").json()["items"]
    assert row["method"] == method


@pytest.mark.parametrize(
    ("path", "why"),
    [
        pytest.param(quote("a\r\nb@example.com", safe="@"), "control", id="crlf"),
        pytest.param(quote("a\x00b@example.com", safe="@"), "control", id="nul"),
        pytest.param(quote("a@example.com\r\nBcc: x@evil.example", safe="@"), "", id="header"),
        pytest.param("guest@example", "not a valid", id="no-dot"),
    ],
)
def test_a_hostile_address_is_refused(site: Site, api: ApiClient, path: str, why: str) -> None:
    response = api.post(f"/api/v1/addresses/{path}/opt-out", json={"method": "phone"})

    assert assert_problem(response, 422, why)["field"] == "path.address"
    assert registry.report(site.world.database, site.world.settings) == []


@pytest.mark.parametrize(
    "address",
    [
        pytest.param("=?utf-8?q?x?=@example.com", id="rfc2047-looking-local-part"),
        pytest.param("=1+2@example.com", id="formula-local-part"),
    ],
)
def test_a_strange_but_valid_address_is_stored_as_written(api: ApiClient, address: str) -> None:
    response = api.post(f"/api/v1/addresses/{quote(address)}/opt-out", json={"method": "phone"})

    assert response.status_code == 200
    assert response.json()["address"] == address
    assert api.get(f"/api/v1/addresses/{quote(address)}").json()["address"] == address


# -- the report -----------------------------------------------------------------------------------


def test_the_report_pages_with_a_cursor_across_every_opt_out(site: Site, api: ApiClient) -> None:
    addresses = [f"guest{n:02}@example.com" for n in range(7)]
    for address in addresses:
        opt_out_as(site, Source.AGENT, address)

    pages, cursor = [], None
    while True:
        query = {"limit": "3"} | ({"cursor": cursor} if cursor else {})
        response = api.get("/api/v1/opt-outs", params=query)
        assert response.status_code == 200
        pages.append([row["address"] for row in response.json()["items"]])
        cursor = response.json()["next"]
        if cursor is None:
            break
        assert "guest" not in cursor  # opaque, not the address itself

    assert pages == [addresses[0:3], addresses[3:6], addresses[6:7]]


def test_a_page_exactly_full_says_there_is_no_next(site: Site, api: ApiClient) -> None:
    for n in range(2):
        opt_out_as(site, Source.AGENT, f"guest{n}@example.com")

    response = api.get("/api/v1/opt-outs", params={"limit": "2"})

    assert len(response.json()["items"]) == 2
    assert response.json()["next"] is None


def test_the_report_filters_by_source_time_and_prefix(site: Site, api: ApiClient) -> None:
    opt_out_as(site, Source.AGENT, "anna@example.com")
    site.world.clock.advance(days=2)
    opt_out_as(site, Source.CONTACT, "bob@example.com", method="email link")
    opt_out_as(site, Source.SYSTEM, "anne@example.org", method="bounce")
    now = site.world.clock.now()

    def listed(**params: str) -> list[str]:
        response = api.get("/api/v1/opt-outs", params=params)
        assert response.status_code == 200, response.text
        return [row["address"] for row in response.json()["items"]]

    assert listed() == ["anna@example.com", "anne@example.org", "bob@example.com"]
    assert listed(source="contact") == ["bob@example.com"]
    assert listed(prefix="ANN") == ["anna@example.com", "anne@example.org"]
    assert listed(since=(now - timedelta(days=1)).isoformat()) == [
        "anne@example.org",
        "bob@example.com",
    ]
    assert listed(until=(now - timedelta(days=1)).isoformat()) == ["anna@example.com"]
    assert listed(until=now.date().isoformat(), source="system") == ["anne@example.org"]
    [row] = api.get("/api/v1/opt-outs", params={"source": "contact"}).json()["items"]
    assert row["method"] == "email link"
    assert row["source"] == "contact"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "query.limit"),
        ({"limit": "1001"}, "query.limit"),
        ({"limit": "ten"}, "query.limit"),
        ({"cursor": "not-a-cursor!"}, "query.cursor"),
        ({"source": "robot"}, "query.source"),
        ({"since": "2026-11-20T10:00"}, "query.since"),
        ({"since": "2026-12-02", "until": "2026-11-30"}, "query.until"),
        ({"sort": "address"}, "query.sort"),
    ],
)
def test_the_report_refuses_invalid_parameters(
    api: ApiClient, params: dict[str, str], field: str
) -> None:
    problem = assert_problem(api.get("/api/v1/opt-outs", params=params), 422)

    assert problem["field"] == field


# -- the description and the logs ----------------------------------------------------------


def test_the_openapi_description_is_valid_and_describes_every_route(
    site: Site, api: ApiClient
) -> None:
    response = api.get("/api/v1/openapi.json")

    assert response.status_code == 200
    spec = response.json()
    validate(spec)
    assert spec["openapi"].startswith("3.1")
    app = create_app(site.world.settings, site.world.database)
    served = {
        (method.lower(), route.path)
        for route in app.routes
        if isinstance(route, Route) and route.path.startswith("/api/")
        for method in route.methods or ()
        if method != "HEAD"
    }
    described = {(method, path) for path, ops in spec["paths"].items() for method in ops}
    assert described == served
    for path, ops in spec["paths"].items():
        for method, operation in ops.items():
            assert {"401", "422"} <= set(operation["responses"]), (method, path)
            if method == "post" and path.endswith(("opt-out", "opt-in")):
                assert "requestBody" in operation


def test_each_request_is_logged_with_the_keys_name_never_the_key_nor_the_address(
    site: Site, api: ApiClient, key: str
) -> None:
    api.post(f"{ADDRESS}/opt-out", json={"method": "phone"})
    api.post(f"{ADDRESS}/opt-in", json={"method": "phone"})
    ApiClient(site.client, None).get(ADDRESS)

    lines = [line for line in site.log.getvalue().splitlines() if "/api/" in line]

    assert len(lines) == 3
    assert "method=POST" in lines[0]
    assert "route=/api/v1/addresses/{address}/opt-out" in lines[0]
    assert f"key={KEY_NAME}" in lines[0]
    assert "status=200" in lines[0]
    assert "status=401" in lines[2] and "key=" not in lines[2]
    log = site.log.getvalue()
    assert key not in log and key[3:20] not in log
    assert GUEST not in log

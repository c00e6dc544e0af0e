"""schemathesis against /api/v1/openapi.json, run in the test process: every phase (examples,
coverage, fuzzing, stateful), every default check, with a valid key, and zero failures allowed.

The API is served over real HTTP from a thread of this process: schemathesis' own WSGI
transport breaks on its `ignored_auth` probe (it passes `max_redirects` to Werkzeug).
"""

from __future__ import annotations

import uuid

import pytest
import requests
import schemathesis
from schemathesis.engine import Status, events

from fvapp.services import keys
from tests.e2e.conftest import live_server  # noqa: F401  (the browser tests' live server fixture)
from tests.support.api import bearer, mint_key


@pytest.fixture
def api_key(demo):
    return mint_key(demo.app, demo.acme, demo.user("ava@acme.test"))


def run_schemathesis(url: str, headers: dict, max_examples: int):
    schema = schemathesis.openapi.from_url(url + "/api/v1/openapi.json")
    schema.config.update(headers=headers)
    schema.config.generation.update(max_examples=max_examples, database="none")
    failures, answered = [], set()
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            for interaction in event.recorder.interactions.values():
                if interaction.response is not None:
                    answered.add((interaction.request.method, interaction.response.status_code))
            for checks in event.recorder.checks.values():
                failures += [
                    f"{event.label} · {check.name}: {check.failure_info.failure.title}\n"
                    f"{check.failure_info.code_sample}"
                    for check in checks
                    if check.status == Status.FAILURE and check.failure_info is not None
                ]
        elif isinstance(event, events.NonFatalError):
            failures.append(f"{event.label}: {event.info}")
        elif isinstance(event, events.FatalError):
            failures.append(f"schemathesis stopped: {event.exception!r}")
    return failures, answered


def test_schemathesis_finds_no_failures_with_a_valid_key(live_server, api_key):  # noqa: F811
    failures, answered = run_schemathesis(live_server, bearer(api_key), max_examples=40)
    assert failures == [], "\n\n".join(failures)
    # The run reached the endpoints themselves, not only their error answers.
    assert {("GET", 200), ("POST", 201), ("PATCH", 200), ("POST", 400), ("GET", 404)} <= answered


def test_every_documented_operation_refuses_calls_without_a_valid_key(app_context, live_server, demo):  # noqa: F811
    revoked = keys.create_key(demo.acme.id, demo.user("ava@acme.test").id, "old")
    keys.revoke_key(demo.acme.id, revoked.key.id, demo.user("ava@acme.test").id)
    credentials = [None, "Bearer", f"Bearer {keys.generate_key()}", f"Bearer {revoked.clear}",
                   f"Basic {revoked.clear}"]
    document = requests.get(live_server + "/api/v1/openapi.json", timeout=10).json()
    assert "security" not in document["paths"].get("/openapi.json", {})  # public, and undocumented
    calls = 0
    for path, operations in document["paths"].items():
        for method, spec in operations.items():
            assert spec.get("security", document["security"]) == [{"bearerAuth": []}]
            url = live_server + "/api/v1" + path.replace("{initiative_id}", str(uuid.uuid4()))
            for credential in credentials:
                headers = {"Authorization": credential} if credential else {}
                response = requests.request(method, url, headers=headers, json={"title": "x"},
                                            timeout=10)
                assert response.status_code == 401, (method, path, credential, response.text)
                assert response.headers["WWW-Authenticate"] == "Bearer"
                assert response.json()["code"] == "UNAUTHORIZED"
                calls += 1
    assert calls == 5 * len(credentials)

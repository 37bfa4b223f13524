"""Fuzzing the JSON-RPC endpoint: generated bodies and headers never get a 5xx, an internal
error or a crash, each class of bad request gets its JSON-RPC code, and a refused request
persists nothing.

Most examples run in-process (httpx's ASGI transport, which re-raises anything the app lets
escape); a smaller batch goes over real HTTP to a uvicorn server.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pocketmesh import InMemoryPersistence
from pocketmesh.a2a import ApiKeyAuth, BearerAuth, create_a2a_app

from .conftest import error_code, make_flows, serving

INTERNAL_ERROR = -32603
FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck), database=None, print_blob=True)

V1 = {"A2A-Version": "1.0"}


def valid_requests() -> list[tuple[dict[str, Any], dict[str, str]]]:
    """Well-formed requests of each method family, with the headers they need."""
    v03 = {"kind": "message", "role": "user", "messageId": "m-1", "parts": [{"kind": "text", "text": "hi"}],
           "metadata": {"skillId": "echo"}}
    v1 = {"role": "ROLE_USER", "messageId": "m-1", "parts": [{"text": "hi"}], "metadata": {"skillId": "echo"}}
    return [
        ({"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": v03}}, {}),
        ({"jsonrpc": "2.0", "id": "a", "method": "SendMessage", "params": {"message": v1, "configuration": {"historyLength": 2}}}, V1),
        ({"jsonrpc": "2.0", "id": 2, "method": "tasks/get", "params": {"id": "t-1", "historyLength": 1}}, {}),
        ({"jsonrpc": "2.0", "id": 3, "method": "GetTask", "params": {"id": "t-1"}}, V1),
        ({"jsonrpc": "2.0", "id": 4, "method": "CancelTask", "params": {"id": "t-1"}}, V1),
        ({"jsonrpc": "2.0", "id": 5, "method": "tasks/cancel", "params": {"id": "t-1"}}, {}),
    ]


VALID = valid_requests()

json_scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)

# A wrong-typed value for each kind of field (None is left out: it means "absent" to both parsers).
NOT_A_STRING = st.integers(-5, 5) | st.booleans() | st.lists(st.integers(), min_size=1, max_size=2) | st.just({"a": 1})
NOT_AN_OBJECT = st.integers() | st.text(min_size=1, max_size=5) | st.lists(st.integers(), min_size=1, max_size=2) | st.booleans()
NOT_A_LIST = st.integers() | st.text(min_size=1, max_size=5) | st.just({"a": 1}) | st.booleans()
NOT_AN_INT = st.text(min_size=1, max_size=5).filter(lambda s: not s.strip().lstrip("-").isdigit()) | st.just([1]) | st.just({"a": 1}) | st.floats(0.1, 0.9)

# (request index, path into the request, wrong values, expected code)
WRONG_TYPES: list[tuple[int, tuple[Any, ...], st.SearchStrategy[Any], int]] = [
    *[(i, ("jsonrpc",), NOT_A_STRING | st.just("1.0"), -32600) for i in range(len(VALID))],
    *[(i, ("id",), st.floats(0.5, 2.5) | st.booleans() | st.just([1]) | st.just({"a": 1}), -32600) for i in range(len(VALID))],
    *[(i, ("method",), st.integers() | st.just([]) | st.just({}) | st.just(""), -32600) for i in range(len(VALID))],
    *[(i, ("params",), NOT_AN_OBJECT, -32602) for i in range(len(VALID))],
    (0, ("params", "message"), NOT_AN_OBJECT, -32602),
    (0, ("params", "message", "parts"), NOT_A_LIST | st.just([]), -32602),
    (0, ("params", "message", "messageId"), NOT_A_STRING, -32602),
    (0, ("params", "message", "role"), NOT_A_STRING | st.just("admin"), -32602),
    (0, ("params", "message", "metadata"), NOT_AN_OBJECT, -32602),
    (0, ("params", "message", "metadata", "skillId"), NOT_A_STRING | st.just("nope"), -32602),
    (0, ("params", "message", "parts", 0), NOT_AN_OBJECT, -32602),
    (0, ("params", "message", "parts", 0, "text"), NOT_A_STRING, -32602),
    (0, ("params", "message", "parts", 0, "kind"), NOT_A_STRING | st.just("video"), -32602),
    (0, ("params", "message", "taskId"), NOT_A_STRING, -32602),
    (1, ("params", "message"), NOT_AN_OBJECT, -32602),
    (1, ("params", "message", "parts"), NOT_A_LIST, -32602),
    (1, ("params", "message", "messageId"), NOT_A_STRING, -32602),
    (1, ("params", "message", "metadata"), NOT_AN_OBJECT, -32602),
    (1, ("params", "message", "metadata", "skillId"), NOT_A_STRING | st.just("nope"), -32602),
    (1, ("params", "message", "parts", 0, "text"), NOT_A_STRING, -32602),
    (1, ("params", "configuration"), NOT_AN_OBJECT, -32602),
    (1, ("params", "configuration", "historyLength"), NOT_AN_INT | st.integers(-9, -1), -32602),
    (2, ("params", "id"), NOT_A_STRING, -32602),
    (2, ("params", "historyLength"), NOT_AN_INT | st.integers(-9, -1), -32602),
    (3, ("params", "id"), NOT_A_STRING, -32602),
    (4, ("params", "id"), NOT_A_STRING, -32602),
    (5, ("params", "id"), NOT_A_STRING, -32602),
]


@dataclass
class Target:
    """An app and the loop that drives it, shared by all examples of the module."""

    runner: asyncio.Runner
    http: httpx.AsyncClient
    persistence: InMemoryPersistence
    url: str

    def post(self, content: bytes, headers: dict[str, str] | None = None) -> tuple[httpx.Response, bool]:
        """Send one body; also report whether the persisted runs changed."""

        async def go() -> tuple[httpx.Response, bool]:
            before = await self.persistence.list_runs()
            response = await self.http.post(self.url, content=content, headers={"content-type": "application/json", **(headers or {})})
            return response, await self.persistence.list_runs() != before

        return self.runner.run(go())

    def check(self, content: bytes, headers: dict[str, str] | None = None) -> int | None:
        """Send, and assert what every answer must satisfy; returns the JSON-RPC error code."""
        response, persisted = self.post(content, headers)
        assert response.status_code == 200, (content[:200], response.status_code, response.text[:300])
        code = error_code(response)
        assert code != INTERNAL_ERROR, (content[:200], response.text[:300])
        if code is not None:
            assert not persisted, f"refused with {code} but persisted something: {content[:200]!r}"
        return code


@pytest.fixture(scope="module", autouse=True)
def quiet_sdk() -> Iterator[None]:
    """The SDK logs a traceback for each refused request; thousands of them only cost time here."""
    logger = logging.getLogger("a2a")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    runner = asyncio.Runner()
    persistence = InMemoryPersistence()
    app = create_a2a_app(make_flows(), persistence=persistence, max_body_size=64 * 1024)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agent.test", timeout=10)
    yield Target(runner, http, persistence, "/a2a")
    runner.run(http.aclose())
    runner.close()


@pytest.fixture(scope="module")
def live() -> Iterator[Target]:
    runner = asyncio.Runner()
    persistence = InMemoryPersistence()
    served = serving(make_flows(), persistence)
    server = runner.run(served.__aenter__())
    http = httpx.AsyncClient(timeout=10)
    yield Target(runner, http, persistence, server.rpc_url)
    runner.run(http.aclose())
    runner.run(served.__aexit__(None, None, None))
    runner.close()


def _strict_json(raw: bytes) -> Any:
    """What the endpoint makes of ``raw``: a JSON value, or ``ValueError`` for a parse error."""
    text = raw.decode("utf-8")
    if any("\ud800" <= c <= "\udfff" for c in text):
        raise ValueError("surrogates")

    def refuse(_: str) -> Any:
        raise ValueError("constant")

    return json.loads(text, parse_constant=refuse, parse_float=lambda s: float(s) if abs(float(s)) != float("inf") else refuse(s))


def expected_for_raw(raw: bytes) -> set[int]:
    try:
        value = _strict_json(raw)
    except (ValueError, RecursionError):
        return {-32700}
    if not isinstance(value, dict):
        return {-32600}
    return {-32600, -32601, -32602, -32009}


@settings(FUZZ, max_examples=400)
@given(raw=st.binary(max_size=200))
def test_random_bytes(target: Target, raw: bytes) -> None:
    code = target.check(raw)
    assert code in expected_for_raw(raw), (raw, code)


@settings(FUZZ, max_examples=350)
@given(value=json_values)
def test_random_json(target: Target, value: Any) -> None:
    raw = json.dumps(value).encode()
    code = target.check(raw)
    assert code in expected_for_raw(raw), (value, code)


def _set(request: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(request)
    holder: Any = changed
    for key in path[:-1]:
        holder = holder[key]
    holder[path[-1]] = value
    return changed


@settings(FUZZ, max_examples=500)
@given(data=st.data(), case=st.sampled_from(WRONG_TYPES))
def test_wrong_type_in_each_field(target: Target, data: st.DataObject, case: tuple[int, tuple[Any, ...], Any, int]) -> None:
    index, path, values, expected = case
    request, headers = VALID[index]
    value = data.draw(values, label="value")
    body = _set(request, path, value)
    code = target.check(json.dumps(body).encode(), headers)
    assert code == expected, (path, value, code)


MUTATIONS = ("delete", "replace", "method", "header", "unicode")
KNOWN_METHODS = ["message/send", "message/stream", "tasks/get", "tasks/cancel", "tasks/resubscribe", "SendMessage",
                 "SendStreamingMessage", "GetTask", "CancelTask", "ListTasks", "SubscribeToTask", "GetExtendedAgentCard",
                 "tasks/pushNotificationConfig/get", "CreateTaskPushNotificationConfig", "nope"]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            found += _paths(child, (*prefix, i))
    return found


@st.composite
def mutated_requests(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    request, headers = VALID[draw(st.integers(0, len(VALID) - 1))]
    body = copy.deepcopy(request)
    headers = dict(headers)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(MUTATIONS))
        paths = _paths(body)
        if kind == "delete" and paths:
            path = draw(st.sampled_from(paths))
            holder: Any = body
            for key in path[:-1]:
                holder = holder[key]
            del holder[path[-1]]
        elif kind == "replace" and paths:
            body = _set(body, draw(st.sampled_from(paths)), draw(json_values))
        elif kind == "method":
            body["method"] = draw(st.sampled_from(KNOWN_METHODS))
        elif kind == "header":
            version = draw(st.sampled_from([None, "1.0", "0.3", "1.1", "2.0", "", "x"]))
            headers.pop("A2A-Version", None)
            if version is not None:
                headers["A2A-Version"] = version
        elif kind == "unicode" and paths:
            body = _set(body, draw(st.sampled_from(paths)), draw(st.text(st.characters(codec="utf-16", exclude_categories=[]), max_size=6)))
    raw = json.dumps(body).encode()
    if draw(st.booleans()) and b"\\u" not in raw:
        raw = json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")  # raw surrogates: not UTF-8
    return raw, headers


ACCEPTED_CODES = {None, -32700, -32600, -32601, -32602, -32001, -32002, -32003, -32004, -32009}


@settings(FUZZ, max_examples=500)
@given(case=mutated_requests())
def test_mutated_valid_requests(target: Target, case: tuple[bytes, dict[str, str]]) -> None:
    raw, headers = case
    code = target.check(raw, headers)
    assert code in ACCEPTED_CODES, (raw, headers, code)


@settings(FUZZ, max_examples=100)
@given(case=mutated_requests() | st.binary(max_size=120).map(lambda raw: (raw, {})))
def test_over_real_http(live: Target, case: tuple[bytes, dict[str, str]]) -> None:
    raw, headers = case
    code = live.check(raw, headers)
    assert code in ACCEPTED_CODES, (raw, headers, code)


def test_fuzz_targets_still_serve_a_valid_request(target: Target) -> None:
    request, headers = VALID[0]
    body = _set(request, ("params", "message", "messageId"), str(uuid.uuid4()))
    assert target.check(json.dumps(body).encode(), headers) is None


# -- headers ------------------------------------------------------------------------------------

TOKEN, API_KEY = "t-fuzz", "k-fuzz"
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=40)
long_numbers = st.integers(1, 12_000).map(lambda n: "1" * n) | st.integers(1, 12_000).map(lambda n: "1." + "0" * n)
versions = st.sampled_from(["1.0", "1", "1.0.0", "0.3", "0.3.0", "2.0", "1.x", "", " 1.0 ", "v1", "1.0, 0.3"]) | long_numbers | header_text
credentials = (
    st.sampled_from([f"Bearer {TOKEN}", f"bearer {TOKEN}", "Bearer", "Bearer  ", f"Basic {TOKEN}", TOKEN])
    | long_numbers.map(lambda n: f"Bearer {n}")
    | header_text
)
content_types = st.sampled_from(["application/json", "text/plain", "application/json; charset=latin-1", "", "*/*"]) | header_text
HEADER_VALUES: dict[str, st.SearchStrategy[str]] = {
    "A2A-Version": versions,
    "Authorization": credentials,
    "X-API-Key": st.just(API_KEY) | long_numbers | header_text,
    "Content-Type": content_types,
    "Accept": st.sampled_from(["text/event-stream", "application/json", "*/*"]) | header_text,
    "A2A-Extensions": header_text | long_numbers,
    "X-Forwarded-For": header_text,
    "Cookie": header_text,
}


@st.composite
def header_sets(draw: st.DrawFn) -> dict[str, str]:
    names = draw(st.sets(st.sampled_from(sorted(HEADER_VALUES)), max_size=len(HEADER_VALUES)))
    return {name: draw(HEADER_VALUES[name], label=name) for name in sorted(names)}


@dataclass
class Guarded:
    """An app behind bearer and API-key auth, and the loop that drives it."""

    runner: asyncio.Runner
    http: httpx.AsyncClient
    persistence: InMemoryPersistence
    url: str

    def check(self, content: bytes, headers: dict[str, str]) -> int:
        """Send; no 5xx, no internal error, nothing stored on a refusal. Returns the HTTP status."""

        async def go() -> tuple[httpx.Response, bool]:
            before = await self.persistence.list_runs()
            raw_headers = {name: value.encode("latin-1") for name, value in headers.items()}  # bytes on the wire as given
            response = await self.http.post(self.url, content=content, headers=raw_headers)
            return response, await self.persistence.list_runs() != before

        response, persisted = self.runner.run(go())
        assert response.status_code < 500, (headers, content[:200], response.status_code, response.text[:300])
        if response.status_code == 200 and response.content:
            code = error_code(response)
            assert code != INTERNAL_ERROR, (headers, content[:200], response.text[:300])
            if code is not None:
                assert not persisted, f"refused with {code} but persisted something: {headers}"
        else:
            assert not persisted, (headers, response.status_code)
        return response.status_code


def _guarded(live: bool) -> Iterator[Guarded]:
    runner = asyncio.Runner()
    persistence = InMemoryPersistence()

    bearer, keys = BearerAuth(tokens={TOKEN: "alice"}), ApiKeyAuth(keys={API_KEY: "bob"})

    async def authenticate(request: Any) -> str | None:
        return await bearer.authenticate(request) or await keys.authenticate(request)

    if live:
        served = serving(make_flows(), persistence, auth=authenticate)
        server = runner.run(served.__aenter__())
        http = httpx.AsyncClient(timeout=10)
        yield Guarded(runner, http, persistence, server.rpc_url)
        runner.run(http.aclose())
        runner.run(served.__aexit__(None, None, None))
    else:
        app = create_a2a_app(make_flows(), persistence=persistence, auth=authenticate)
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agent.test", timeout=10)
        yield Guarded(runner, http, persistence, "/a2a")
        runner.run(http.aclose())
    runner.close()


@pytest.fixture(scope="module")
def guarded() -> Iterator[Guarded]:
    yield from _guarded(live=False)


@pytest.fixture(scope="module")
def guarded_live() -> Iterator[Guarded]:
    yield from _guarded(live=True)


@settings(FUZZ, max_examples=400)
@given(case=mutated_requests() | st.sampled_from(VALID).map(lambda v: (json.dumps(v[0]).encode(), v[1])), headers=header_sets())
def test_fuzzed_headers(guarded: Guarded, case: tuple[bytes, dict[str, str]], headers: dict[str, str]) -> None:
    raw, _ = case
    status = guarded.check(raw, headers)
    authorized = headers.get("Authorization", "").partition(" ")[::2] in {("Bearer", TOKEN), ("bearer", TOKEN)} or headers.get("X-API-Key") == API_KEY
    assert status == (200 if authorized else 401), (headers, status)


@settings(FUZZ, max_examples=80)
@given(case=st.sampled_from(VALID).map(lambda v: (json.dumps(v[0]).encode(), v[1])), headers=header_sets())
def test_fuzzed_headers_over_real_http(guarded_live: Guarded, case: tuple[bytes, dict[str, str]], headers: dict[str, str]) -> None:
    raw, _ = case
    # h11 will not send a value with spaces at either end; the server may refuse an oversized
    # header itself (4xx), never with a 5xx.
    guarded_live.check(raw, {name: value.strip(" \t") for name, value in headers.items()})


@pytest.mark.parametrize("over", ["guarded", "guarded_live"], ids=["in-process", "real HTTP"])
@pytest.mark.parametrize("version", ["1" * 10_000, "1." + "0" * 9_999, "9" * 4_301])
def test_a_huge_a2a_version_is_refused_not_a_500(request: pytest.FixtureRequest, over: str, version: str) -> None:
    target: Guarded = request.getfixturevalue(over)
    body, _ = VALID[1]
    headers = {"Authorization": f"Bearer {TOKEN}", "A2A-Version": version, "Content-Type": "application/json"}
    assert target.check(json.dumps(body).encode(), headers) == 200

"""Keeping secrets out of cassettes: what a recording scrubs before it is written.

Every name is compared without regard to case, and body fields also without regard to
``snake_case`` / ``camelCase`` / ``kebab-case`` (``clientSecret`` is ``client_secret``):

- the password of a URL's userinfo (``https://user:PASSWORD@host``);
- headers: :data:`SECRET_HEADERS` and any name ending in ``-token``, ``-key``, ``-secret``,
  ``-password`` or ``-signature`` (``X-Auth-Token``, ``Ocp-Apim-Subscription-Key``), in requests
  and responses (``Set-Cookie`` whatever its case);
- query parameters: :data:`SECRET_QUERY` (``API_KEY=``, ``Key=``);
- JSON and form body fields, in requests and responses (nested too): :data:`SECRET_FIELDS` and
  any name ending in ``_secret``, ``_password``, ``_token`` or ``_api_key``
  (``access_token`` in a token endpoint's answer, ``db_password``, ``clientSecret``);
- and anywhere else in the cassette, every value found that way: a key sent in a header and
  echoed in a response body is gone from both.

Secret headers are dropped; other values become :data:`REDACTED`. Requests are matched on their scrubbed form, so a recording
still replays: the live request is scrubbed the same way before it is looked up.
"""

from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["REDACTED", "SECRET_FIELDS", "SECRET_HEADERS", "SECRET_QUERY", "Scrubber"]

REDACTED = "<redacted>"
SECRET_HEADERS = (
    "authorization", "proxy-authorization", "api-key", "x-api-key", "x-goog-api-key", "x-auth-token",
    "ocp-apim-subscription-key", "openai-organization", "openai-project", "cookie", "set-cookie",
)
SECRET_QUERY = (
    "key", "api_key", "api-key", "apikey", "access_token", "token", "sig", "signature", "client_secret",
    "password", "secret", "auth", "x-amz-signature", "x-amz-credential", "x-amz-security-token",
)
SECRET_FIELDS = (
    "api_key", "apikey", "password", "passwd", "client_secret", "secret", "token", "access_token",
    "refresh_token", "id_token", "auth_token", "session_token", "private_key", "client_assertion",
    "authorization",
)
_HEADER_SUFFIXES = ("-token", "-key", "-secret", "-password", "-signature")
_FIELD_SUFFIXES = ("_secret", "_password", "_token", "_api_key")
_MIN_ECHO = 6
"""Shorter secret values are not hunted elsewhere in the file: they would match ordinary text."""
_JSON_STRING_FIELD = re.compile(r'"((?:[^"\\]|\\.)*)"(\s*:\s*)"((?:[^"\\]|\\.)*)"')


@functools.lru_cache(maxsize=4096)
def _field_name(name: str) -> str:
    # Cached: a cassette's bodies repeat the same few field names thousands of times.
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower().replace("-", "_")


@dataclass
class Scrubber:
    """Scrubs vcrpy requests and response dicts; remembers the secrets it saw to hunt them down."""

    headers: tuple[str, ...] = SECRET_HEADERS
    query: tuple[str, ...] = SECRET_QUERY
    fields: tuple[str, ...] = SECRET_FIELDS
    seen: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.headers = tuple(h.lower() for h in self.headers)
        self.query = tuple(q.lower() for q in self.query)
        self.fields = tuple(_field_name(f) for f in self.fields)

    # -- what counts as secret -------------------------------------------------------------------

    def secret_header(self, name: str) -> bool:
        """True for a header whose value must not be written."""
        lowered = name.lower()
        return lowered in self.headers or lowered.endswith(_HEADER_SUFFIXES)

    def secret_field(self, name: str) -> bool:
        """True for a body field (JSON key or form name) whose value must not be written."""
        normal = _field_name(name)
        return normal in self.fields or normal.endswith(_FIELD_SUFFIXES)

    def _remember(self, value: Any) -> None:
        if not isinstance(value, str):
            return
        found = {value.strip()}
        scheme, _, rest = value.strip().partition(" ")
        if rest and scheme.isalpha():  # "Bearer sk-...", "Basic dXNlcjpw..."
            found.add(rest.strip())
        with self._lock:
            self.seen.update(v for v in found if len(v) >= _MIN_ECHO and v != REDACTED)

    # -- requests -----------------------------------------------------------------------------------

    def request(self, request: Any) -> Any:
        """Scrub a (copied) vcrpy request in place and return it."""
        for name in list(request.headers):
            if self.secret_header(name):
                self._remember(request.headers[name])
                del request.headers[name]  # as vcrpy's own header filter does: not even the name
        request.uri = self._uri(request.uri)
        body = request.body
        if body is not None and not isinstance(body, (bytes, str)):
            # aiohttp hands vcrpy its ``json=`` / ``data=`` argument as the Python object itself.
            try:
                body = json.dumps(body, ensure_ascii=False)
            except (TypeError, ValueError):
                body = repr(body)
        if body:
            content_type = str(request.headers.get("content-type", "")).lower()
            request.body = self._body(body, form="x-www-form-urlencoded" in content_type)
            request.body = self.hunt(request.body)
        request.uri = self.hunt(request.uri)
        return request

    def _uri(self, uri: str) -> str:
        parts = urlsplit(uri)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            user, colon, password = userinfo.partition(":")
            if colon:
                self._remember(password)
                netloc = f"{user}:{REDACTED}@{hostport}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            scrubbed = []
            for name, value in pairs:
                if name.lower() in self.query:
                    self._remember(value)
                    value = REDACTED
                scrubbed.append((name, value))
            query = urlencode(scrubbed)
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))

    # -- bodies -------------------------------------------------------------------------------------

    def _body(self, body: bytes | str, *, form: bool) -> bytes | str:
        try:
            text = body.decode("utf-8") if isinstance(body, bytes) else body
        except UnicodeDecodeError:
            return body  # binary: only the secrets already seen are hunted in it
        if form and "=" in text and not text.lstrip().startswith(("{", "[")):
            pairs = parse_qsl(text, keep_blank_values=True)
            for name, value in pairs:
                if self.secret_field(name):
                    self._remember(value)
            scrubbed = urlencode([(n, REDACTED if self.secret_field(n) else v) for n, v in pairs])
        else:
            scrubbed = self._json(text)
        if scrubbed == text:
            return body
        return scrubbed.encode("utf-8") if isinstance(body, bytes) else scrubbed

    def _json(self, text: str) -> str:
        try:
            data = json.loads(text)
        except ValueError:
            return self.json_fields(text)  # not one JSON document: SSE events, JSON lines
        changed = [False]
        walked = self._walk(data, changed)
        return json.dumps(walked, ensure_ascii=False) if changed[0] else text

    def _walk(self, value: Any, changed: list[bool]) -> Any:
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, item in value.items():
                if isinstance(key, str) and self.secret_field(key) and isinstance(item, (str, int, float)) \
                        and not isinstance(item, bool) and item != REDACTED:
                    self._remember(item)
                    out[key] = REDACTED
                    changed[0] = True
                else:
                    out[key] = self._walk(item, changed)
            return out
        if isinstance(value, list):
            return [self._walk(item, changed) for item in value]
        return value

    def json_fields(self, text: str) -> str:
        """Replace the string values of secret fields in JSON text (SSE streams too), keeping the rest as is."""
        def replace(match: re.Match[str]) -> str:
            name, colon, value = match.group(1), match.group(2), match.group(3)
            if not self.secret_field(name) or value == REDACTED:
                return match.group(0)
            self._remember(_unescape(value))
            return f'"{name}"{colon}"{REDACTED}"'

        return _JSON_STRING_FIELD.sub(replace, text)

    def hunt(self, value: Any) -> Any:
        """``value`` (text or bytes) with every secret seen so far replaced."""
        with self._lock:
            secrets = sorted(self.seen, key=len, reverse=True)
        if not secrets or value is None:
            return value
        if isinstance(value, bytes):
            for secret in secrets:
                value = value.replace(secret.encode("utf-8"), REDACTED.encode())
            return value
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        return value

    # -- responses ----------------------------------------------------------------------------------

    def response(self, response: dict[str, Any]) -> dict[str, Any]:
        """Scrub a vcrpy response dict (headers, body) in place and return it."""
        headers = response.get("headers")
        if isinstance(headers, dict):
            for name in list(headers):
                if self.secret_header(name):
                    for value in _values(headers[name]):
                        self._remember(value)
                    del headers[name]
        body = response.get("body")
        if isinstance(body, dict) and body.get("string"):
            original = body["string"]
            scrubbed = self._body(original, form=False)
            scrubbed = self.hunt(scrubbed)
            if scrubbed != original:
                body["string"] = scrubbed
                _fix_length(headers, scrubbed)
        if isinstance(headers, dict):
            for name in list(headers):
                headers[name] = [self.hunt(v) if isinstance(v, str) else v for v in _values(headers[name])]
        return response


def _values(value: Any) -> Iterable[Any]:
    return value if isinstance(value, list) else [value]


def _unescape(value: str) -> str:
    try:
        return str(json.loads(f'"{value}"'))
    except ValueError:
        return value


def _fix_length(headers: Any, body: bytes | str) -> None:
    if not isinstance(headers, dict):
        return
    size = len(body.encode("utf-8") if isinstance(body, str) else body)
    for name in list(headers):
        if name.lower() == "content-length":
            headers[name] = [str(size)]

"""LLM cassettes: vcrpy recordings of model traffic, scrubbed, indexed and strict.

vcrpy stays the engine (patching, the file format, record modes); this module adds what LLM
traffic needs: secrets never reach the file, JSON bodies match by structure, lookups go
through an index keyed by the whole request rather than a scan of every interaction, and a
request with no recording fails naming the closest recorded one. vcrpy is imported only when
a cassette is actually used. Requests to a live agent under test are never recorded, and a
simulated user's and a judge's are keyed without their host (:mod:`.marked_requests`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pocketmesh_testing.errors import CassetteMissError
from pocketmesh_testing.doubles.fake_llm import fake_llm_hosts
from pocketmesh_testing.doubles.marked_requests import as_recorded

__all__ = [
    "DEFAULT_FILTER_HEADERS",
    "DEFAULT_FILTER_QUERY",
    "RECORD_MODES",
    "CassetteSettings",
    "LLMCassette",
    "default_cassette_path",
    "find_unused_cassettes",
    "resolve_record_mode",
    "use_llm_cassette",
]

RECORD_MODES = ("none", "once", "new_episodes", "all")
DEFAULT_FILTER_HEADERS = (
    "authorization", "proxy-authorization", "api-key", "x-api-key", "x-goog-api-key",
    "openai-organization", "openai-project", "cookie", "set-cookie",
)
DEFAULT_FILTER_QUERY = ("key", "api_key", "api-key", "apikey", "access_token", "token", "sig", "signature")
_MATCH_ON = ("method", "scheme", "host", "loopback_port", "path", "query", "json_body")


def resolve_record_mode(option: str | None, ini: str | None, environ: Mapping[str, str]) -> str:
    """The record mode: the command-line option, else the ini key, else ``none`` on CI, else ``once``."""
    for source, value in (("--pocketmesh-record-mode", option), ("pocketmesh_record_mode", ini)):
        if value:
            if value not in RECORD_MODES:
                raise ValueError(
                    f"{source}={value!r} is not a record mode; use one of {', '.join(RECORD_MODES)}."
                )
            return value
    ci = environ.get("CI", "").strip().lower()
    return "none" if ci not in ("", "0", "false", "no") else "once"


def default_cassette_path(test_file: Path, test_name: str) -> Path:
    """``cassettes/<test module>/<test name>.yaml`` beside the test file."""
    safe = re.sub(r"[^\w.\-]+", "-", test_name).strip("-") or "test"
    return test_file.parent / "cassettes" / test_file.stem / f"{safe}.yaml"


@dataclass(frozen=True)
class CassetteSettings:
    """How cassettes record and what they scrub."""

    record_mode: str = "once"
    filter_headers: tuple[str, ...] = DEFAULT_FILTER_HEADERS
    filter_query: tuple[str, ...] = DEFAULT_FILTER_QUERY
    filter_body: tuple[str, ...] = ()
    allow_playback_repeats: bool = False


@dataclass
class LLMCassette:
    """A cassette in use: its file, record mode, and what happened to it."""

    path: Path
    record_mode: str
    cassette: Any
    misses: list[CassetteMissError] = field(default_factory=list)

    @property
    def play_count(self) -> int:
        """How many recorded responses were replayed."""
        return int(self.cassette.play_count)

    @property
    def interactions(self) -> int:
        """How many interactions the cassette holds (recorded now or loaded)."""
        return len(self.cassette)

    @property
    def may_record(self) -> bool:
        """Whether requests missing from the cassette go to the real server and get recorded."""
        return not self.cassette.write_protected


# -- matching ---------------------------------------------------------------------------


def _canonical_body(body: Any) -> str | bytes:
    if body is None:
        return b""
    if not isinstance(body, (bytes, str)):
        # aiohttp hands vcrpy its ``json=`` / ``data=`` argument as the Python object itself.
        try:
            return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        except (TypeError, ValueError):
            return repr(body).encode()
    text = body if isinstance(body, str) else None
    try:
        return json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (ValueError, UnicodeDecodeError):
        return text.encode() if text is not None else body  # type: ignore[return-value]


def _json_body_matcher(r1: Any, r2: Any) -> None:
    if _canonical_body(r1.body) != _canonical_body(r2.body):
        raise AssertionError("JSON bodies differ")


def _is_loopback(host: str | None) -> bool:
    return bool(host) and (host == "localhost" or host.startswith("127.") or host.strip("[]") == "::1")


def _match_port(request: Any) -> int | None:
    # Loopback servers in tests listen on a fresh ephemeral port each run; a cassette recorded
    # against one must replay against the next, so on loopback the port is not compared.
    return None if _is_loopback(request.host) else request.port


def _loopback_port_matcher(r1: Any, r2: Any) -> None:
    if _match_port(r1) != _match_port(r2):
        raise AssertionError("ports differ")


def _key(request: Any) -> tuple[Any, ...]:
    return (request.method, request.scheme, request.host, _match_port(request), request.path or "/",
            tuple(request.query), _canonical_body(request.body))


def _describe(request: Any) -> str:
    body = request.body
    shown = ""
    if body:
        canonical = _canonical_body(body)
        text = canonical if isinstance(canonical, str) else repr(canonical)
        shown = f" body {text[:300]}{'...' if len(text) > 300 else ''}"
    return f"{request.method} {request.uri}{shown}"


def _json_diff(recorded: Any, sent: Any, path: str = "$", limit: int = 5) -> list[str]:
    if isinstance(recorded, dict) and isinstance(sent, dict):
        out: list[str] = []
        for key in sorted(set(recorded) | set(sent), key=str):
            if key not in sent:
                out.append(f"{path}.{key}: recorded {recorded[key]!r:.60}, missing from the request")
            elif key not in recorded:
                out.append(f"{path}.{key}: sent {sent[key]!r:.60}, not in the recording")
            else:
                out.extend(_json_diff(recorded[key], sent[key], f"{path}.{key}", limit))
            if len(out) >= limit:
                break
        return out[:limit]
    if isinstance(recorded, list) and isinstance(sent, list):
        out = []
        if len(recorded) != len(sent):
            out.append(f"{path}: recorded {len(recorded)} item(s), sent {len(sent)}")
        for index, (a, b) in enumerate(zip(recorded, sent)):
            out.extend(_json_diff(a, b, f"{path}[{index}]", limit))
            if len(out) >= limit:
                break
        return out[:limit]
    if recorded != sent:
        return [f"{path}: recorded {recorded!r:.80} != sent {sent!r:.80}"]
    return []


def _differences(stored: Any, request: Any) -> list[str]:
    out = [f"{name}: recorded {getattr(stored, name)!r} != sent {getattr(request, name)!r}"
           for name in ("method", "scheme", "host", "port", "path", "query")
           if getattr(stored, name) != getattr(request, name)]
    a, b = _canonical_body(stored.body), _canonical_body(request.body)
    if a != b:
        if isinstance(a, str) and isinstance(b, str):
            out.extend(f"body {d}" for d in _json_diff(json.loads(a), json.loads(b)))
        else:
            out.append("body: differs")
    return out


@functools.cache
def _cassette_class() -> type:
    from vcr.cassette import Cassette

    class IndexedCassette(Cassette):  # type: ignore[misc]
        """A vcrpy cassette that finds interactions through an index, and explains misses."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._index: dict[tuple[Any, ...], list[int]] = defaultdict(list)
            self._indexed = tuple(getattr(m, "__name__", "") for m in self._match_on) == (
                "method", "scheme", "host", "_loopback_port_matcher", "path", "query", "_json_body_matcher")
            self.misses: list[CassetteMissError] = []

        def append(self, request: Any, response: Any) -> None:
            before = len(self.data)
            super().append(request, response)
            if len(self.data) > before:
                self._index[_key(self.data[-1][0])].append(len(self.data) - 1)

        def _responses(self, request: Any) -> Iterator[tuple[int, Any]]:
            if not self._indexed:
                yield from super()._responses(request)
                return
            request = self._before_record_request(request)
            if request is None:
                return
            for index in self._index.get(_key(request), ()):
                yield index, self.data[index][1]

        def can_play_response_for(self, request: Any) -> bool:
            playable = bool(super().can_play_response_for(request))
            if not playable and self.write_protected:
                filtered = self._before_record_request(request)
                if filtered is not None:
                    miss = CassetteMissError(self._miss_message(filtered))
                    self.misses.append(miss)
                    raise miss
            return playable

        def _miss_message(self, request: Any) -> str:
            mode = getattr(self.record_mode, "value", self.record_mode)
            head = (f"cassette {self._path} (record mode {mode!r}, {len(self.data)} interaction(s)) "
                    f"has no recorded response for {_describe(request)}.")
            already = self._index.get(_key(request)) if self._indexed else None
            if already:
                return (f"{head} A matching interaction exists but was already played; each "
                        f"plays once. Record the repeated call (--pocketmesh-record-mode="
                        f"new_episodes) or avoid repeating it.")
            closest = min(
                ((len(_differences(stored, request)), i, stored) for i, (stored, _) in enumerate(self.data)),
                key=lambda t: (t[0], t[1]), default=None,
            )
            fix = (" Re-record with --pocketmesh-record-mode=new_episodes (adds it) or =all "
                   "(records the cassette afresh), or change the request back.")
            if closest is None:
                return f"{head} The cassette is empty.{fix}"
            _, index, stored = closest
            diffs = "; ".join(_differences(stored, request)[:5])
            return (f"{head} Closest recorded request (#{index + 1}): {_describe(stored)}. "
                    f"It differs in {diffs}.{fix}")

    return IndexedCassette


# -- scrubbing and the safe serializer ---------------------------------------------------


def _request_filter() -> Any:
    def before_record_request(request: Any) -> Any:
        hosts = fake_llm_hosts()
        if f"{request.host}:{request.port}" in hosts or request.host in hosts:
            return None  # fake LLM traffic is answered by the fake, never recorded
        return as_recorded(request)  # a live agent's passes by; a simulation's is keyed without host

    return before_record_request


def _response_filter(settings: CassetteSettings) -> Any:
    drop = {h.lower() for h in settings.filter_headers}

    def before_record_response(response: Any) -> Any:
        headers = response.get("headers")
        if isinstance(headers, dict):
            response["headers"] = {k: v for k, v in headers.items() if k.lower() not in drop}
        return response

    return before_record_response


class _SafeSerializer:
    """YAML with ``safe_load`` only: a cassette file can never construct Python objects."""

    @staticmethod
    def deserialize(text: str) -> Any:
        import yaml

        return yaml.load(text, Loader=_safe_loader())  # noqa: S506 - a SafeLoader subclass

    @staticmethod
    def serialize(data: Any) -> str:
        import yaml

        return yaml.dump(data, Dumper=_safe_dumper(), sort_keys=False, allow_unicode=True)


@functools.cache
def _safe_loader() -> type:
    import yaml

    class Loader(yaml.SafeLoader):
        """SafeLoader plus the two harmless tags older vcrpy cassettes contain."""

    def as_tuple(loader: Any, node: Any) -> tuple[Any, ...]:
        return tuple(loader.construct_sequence(node))

    def as_str(loader: Any, node: Any) -> str:
        return str(loader.construct_scalar(node))

    Loader.add_constructor("tag:yaml.org,2002:python/tuple", as_tuple)
    Loader.add_constructor("tag:yaml.org,2002:python/unicode", as_str)
    Loader.add_constructor("tag:yaml.org,2002:python/str", as_str)
    return Loader


@functools.cache
def _safe_dumper() -> type:
    import yaml

    class Dumper(yaml.SafeDumper):
        """SafeDumper that writes tuples as lists and long bodies as readable blocks."""

    def represent_str(dumper: Any, value: str) -> Any:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(tuple, lambda d, v: d.represent_list(list(v)))
    Dumper.add_representer(str, represent_str)
    return Dumper


# -- using a cassette ----------------------------------------------------------------------


@contextlib.contextmanager
def use_llm_cassette(path: Path | str, settings: CassetteSettings | None = None) -> Iterator[LLMCassette]:
    """Record or replay HTTP traffic (httpx, httpx2, requests, aiohttp...) through ``path``."""
    import vcr

    settings = settings or CassetteSettings()
    if settings.record_mode not in RECORD_MODES:
        raise ValueError(f"record mode {settings.record_mode!r} is not one of {', '.join(RECORD_MODES)}.")
    path = Path(path)
    recorder = vcr.VCR(
        serializer="pocketmesh-yaml",
        record_mode=settings.record_mode,
        match_on=_MATCH_ON,
        filter_headers=list(settings.filter_headers),
        filter_query_parameters=list(settings.filter_query),
        filter_post_data_parameters=list(settings.filter_body),
        filter_nested_post_data_parameters=True,
        before_record_request=_request_filter(),
        before_record_response=_response_filter(settings),
        decode_compressed_response=True,
    )
    recorder.register_serializer("pocketmesh-yaml", _SafeSerializer())
    recorder.register_matcher("json_body", _json_body_matcher)
    recorder.register_matcher("loopback_port", _loopback_port_matcher)
    config = recorder.get_merged_config(path=str(path), allow_playback_repeats=settings.allow_playback_repeats)
    with _cassette_class().use(**config) as cassette:
        yield LLMCassette(path, settings.record_mode, cassette, cassette.misses)


def find_unused_cassettes(
    test_files: Iterable[Path], used: Iterable[Path], *, partial_modules: Sequence[Path] = ()
) -> list[Path]:
    """Cassette files beside ``test_files`` that no test used: orphans of renamed or removed tests.

    Cassettes of test modules that were not collected, or only partly run (``partial_modules``),
    are not judged; those of modules that no longer exist always are.
    """
    used_set = {Path(p).resolve() for p in used}
    partial = {Path(p).resolve() for p in partial_modules}
    collected = {Path(f).resolve() for f in test_files}
    unused: list[Path] = []
    for directory in sorted({f.parent for f in collected}):
        root = directory / "cassettes"
        if not root.is_dir():
            continue
        for file in sorted(root.rglob("*.yaml")):
            owner = directory / f"{file.relative_to(root).parts[0]}.py"
            # A module that exists but was not (fully) run cannot vouch for its cassettes.
            judged = owner not in partial and (owner in collected or not owner.exists())
            if not judged or file.resolve() in used_set:
                continue
            unused.append(file)
    return unused


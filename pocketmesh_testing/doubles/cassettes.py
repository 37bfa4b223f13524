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
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pocketmesh_testing.errors import CassetteMissError
from pocketmesh_testing.doubles.fake_llm import fake_llm_hosts
from pocketmesh_testing.doubles.marked_requests import as_recorded
from pocketmesh_testing.doubles.matching import canonical_body, describe, differences, loopback_port, request_key
from pocketmesh_testing.doubles.scrubbing import SECRET_HEADERS, SECRET_QUERY, Scrubber

__all__ = [
    "CASSETTE_HEADER",
    "DEFAULT_FILTER_HEADERS",
    "DEFAULT_FILTER_QUERY",
    "RECORD_MODES",
    "CassetteSettings",
    "LLMCassette",
    "default_cassette_path",
    "find_unused_cassettes",
    "is_pocketmesh_cassette",
    "resolve_record_mode",
    "use_llm_cassette",
]

RECORD_MODES = ("none", "once", "new_episodes", "all")
DEFAULT_FILTER_HEADERS = SECRET_HEADERS
DEFAULT_FILTER_QUERY = SECRET_QUERY
_MATCH_ON = ("method", "scheme", "host", "loopback_port", "path", "query", "json_body")
CASSETTE_HEADER = "# pocketmesh cassette: recorded by pocketmesh_testing, secrets scrubbed"
"""The first line of every cassette pocketmesh writes; ``--pocketmesh-unused-cassettes`` judges only these."""


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


def _json_body_matcher(r1: Any, r2: Any) -> None:
    if canonical_body(r1.body) != canonical_body(r2.body):
        raise AssertionError("JSON bodies differ")


def _loopback_port_matcher(r1: Any, r2: Any) -> None:
    if loopback_port(r1) != loopback_port(r2):
        raise AssertionError("ports differ")


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
            self._loading = False

        def _load(self) -> None:
            # A cassette pocketmesh wrote holds responses already scrubbed and decoded: loading
            # it takes them as read, sparing vcrpy's per-response copy and filters. Requests go
            # through the filters still, since matching compares them with filtered requests.
            self._loading = is_pocketmesh_cassette(Path(self._path))
            try:
                super()._load()
            finally:
                self._loading = False

        def append(self, request: Any, response: Any) -> None:
            before = len(self.data)
            if self._loading:
                request = self._before_record_request(request)
                if request:
                    self.data.append((request, response))
                    self.dirty = True
            else:
                super().append(request, response)
            if len(self.data) > before:
                self._index[request_key(self.data[-1][0])].append(len(self.data) - 1)

        def _responses(self, request: Any) -> Iterator[tuple[int, Any]]:
            if not self._indexed:
                yield from super()._responses(request)
                return
            request = self._before_record_request(request)
            if request is None:
                return
            for index in self._index.get(request_key(request), ()):
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
                    f"has no recorded response for {request.method} {request.uri}.")
            sent = describe(request)
            already = self._index.get(request_key(request)) if self._indexed else None
            if already:
                return (f"{head} A matching interaction exists but was already played; each "
                        f"plays once. Record the repeated call (--pocketmesh-record-mode="
                        f"new_episodes) or avoid repeating it. Sent: {sent}")
            closest = min(
                ((len(differences(stored, request)), i, stored) for i, (stored, _) in enumerate(self.data)),
                key=lambda t: (t[0], t[1]), default=None,
            )
            fix = (" Re-record with --pocketmesh-record-mode=new_episodes (adds it) or =all "
                   "(records the cassette afresh), or change the request back.")
            if closest is None:
                return f"{head} The cassette is empty.{fix} Sent: {sent}"
            _, index, stored = closest
            diffs = "; ".join(differences(stored, request)[:5])
            # Where they differ first: the bodies can be long and alike for hundreds of characters.
            return (f"{head} Closest recorded request (#{index + 1}): {stored.method} {stored.uri}. "
                    f"It differs in {diffs}.{fix} Sent: {sent}")

    return IndexedCassette


# -- scrubbing and the safe serializer ---------------------------------------------------


def _scrubber(settings: CassetteSettings) -> Scrubber:
    return Scrubber(headers=settings.filter_headers, query=settings.filter_query,
                    fields=Scrubber().fields + tuple(settings.filter_body))


def _request_filter(scrubber: Scrubber) -> Any:
    def before_record_request(request: Any) -> Any:
        hosts = fake_llm_hosts()
        if f"{request.host}:{request.port}" in hosts or request.host in hosts or request.host in _NEVER_RECORDED:
            return None  # answered in-process (fake LLM, in-process agents): never recorded
        # A live agent's request passes by; a simulation's is keyed without its host. vcrpy hands
        # filters a copy, so the live request is untouched by either this or the scrubbing.
        marked = as_recorded(request)
        return None if marked is None else scrubber.request(marked)

    return before_record_request


_NEVER_RECORDED = frozenset({"pocketmesh-agent.test"})
"""Hosts of in-process A2A agents (see ``conversations.agents``): their traffic is the test itself."""


class _SafeSerializer:
    """YAML with ``safe_load`` only: a cassette file can never construct Python objects."""

    @staticmethod
    def deserialize(text: str) -> Any:
        import yaml

        return yaml.load(text, Loader=_safe_loader())  # noqa: S506 - a SafeLoader subclass

    @staticmethod
    def serialize(data: Any) -> str:
        import yaml

        return CASSETTE_HEADER + "\n" + yaml.dump(data, Dumper=_safe_dumper(), sort_keys=False, allow_unicode=True)


@functools.cache
def _safe_loader() -> type:
    import yaml

    # libyaml's safe loader where PyYAML was built with it: the pure-Python one reads a large
    # cassette several times slower than plain vcrpy (which uses libyaml).
    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):  # type: ignore[misc, valid-type]
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
    scrubber = _scrubber(settings)
    recorder = vcr.VCR(
        serializer="pocketmesh-yaml",
        record_mode=settings.record_mode,
        match_on=_MATCH_ON,
        # Scrubbing is the Scrubber's alone: vcrpy's own filters compare names case-sensitively.
        before_record_request=_request_filter(scrubber),
        before_record_response=scrubber.response,
        decode_compressed_response=True,
    )
    recorder.register_serializer("pocketmesh-yaml", _SafeSerializer())
    recorder.register_matcher("json_body", _json_body_matcher)
    recorder.register_matcher("loopback_port", _loopback_port_matcher)
    config = recorder.get_merged_config(path=str(path), allow_playback_repeats=settings.allow_playback_repeats)
    with _cassette_class().use(**config) as cassette:
        yield LLMCassette(path, settings.record_mode, cassette, cassette.misses)


def is_pocketmesh_cassette(path: Path) -> bool:
    """True for a cassette pocketmesh wrote (its first line is :data:`CASSETTE_HEADER`)."""
    try:
        with path.open("r", encoding="utf-8", errors="replace") as file:
            return file.readline().rstrip("\n") == CASSETTE_HEADER
    except OSError:
        return False


def find_unused_cassettes(
    test_files: Iterable[Path], used: Iterable[Path], *, partial_modules: Sequence[Path] = ()
) -> list[Path]:
    """pocketmesh cassettes beside ``test_files`` that no test used: orphans of renamed or removed tests.

    ``cassettes/<owner>/...`` belongs to the test module ``<owner>.py`` or the scenario file
    ``<owner>.yaml``. Cassettes of owners that were not collected, or only partly run
    (``partial_modules``), are not judged; those of owners that no longer exist always are.
    Files other tools wrote there (pytest-recording's, plain vcrpy's) are never listed.
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
            if file.resolve() in used_set or not is_pocketmesh_cassette(file):
                continue
            stem = file.relative_to(root).parts[0]
            owners = [directory / f"{stem}{suffix}" for suffix in (".py", ".yaml", ".yml")]
            # An owner that exists but was not (fully) run cannot vouch for its cassettes.
            if any(o in partial or (o.exists() and o not in collected) for o in owners):
                continue
            unused.append(file)
    return unused


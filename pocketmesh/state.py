"""Checkpointing what changed: a run's shared state that notes which keys a step may have
changed, and the per-key image of what the backend already holds.

A persisted run's shared state is a :class:`TrackedState`, a ``dict`` that remembers each key
assigned, deleted, or read while holding a mutable value (a list or dict read from the state
may be changed in place: it counts as changed, conservatively, for the rest of the run).
:class:`StateImage` knows, per key, what the backend stores; a checkpoint then encodes and
writes only the keys the run touched, so a step that changes one counter costs the same with
1 KB of state as with 1 MB. A list the runtime only appends to (:meth:`TrackedState.append_items`,
the A2A history) is written as its new items alone: its stored form grows by appending.

What tracking cannot see is a value changed through a reference obtained outside the state
(a list captured by a closure before the run started): assign the key again
(``shared["k"] = shared["k"]``) to have it saved.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Callable

from .errors import StateNotSerializableError

_SCALARS = frozenset({str, int, float, bool, type(None)})
_SAME_WHEN_EQUAL = frozenset({str, int, bool, type(None)})
"""Values an equal one of the same type stands in for exactly (not floats: -0.0 == 0.0)."""

class TrackedState(dict):  # type: ignore[type-arg]
    """A run's shared state, noting the keys that may have changed (see the module docstring).

    It is a ``dict`` in every way a node can tell; only ``copy()`` returns a plain dict.
    """

    __slots__ = ("appended", "before", "touched")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.touched: set[Any] = set()
        """Keys assigned, deleted or read as mutable values since the run started."""
        self.appended: dict[Any, int] = {}
        """Keys :meth:`append_items` extended: how many items they had before."""
        self.before: set[Any] = set()
        """The keys touched since the run started, saved since (set aside by :meth:`settle`)."""

    # -- reads that may lead to in-place changes ------------------------------------------------

    def __getitem__(self, key: Any) -> Any:
        value = dict.__getitem__(self, key)
        if value.__class__ not in _SCALARS:
            self.touched.add(key)
        return value

    def get(self, key: Any, default: Any = None) -> Any:
        value = dict.get(self, key, default)
        if value.__class__ not in _SCALARS and key in self:
            self.touched.add(key)
        return value

    def setdefault(self, key: Any, default: Any = None) -> Any:
        self.touched.add(key)
        return dict.setdefault(self, key, default)

    def __iter__(self) -> Iterator[Any]:
        # Overridden so that dict(state) and {**state} go through __getitem__ (CPython copies
        # a dict subclass item by item only when its __iter__ is its own).
        return dict.__iter__(self)

    def values(self) -> Any:
        self._touch_mutable()
        return dict.values(self)

    def items(self) -> Any:
        self._touch_mutable()
        return dict.items(self)

    def copy(self) -> dict[Any, Any]:
        self._touch_mutable()
        return dict(dict.items(self))

    def __copy__(self) -> dict[Any, Any]:
        return self.copy()

    def __reduce_ex__(self, protocol: Any) -> Any:
        # copy.deepcopy and pickle: a plain dict of the same items.
        return (dict, (self.copy(),))

    def _touch_mutable(self) -> None:
        touched = self.touched
        for key, value in dict.items(self):
            if value.__class__ not in _SCALARS:
                touched.add(key)

    # -- writes -----------------------------------------------------------------------------------

    def __setitem__(self, key: Any, value: Any) -> None:
        # The same str, number, bool or None again changes nothing: no write for it (the A2A
        # server sets the task and context ids on every turn).
        cls = value.__class__
        if cls not in _SAME_WHEN_EQUAL or dict.get(self, key, _MISSING).__class__ is not cls or dict.__getitem__(self, key) != value:
            self.touched.add(key)
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: Any) -> None:
        self.touched.add(key)
        dict.__delitem__(self, key)

    def pop(self, key: Any, *default: Any) -> Any:
        self.touched.add(key)
        return dict.pop(self, key, *default)

    def popitem(self) -> tuple[Any, Any]:
        key, value = dict.popitem(self)
        self.touched.add(key)
        return key, value

    def clear(self) -> None:
        self.touched.update(dict.keys(self))
        dict.clear(self)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __ior__(self, other: Any) -> TrackedState:
        self.update(other)
        return self

    def settle(self, *, between_steps: bool = False) -> None:
        """Start afresh once everything touched is saved (:attr:`before` keeps what was).

        ``between_steps``: the run goes on, and a list or dict read earlier in it may still
        be changed in place through a reference a node kept, so those keys stay touched.
        """
        touched = self.touched
        self.before |= touched
        if between_steps:
            self.touched = {k for k in touched if dict.get(self, k).__class__ not in _SCALARS}
        else:
            self.touched = set()

    def append_items(self, key: str, items: Iterable[Any]) -> None:
        """Append ``items`` to the list at ``key`` (created if absent), so that the next
        checkpoint stores only the new items."""
        current = dict.get(self, key)
        if current.__class__ is not list:
            self[key] = list(items)
            return
        self.appended.setdefault(key, len(current))
        current.extend(items)


class StateImage:
    """What the backend holds of one run's shared state, key by key: the value object last
    written, its position, how many parts its stored form has, and a list's length then."""

    __slots__ = ("entries", "next_pos", "owner", "fresh", "synced")

    def __init__(self) -> None:
        self.entries: dict[Any, list[Any]] = {}
        """key -> [value object, position, stored parts, list length or -1]."""
        self.next_pos = 0
        self.owner: TrackedState | None = None
        """The state whose tracking this image follows; any other needs a full comparison."""
        self.fresh = True
        """Nothing stored yet as far as this image knows: the first write replaces every key."""
        self.synced = False
        """The last write committed everything the owner had touched."""

    @classmethod
    def loaded(cls, shared: dict[str, Any], keys: Iterable[tuple[str, int, int]]) -> StateImage:
        """The image of a state just read back from rows ``(key, position, parts)``."""
        image = cls()
        entries = image.entries
        top = -1
        for key, pos, parts in keys:
            value = dict.__getitem__(shared, key)
            entries[key] = [value, pos, parts, len(value) if value.__class__ is list else -1]
            if pos > top:
                top = pos
        image.next_pos = top + 1
        image.fresh = False
        return image

    def changes(self, shared: dict[str, Any], encode: Callable[[Any, Any], str]) -> Pending:
        """What to write so the backend holds ``shared`` (nothing is recorded as stored
        until :meth:`commit`). ``encode(value, key)`` raises on a value JSON cannot hold."""
        entries = self.entries
        pending = Pending(self.fresh)
        self.synced = False
        tracked = shared.__class__ is TrackedState
        if self.fresh:
            keys: Iterable[Any] = list(dict.keys(shared))
            appended: dict[Any, int] = {}
        elif tracked and self.owner is shared:
            keys = list(shared.touched)  # type: ignore[attr-defined]
            appended = shared.appended  # type: ignore[attr-defined]
        else:
            # A state this image has not followed: compare every key by identity. A list or
            # dict that is the stored object may have been changed in place since it was
            # handed out (a resumed run's state is built from the loaded values): write it.
            keys = [
                k
                for k, v in dict.items(shared)
                if (e := entries.get(k)) is None or e[0] is not v or v.__class__ not in _SCALARS
            ]
            keys += [k for k in entries if k not in shared]
            appended = {}
        puts, values, resets = pending.puts, pending.values, pending.resets
        get, lookup = entries.get, dict.get
        missing = _MISSING
        for key in keys:
            entry = get(key)
            value = lookup(shared, key, missing)
            if value is missing:
                if entry is not None:
                    pending.drops.append((key, entry[2]))
                continue
            if key.__class__ is not str:
                raise StateNotSerializableError(
                    f"shared[{key!r}]", value, f"dict keys must be str, this one is a {type(key).__name__}"
                )
            if entry is None:
                pos = self.next_pos
                self.next_pos = pos + 1
            else:
                pos = entry[1]
                if entry[2] > 1:
                    resets.append((key, entry[2]))
            puts.append((key, pos, encode(value, key)))
            values.append(value)
        if appended:
            touched = shared.touched if tracked else ()  # type: ignore[attr-defined]
            for key, before in appended.items():
                if key in touched or key not in shared:
                    continue
                entry = get(key)
                value = dict.__getitem__(shared, key)
                if entry is None or entry[0] is not value or entry[3] != before:
                    pending.put(self, key, entry, value, encode(value, key))
                elif len(value) > before:
                    pending.appends.append((key, entry[1], entry[2], encode(value[before:], key)))
                    pending.grown.append((key, len(value)))
        return pending

    def commit(self, pending: Pending, shared: dict[str, Any], *, settle: bool = False) -> None:
        """Record that the backend now holds what ``pending`` wrote (``settle``: no step is
        under way, so what was touched is saved and tracking starts afresh)."""
        entries = self.entries
        if pending.replace:
            entries.clear()
        for key, _parts in pending.drops:
            entries.pop(key, None)
        for (key, pos, _text), value in zip(pending.puts, pending.values):
            entries[key] = [value, pos, 1, len(value) if value.__class__ is list else -1]
        for key, length in pending.grown:
            entry = entries[key]
            entry[2] += 1
            entry[3] = length
        self.fresh = False
        if shared.__class__ is TrackedState:
            shared.appended.clear()  # type: ignore[attr-defined]
            self.owner = shared  # type: ignore[assignment]
            self.synced = True
            if settle:
                shared.settle(between_steps=True)  # type: ignore[attr-defined]


_MISSING = object()


class Pending:
    """The writes of one checkpoint's shared state, as the fast-path backends take them:

    ``replace``: drop every stored key first; ``puts``: ``(key, position, JSON text)`` whole
    values (any appended parts of the key dropped); ``appends``: ``(key, position, part, text)``
    items added to a stored list (``text``: a JSON array of the new items); ``drops``:
    ``(key, stored parts)`` keys removed; ``resets``: ``(key, stored parts)`` of put keys that
    had appended parts.
    """

    __slots__ = ("replace", "puts", "appends", "drops", "resets", "values", "grown")

    def __init__(self, replace: bool) -> None:
        self.replace = replace
        self.puts: list[tuple[str, int, str]] = []
        self.appends: list[tuple[str, int, int, str]] = []
        self.drops: list[tuple[str, int]] = []
        self.resets: list[tuple[str, int]] = []
        self.values: list[Any] = []
        self.grown: list[tuple[str, int]] = []

    def put(self, image: StateImage, key: str, entry: list[Any] | None, value: Any, text: str) -> None:
        if entry is None:
            pos = image.next_pos
            image.next_pos += 1
        else:
            pos = entry[1]
            if entry[2] > 1:
                self.resets.append((key, entry[2]))
        self.puts.append((key, pos, text))
        self.values.append(value)

    def __bool__(self) -> bool:
        return bool(self.replace or self.puts or self.appends or self.drops)

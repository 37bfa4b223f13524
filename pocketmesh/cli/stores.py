"""Where runs are kept, as the command line names them: ``--db PATH|URL`` and ``--persistence``,
and the argument types the commands share."""

from __future__ import annotations

import argparse
from typing import Any

BACKENDS = ("sqlite", "postgres", "redis")
_URL_SCHEMES = {"postgresql": "postgres", "postgres": "postgres", "redis": "redis", "rediss": "redis", "unix": "redis"}


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of bytes >= 1, got {text!r}; e.g. 4194304 for 4 MiB")
    return int(text)


def port_number(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"expected a TCP port number (1-65535), got {text!r}; e.g. 50051")
    return int(text)


def count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}; e.g. 16 (0: no limit)")
    return int(text)


def backend_of(db: str | None, persistence: str | None) -> str:
    """Which store ``--db`` / ``--persistence`` name: ``sqlite``, ``postgres`` or ``redis``."""
    scheme = db.partition("://")[0].lower() if db and "://" in db else None
    guessed = _URL_SCHEMES.get(scheme or "")
    if scheme is not None and guessed is None:
        raise ValueError(
            f"--db {scheme}://... is not a store this server knows; give a SQLite file path, "
            f"a postgresql://user:password@host/db URL or a redis://host:6379/0 URL."
        )
    if persistence is None:
        return guessed or "sqlite"
    if db is not None and (guessed or "sqlite") != persistence:
        raise ValueError(
            f"--persistence {persistence} does not match --db {_redacted(db)!r} (a {guessed or 'sqlite'} store); "
            f"drop one of them or make them agree."
        )
    return persistence


def _redacted(db: str) -> str:
    from ..persistence.postgres import redact

    return redact(db)


def open_persistence(db: str | None, persistence: str | None) -> Any:
    """The persistence backend ``--db`` / ``--persistence`` ask for."""
    backend = backend_of(db, persistence)
    if backend == "postgres":
        from ..persistence import PostgresPersistence

        return PostgresPersistence(db)
    if backend == "redis":
        from ..persistence import RedisPersistence

        return RedisPersistence(db)
    from ..persistence import SQLitePersistence

    return SQLitePersistence(db)

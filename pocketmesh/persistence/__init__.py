"""Persistence backends: the protocol, an in-memory store, SQLite (the default), and the
scale-out backends PostgreSQL and Redis (their drivers are optional extras, loaded on use)."""

from .base import Persistence
from .memory import InMemoryPersistence
from .postgres import PostgresPersistence
from .redis import RedisPersistence
from .sqlite import SQLitePersistence

__all__ = [
    "InMemoryPersistence",
    "Persistence",
    "PostgresPersistence",
    "RedisPersistence",
    "SQLitePersistence",
]

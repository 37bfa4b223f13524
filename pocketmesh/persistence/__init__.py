"""Persistence backends: the protocol, an in-memory store and SQLite (the default)."""

from .base import Persistence
from .memory import InMemoryPersistence
from .sqlite import SQLitePersistence

__all__ = ["InMemoryPersistence", "Persistence", "SQLitePersistence"]

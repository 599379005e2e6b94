"""A persistent object store for an emulator: JSON objects by kind and id in SQLite, surviving a restart."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class ObjectStore:
    """JSON objects by (kind, id) in SQLite, mirrored in memory; survives a restart of `billmig local up`.

    Reads come from memory; every write goes through to disk at once, so a crash loses nothing acknowledged.
    Iteration order is insertion order (what list endpoints page over).
    """

    def __init__(self, path: Path | None) -> None:
        self.lock = threading.RLock()
        self._mem: dict[str, dict[str, dict[str, Any]]] = {}
        self._db: sqlite3.Connection | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS objects (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,"
                " id TEXT NOT NULL, body TEXT NOT NULL, UNIQUE(kind, id))"
            )
            for kind, oid, body in self._db.execute("SELECT kind, id, body FROM objects ORDER BY seq"):
                self._mem.setdefault(kind, {})[oid] = json.loads(body)

    def put(self, kind: str, oid: str, obj: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self._mem.setdefault(kind, {})[oid] = obj
            if self._db is not None:
                self._db.execute(
                    "INSERT INTO objects(kind, id, body) VALUES (?, ?, ?)"
                    " ON CONFLICT(kind, id) DO UPDATE SET body = excluded.body",
                    (kind, oid, json.dumps(obj, separators=(",", ":"))),
                )
        return obj

    def get(self, kind: str, oid: str) -> dict[str, Any] | None:
        with self.lock:
            return self._mem.get(kind, {}).get(oid)

    def delete(self, kind: str, oid: str) -> None:
        with self.lock:
            self._mem.get(kind, {}).pop(oid, None)
            if self._db is not None:
                self._db.execute("DELETE FROM objects WHERE kind = ? AND id = ?", (kind, oid))

    def all(self, kind: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self._mem.get(kind, {}).values())

    def ids(self, kind: str) -> Iterator[str]:
        with self.lock:
            return iter(list(self._mem.get(kind, {})))

    def count(self, kind: str) -> int:
        with self.lock:
            return len(self._mem.get(kind, {}))

    def close(self) -> None:
        with self.lock:
            if self._db is not None:
                self._db.close()
                self._db = None

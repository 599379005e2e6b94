"""A persistent object store for an emulator: JSON objects by kind and id in SQLite, surviving a restart."""

from __future__ import annotations

import itertools
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class ObjectStore:
    """JSON objects by (kind, id) in SQLite, mirrored in memory; survives a restart of `billmig local up`.

    Reads come from memory; every write goes through to disk at once, so a crash loses nothing acknowledged.
    Iteration order is insertion order (what list endpoints page over). `where(kind, field, value)` answers from an
    index built on its first use and kept on every write, so "this customer's contracts" does not scan every
    customer's (a scan per request made a batch of N customers cost N^2).
    """

    def __init__(self, path: Path | None) -> None:
        self.lock = threading.RLock()
        self._mem: dict[str, dict[str, dict[str, Any]]] = {}
        self._order: dict[str, dict[str, int]] = {}  # kind -> id -> position (that of `all`: first write)
        self._positions = itertools.count()
        self._indexes: dict[tuple[str, str], dict[Any, dict[str, None]]] = {}  # (kind, field) -> value -> ids
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
                self._order.setdefault(kind, {}).setdefault(oid, next(self._positions))

    def put(self, kind: str, oid: str, obj: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            objects = self._mem.setdefault(kind, {})
            self._unindex(kind, oid, objects.get(oid))
            objects[oid] = obj
            self._order.setdefault(kind, {}).setdefault(oid, next(self._positions))
            self._index(kind, oid, obj)
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
            self._unindex(kind, oid, self._mem.get(kind, {}).pop(oid, None))
            self._order.get(kind, {}).pop(oid, None)
            if self._db is not None:
                self._db.execute("DELETE FROM objects WHERE kind = ? AND id = ?", (kind, oid))

    def all(self, kind: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self._mem.get(kind, {}).values())

    def where(self, kind: str, field: str, value: Any) -> list[dict[str, Any]]:
        """The objects of `kind` whose `field` equals `value`, in insertion order."""
        with self.lock:
            index = self._indexes.get((kind, field))
            if index is None:
                index = self._indexes[(kind, field)] = {}
                for oid, obj in self._mem.get(kind, {}).items():
                    index.setdefault(obj.get(field), {})[oid] = None
            ids = index.get(value)
            if not ids:
                return []
            order, objects = self._order[kind], self._mem[kind]
            # an object changed in place and put again is indexed under its new value; skip its old entry
            found = [objects[oid] for oid in sorted(ids, key=order.__getitem__)]
            return [obj for obj in found if obj.get(field) == value]

    def _index(self, kind: str, oid: str, obj: dict[str, Any]) -> None:
        for (indexed_kind, field), index in self._indexes.items():
            if indexed_kind == kind:
                index.setdefault(obj.get(field), {})[oid] = None

    def _unindex(self, kind: str, oid: str, obj: dict[str, Any] | None) -> None:
        if obj is None:
            return
        for (indexed_kind, field), index in self._indexes.items():
            if indexed_kind == kind:
                ids = index.get(obj.get(field))
                if ids is not None:
                    ids.pop(oid, None)

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

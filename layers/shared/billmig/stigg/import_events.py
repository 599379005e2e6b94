"""What every Stigg import step's event names: its import, which is the run the progress store files it under."""

from __future__ import annotations

from pydantic import BaseModel


class ImportEvent(BaseModel):
    import_id: str

    @property
    def run_id(self) -> str:
        return self.import_id

    @property
    def subject(self) -> str | None:
        """The record or chunk the step moves; the whole import when None."""
        return None

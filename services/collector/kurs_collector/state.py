"""Durable per-feed progress: conditional-request validators and the newest day delivered.

Written only after the validator acknowledged what a fetch produced, so a collector killed
in the middle of a batch fetches and delivers it again on restart (at-least-once; the rates
service's keys make the repeat harmless). One JSON file per feed, replaced atomically.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kurs_common.timeutil import DateFormatError, parse_date

log = logging.getLogger(__name__)


@dataclass
class FeedState:
    last_day: str | None = None  # newest business day delivered, YYYY-MM-DD
    validators: dict[str, dict[str, str]] = field(default_factory=dict)  # url -> etag/last_modified

    def to_json(self) -> dict[str, Any]:
        return {"last_day": self.last_day, "validators": self.validators}

    @classmethod
    def from_json(cls, data: Any) -> FeedState:
        if not isinstance(data, dict):
            return cls()
        last_day = data.get("last_day")
        validators = data.get("validators")
        if isinstance(last_day, str):
            try:  # a hand-edited or corrupt day means "start fresh", never a crashed feed
                parse_date(last_day)
            except DateFormatError:
                last_day = None
        else:
            last_day = None
        return cls(
            last_day=last_day,
            validators=validators if isinstance(validators, dict) else {},
        )


class StateStore:
    """Feed states in memory, mirrored to `directory` when one is configured."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._cache: dict[str, FeedState] = {}

    def _path(self, feed_id: str) -> Path | None:
        if self.directory is None:
            return None
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in feed_id)
        return self.directory / f"{safe}.json"

    def get(self, feed_id: str) -> FeedState:
        if feed_id in self._cache:
            return self._cache[feed_id]
        state = FeedState()
        path = self._path(feed_id)
        if path is not None and path.exists():
            try:
                state = FeedState.from_json(json.loads(path.read_text("utf-8")))
            except (OSError, ValueError) as exc:
                log.warning(
                    "unreadable feed state, starting fresh", extra={"feed": feed_id, "error": str(exc)}
                )
        self._cache[feed_id] = state
        return state

    def save(self, feed_id: str, state: FeedState) -> None:
        self._cache[feed_id] = state
        path = self._path(feed_id)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(state.to_json(), handle, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

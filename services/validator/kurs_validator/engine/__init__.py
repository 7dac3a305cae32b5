"""The validation engine (pure, no I/O): one module per section of docs/validation.md.

* `flow` — `ValidationEngine`: one batch through the rules (the orchestrator);
* `exactness` — § Exactness: integer microsecond times, computed figures as text;
* `normalisation` — § Normalisation: subject, comparison value per USD, value per EUR, crosses;
* `kinds` — § The two kinds: reference fixings judged per date, together;
* `blend` — § Consensus: peers, outliers, weights, the published figure, late evidence;
* `history` — § Anomaly classes (inverted, decimal shift, volatility, jumps): the source's own series;
* `anomalies` — § Anomaly classes (stuck, stale, duplicates) and § Pegs; rejection bookkeeping;
* `quality` — § Quality record;
* `state` — § Storage and retention (in memory): the engine's state.

`REJECTIONS_KEPT`, `_remember_rejection` and `_Series` keep their old names for existing callers.
"""

from __future__ import annotations

from kurs_validator.engine.flow import ValidationEngine
from kurs_validator.engine.history import REJECTIONS_KEPT
from kurs_validator.engine.history import remember_rejection as _remember_rejection
from kurs_validator.engine.state import Series as _Series

__all__ = ["REJECTIONS_KEPT", "ValidationEngine", "_Series", "_remember_rejection"]

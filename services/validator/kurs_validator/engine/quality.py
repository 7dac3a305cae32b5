"""Quality record (docs/validation.md § Quality record): the published rate and how it was reached.

`emit` appends the rate to forward (when it is to be published) and its quality record: the
contributors with their weights, the excluded figures with their reasons, the spread, the consensus
figure in the comparison pivot, the newest input's age and the confidence grade.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from kurs_common.observation import REFERENCE
from kurs_common.rate import Rate, rate_kind
from kurs_common.series import BLEND, PIVOT
from kurs_validator.engine.exactness import text
from kurs_validator.engine.state import Contrib, State
from kurs_validator.model import BatchOutcome, Confidence, Contribution, QualityRecord


def contribution(c: Contrib, weight: float, reason: str) -> Contribution:
    return Contribution(c.source, c.per_eur_text, c.comparison_text, c.observed_at, weight, reason)


def emit(
    st: State,
    out: BatchOutcome,
    kind: str,
    subject: str,
    chosen: Contrib,
    candidates: list[Contrib],
    excluded: list[Contribution],
    weights: dict[str, float],
    spread: Decimal,
    backed: bool,
    publish: bool,
    now: dt.datetime,
) -> None:
    """The published rate (when `publish`) and the slot's quality record."""
    pol = st.policy.kinds[kind]
    count = len(candidates)
    if publish:
        # A fixing's consensus goes into the blended reference series; a live consensus tick
        # stays under the live source whose figure it is. Both are quoted per one EUR.
        out.published.append(
            Rate(
                BLEND if kind == REFERENCE else chosen.source,
                rate_kind(kind),
                subject,
                chosen.per_eur_text,
                chosen.day,
                chosen.observed_at,
                (chosen.source,) if count == 1 else tuple(sorted(c.source for c in candidates)),
                chosen.replay,
                PIVOT,
            )
        )
    if count >= 3 and spread <= pol.mad_floor / 2:
        confidence = Confidence.HIGH
    elif count >= 2:
        confidence = Confidence.MEDIUM
    elif backed:
        confidence = Confidence.LOW
    else:
        confidence = Confidence.UNVERIFIED
    if count == 1:
        newest_at = chosen.observed_at
        contributors: tuple[Contribution, ...] = (contribution(chosen, weights.get(chosen.source, 0.0), ""),)
    else:
        newest_at = max(c.observed_at for c in candidates)
        contributors = tuple(
            contribution(c, weights.get(c.source, 0.0), "")
            for c in sorted(candidates, key=lambda c: c.source)
        )
    out.quality.append(
        QualityRecord(
            kind=kind,
            currency=subject,
            day=chosen.day,
            observed_at=chosen.observed_at,
            value=chosen.per_eur_text,
            source=chosen.source,
            contributors=contributors,
            excluded=tuple(sorted(excluded, key=lambda c: c.source)) if excluded else (),
            spread=text(spread) if spread else "0",
            consensus=chosen.comparison_text,
            newest_observed_at=newest_at,
            newest_input_age_seconds=max((now - newest_at).total_seconds(), 0.0),
            confidence=confidence,
            published_at=now,
        )
    )

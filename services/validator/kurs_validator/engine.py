"""The validation engine: normalisation, anomaly rules, consensus and quality records (pure, no I/O).

State (recent crosses per source, each source's own series, the latest figure of every source per
currency, recent reference slots) lives in memory and is rebuilt from the observations themselves;
nothing here touches a network, a file or the clock (`now` is passed in). docs/validation.md
describes every rule and threshold.

Processing of one batch:

1. static rules (codes, dates, value > 0, not future-dated) — `rules.check_static`;
2. the valid observations are ordered by (observation time, source, USD pairs, EUR pairs, rest) so
   that a source's own crosses are known before its other figures of the same time;
3. per observation: normalisation (comparison value in units per USD via the same source's own
   cross; storage value per EUR: the published string itself when the source quotes per EUR), a
   stuck publication, the own-history rules (inverted, decimal shift, jump), the peg band;
4. live ticks are then judged against the other sources' fresh ticks at once; reference fixings
   are judged per (currency, date) against every source's fixing of that date once the batch has
   moved past the date (`_settle`). A jump nobody corroborates is held until the source's next
   figure tells a lasting move from a one-off spike;
5. an accepted figure joins its slot; the weighted median's figure is published with a quality
   record.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Context, Decimal

from kurs_common import money
from kurs_common.observation import LIVE, REFERENCE, Observation
from kurs_validator import consensus
from kurs_validator.consensus import Point
from kurs_validator.model import (
    Anomaly,
    BatchOutcome,
    Confidence,
    Contribution,
    Published,
    QualityRecord,
    Rejection,
    SourceStatus,
)
from kurs_validator.policy import COMPARISON, PIVOT, KindPolicy, Peg, Policy
from kurs_validator.rules import Reject, check_static, classify

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICRO = dt.timedelta(microseconds=1)
_ONE = Decimal(1)
_GROSS = Decimal("0.25")  # with too little history only gross errors (inversions, shifts) are judged
_HISTORY = "~history"  # the pseudo-contributor "last published consensus"
_ZERO = Decimal(0)
_GAP = Decimal(-1)  # the return of the first figure of a series, or of the first after a gap
_CROSS_TIMES = 32  # crosses kept per source
_SLOTS = 8  # reference slots (dates) kept per currency


def _micros(value: dt.datetime) -> int:
    return (value - _EPOCH) // _MICRO


_SIGNIFICANT = Context(prec=money.CROSS_RATE_SIGNIFICANT_DIGITS, rounding=ROUND_HALF_EVEN)


def _text(value: Decimal) -> str:
    """A computed figure: 10 significant digits, half-even, no exponent, no trailing zeros."""
    return money.format_decimal(_SIGNIFICANT.plus(value))


@dataclass(slots=True)
class _Item:
    """One observation after normalisation."""

    index: int
    batch: int
    obs: Observation
    time: int
    day: dt.date
    value: Decimal  # as published
    subject: str  # the currency it speaks about
    sign: int  # comparison = value**sign x factor
    factor: Decimal | None
    comparison: Decimal | None  # units of subject per USD (subject USD: USD per EUR)
    per_eur_text: str
    history_checked: bool = False
    peg_checked: bool = False


@dataclass(slots=True)
class _Held:
    item: _Item
    prev: Decimal
    deviation: Decimal
    threshold: Decimal


@dataclass(slots=True)
class _Series:
    """One source's accepted figures of one pair, in time order."""

    times: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    values: list[Decimal] = field(default_factory=list)
    rets: list[Decimal] = field(default_factory=list)  # |v[i]/v[i-1] - 1|; _GAP after a gap
    rejected: dict[int, tuple[str, str]] = field(default_factory=dict)  # time -> (text, reason)
    pending: _Held | None = None


@dataclass(slots=True)
class _Contrib:
    source: str
    time: int
    observed_at: dt.datetime
    day: dt.date
    comparison: Decimal | None
    per_eur_text: str
    replay: bool
    comparison_text: str = ""


@dataclass(slots=True)
class _Slot:
    contribs: dict[str, _Contrib] = field(default_factory=dict)
    excluded: dict[str, Contribution] = field(default_factory=dict)
    forwarded: tuple[str, str] | None = None


@dataclass(slots=True)
class _Stats:
    last_observed_at: dt.datetime
    last_day: dt.date
    accepted: int = 0
    rejected: int = 0
    stale: bool = False


@dataclass(slots=True)
class _Evaluation:
    points: list[Point]
    contribs: dict[str, _Contrib]
    verdict: consensus.Verdict | None
    stale: list[_Contrib]


class ValidationEngine:
    """Stateful but I/O-free: feed batches with `process`, read source health with `source_states`."""

    def __init__(self, policy: Policy | None = None) -> None:
        self.policy = policy or Policy()
        self._pegs: dict[str, Peg] = {p.currency: p for p in self.policy.pegs}
        self._series: dict[tuple[str, str, str, str], _Series] = {}
        self._crosses: dict[tuple[str, str], OrderedDict[int, dict[str, Decimal]]] = {}
        self._latest: dict[tuple[str, str], dict[str, _Contrib]] = {}
        self._slots: dict[str, OrderedDict[dt.date, _Slot]] = {}
        self._consensus: dict[tuple[str, str], tuple[int, Decimal]] = {}
        self._stats: dict[tuple[str, str], _Stats] = {}
        self._batch = 0
        # Reference slots whose consensus is to be recomputed (fixings that became comparable).
        self._stale_slots: set[tuple[str, dt.date]] = set()

    # -- public ----------------------------------------------------------------------------
    def process(self, observations: Sequence[Observation], now: dt.datetime) -> BatchOutcome:
        self._batch += 1
        out = BatchOutcome()
        valid: list[tuple[int, Observation, dt.date, Decimal, int]] = []
        for index, obs in enumerate(observations):
            try:
                day, value = check_static(obs, now, self.policy.max_clock_skew)
            except Reject as exc:
                out.rejections.append(Rejection(index, exc.reason, exc.detail))
                out.anomalies.append(self._anomaly(obs, "", exc, now))
                continue
            assert obs.observed_at is not None
            valid.append((index, obs, day, value, _micros(obs.observed_at)))
        valid.sort(key=lambda v: (v[4], v[1].source, _cross_rank(v[1])))
        groups: dict[tuple[str, str, int], list[Observation]] = {}
        for _, obs, _, _, time in valid:
            groups.setdefault((obs.source, obs.kind, time), []).append(obs)
        stuck: dict[tuple[str, str, int], bool] = {}
        # Reference fixings are judged per date against every source's fixing of that date at once.
        deferred: dict[tuple[str, dt.date], list[tuple[_Item, _Series, _Held | None]]] = {}
        current: dt.date | None = None
        for index, obs, day, value, time in valid:
            if obs.kind == REFERENCE:
                if day != current and deferred:
                    self._settle_all(out, deferred, now)
                current = day
            self._one(out, index, obs, day, value, time, now, stuck, groups, deferred)
        self._settle_all(out, deferred, now)
        return out

    def _settle_all(
        self,
        out: BatchOutcome,
        deferred: dict[tuple[str, dt.date], list[tuple[_Item, _Series, _Held | None]]],
        now: dt.datetime,
    ) -> None:
        # The pivot cross (USD) first, so that a rejected cross is known before the rest.
        for key in sorted(deferred, key=lambda k: (k[1], k[0] != COMPARISON, k[0])):
            self._settle(out, key, deferred[key], now)
        deferred.clear()
        for subject, day in sorted(self._stale_slots, key=lambda k: (k[1], k[0])):
            self._republish(out, subject, day, now)
        self._stale_slots.clear()

    def check_stale(self, now: dt.datetime) -> list[Anomaly]:
        """Flag sources whose newest figure is older than their expected publication window."""
        found: list[Anomaly] = []
        for (source, kind), stats in list(self._stats.items()):
            window = self.policy.kinds[kind].stale_after
            stale = now - stats.last_observed_at > window
            if stale and not stats.stale:
                found.append(
                    Anomaly(
                        reason="stale_source",
                        detail=f"{source} ({kind}) has not advanced since "
                        f"{stats.last_observed_at.isoformat()}; expected within {window}",
                        source=source,
                        feed="",
                        kind=kind,
                        base="",
                        quote="",
                        value="",
                        currency="",
                        day=stats.last_day.isoformat(),
                        observed_at=stats.last_observed_at,
                        expected="",
                        detected_at=now,
                    )
                )
            stats.stale = stale
        return found

    def source_states(self, now: dt.datetime) -> list[SourceStatus]:
        out = []
        snapshot = list(self._stats.items())
        for (source, kind), stats in sorted(snapshot):
            window = self.policy.kinds[kind].stale_after
            out.append(
                SourceStatus(
                    source=source,
                    kind=kind,
                    last_observed_at=stats.last_observed_at,
                    last_day=stats.last_day,
                    stale=now - stats.last_observed_at > window,
                    window=window,
                    accepted=stats.accepted,
                    rejected=stats.rejected,
                )
            )
        return out

    # -- one observation -------------------------------------------------------------------
    def _one(
        self,
        out: BatchOutcome,
        index: int,
        obs: Observation,
        day: dt.date,
        value: Decimal,
        time: int,
        now: dt.datetime,
        stuck: dict[tuple[str, str, int], bool],
        groups: dict[tuple[str, str, int], list[Observation]],
        deferred: dict[tuple[str, dt.date], list[tuple[_Item, _Series, _Held | None]]],
    ) -> None:
        pol = self.policy.kinds[obs.kind]
        key = (obs.source, obs.kind, obs.base, obs.quote)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series()
        stats = self._stats_for(obs, day)

        # Seen before: the same figure gets the same verdict, a different one is a correction.
        at = bisect.bisect_left(series.times, time)
        if at < len(series.times) and series.times[at] == time:
            if series.texts[at] == obs.value:
                out.accepted += 1
                out.duplicates += 1
                return
            self._remove(series, at, obs.kind)
        if (pending := series.pending) is not None and pending.item.time == time:
            if pending.item.obs.value == obs.value:
                out.accepted += 1
                out.duplicates += 1
                return
            series.pending = None
        earlier = series.rejected.get(time)
        if earlier is not None and earlier[0] == obs.value:
            out.rejections.append(Rejection(index, earlier[1], f"already rejected as {earlier[1]}"))
            stats.rejected += 1
            return

        if series.pending is not None and series.pending.item.time < time:
            self._resolve(out, series, value, now)

        subject = ""
        try:
            item = self._normalise(index, obs, day, value, time, pol)
            subject = item.subject
            group = (obs.source, obs.kind, time)
            if group not in stuck:  # judged when its first figure comes, against the state then
                stuck[group] = self._stuck(groups[group], time)
            if stuck[group]:
                raise Reject("stuck", f"{obs.source} repeats its previous figures at {obs.observed_at}")
            jump = self._check_history(item, series, pol)
            self._check_peg(item, pol)
            if obs.kind == REFERENCE and item.comparison is not None:
                if jump is None:
                    self._add_cross(item)  # tentatively: withdrawn if the cross is rejected
                deferred.setdefault((item.subject, day), []).append((item, series, jump))
                return
            evaluation = self._evaluate(item, pol)
            corroborated = self._judge_self(item, evaluation, pol)
            if jump is not None and not corroborated and self._hold(out, item, series, jump):
                return
        except Reject as exc:
            self._reject(out, obs, index, time, day, subject, series, exc, now)
            return
        self._accept(out, item, series, evaluation, now)

    def _hold(self, out: BatchOutcome, item: _Item, series: _Series, jump: _Held) -> bool:
        """An uncorroborated jump: judged by the next figure (raises on a spike); True when held."""
        pol = self.policy.kinds[item.obs.kind]
        at = bisect.bisect_right(series.times, item.time)
        if at < len(series.times) and series.times[at] - item.time <= pol.history_gap // _MICRO:
            self._spike_or_move(jump, series.values[at])  # the next figure is known already
            return False
        series.pending = jump
        out.accepted += 1
        out.held += 1
        self._stats_for(item.obs, item.day).accepted += 1
        return True

    def _reject(
        self,
        out: BatchOutcome,
        obs: Observation,
        index: int,
        time: int,
        day: dt.date,
        subject: str,
        series: _Series,
        exc: Reject,
        now: dt.datetime,
    ) -> None:
        _remember_rejection(series, time, obs.value, exc.reason)
        out.rejections.append(Rejection(index, exc.reason, exc.detail))
        out.anomalies.append(self._anomaly(obs, subject, exc, now))
        self._stats_for(obs, day).rejected += 1
        if subject and obs.kind == REFERENCE:
            self._slot(subject, day).excluded[obs.source] = Contribution(
                obs.source, obs.value, "", obs.observed_at or now, 0.0, exc.reason
            )

    def _settle(
        self,
        out: BatchOutcome,
        key: tuple[str, dt.date],
        entries: list[tuple[_Item, _Series, _Held | None]],
        now: dt.datetime,
    ) -> None:
        """Judge the new fixings of one currency and date together with those seen before."""
        subject, day = key
        pol = self.policy.kinds[REFERENCE]
        slot = self._slot(subject, day)
        new: dict[str, tuple[_Item, _Series, _Held | None]] = {}
        for entry in entries:
            item = entry[0]
            if not item.per_eur_text:
                usd_per_eur = self._usd_per_eur(item.obs.source, REFERENCE, item.time, pol)
                if usd_per_eur is None or item.comparison is None:
                    self._reject(
                        out, item.obs, item.index, item.time, day, subject, entry[1], _no_cross(item.obs), now
                    )
                    continue
                item.per_eur_text = _text(item.comparison * usd_per_eur)
            if item.factor is not None and item.subject != COMPARISON and not self._cross_holds(item):
                item.comparison = None  # its source's pivot cross was rejected meanwhile
            new[item.obs.source] = entry
        if len(new) == 1 and not slot.excluded and all(s in new for s in slot.contribs):
            # The common case of a single source: its own history and the pegs were its judges.
            ((source, (item, series, jump)),) = new.items()
            if jump is not None and self._hold_or_reject(out, item, series, jump, day, subject, now):
                return
            self._admit(out, item, series, slot=slot)
            self._publish_reference(out, item, now, slot)
            return
        contribs = {s: c for s, c in slot.contribs.items() if s not in new and c.comparison is not None}
        for source, (item, _, _) in new.items():
            if item.comparison is not None:
                contribs[source] = self._contrib(item)
        points = [Point(s, c.comparison, 1.0) for s, c in contribs.items() if c.comparison is not None]
        if len(points) == 2:
            last = self._consensus.get((REFERENCE, subject))
            first = min(c.time for c in contribs.values())
            if last is not None and last[0] < first and first - last[0] <= pol.max_age // _MICRO:
                points.append(Point(_HISTORY, last[1], 0.0))
        verdict = consensus.judge(points, pol.mad_k, pol.mad_floor) if len(points) >= 3 else None
        evaluation = _Evaluation(points, contribs, verdict, [])
        admitted: _Item | None = None
        for source in sorted(new):
            item, series, jump = new[source]
            try:
                corroborated = self._judge_self(item, evaluation, pol)
                if jump is not None and not corroborated and self._hold(out, item, series, jump):
                    continue
            except Reject as exc:
                self._drop_cross(item)
                assert item.obs.observed_at is not None
                self._reject(out, item.obs, item.index, item.time, day, subject, series, exc, now)
                continue
            self._admit(out, item, series, own=contribs.get(source), slot=slot)
            admitted = item
        if verdict is not None:
            for source in list(slot.contribs):
                if source in verdict.outliers:  # late evidence against a fixing published earlier
                    late = slot.contribs.pop(source)
                    slot.excluded[source] = self._contribution(late, 0.0, "outlier")
                    out.anomalies.append(
                        Anomaly(
                            reason="outlier",
                            detail=f"{late.per_eur_text} per {PIVOT}, published before, is "
                            f"{_pct(verdict.deviations[source])} from the consensus of {len(points)} fixings "
                            f"of {day} that arrived later (tolerance {_pct(verdict.tolerance)})",
                            source=source,
                            feed="",
                            kind=REFERENCE,
                            base=PIVOT,
                            quote=subject,
                            value=late.per_eur_text,
                            currency=subject,
                            day=day.isoformat(),
                            observed_at=late.observed_at,
                            expected="",
                            detected_at=now,
                        )
                    )
        if admitted is not None:
            self._publish_reference(out, admitted, now, slot)

    def _hold_or_reject(
        self,
        out: BatchOutcome,
        item: _Item,
        series: _Series,
        jump: _Held,
        day: dt.date,
        subject: str,
        now: dt.datetime,
    ) -> bool:
        """An uncorroborated jump: True when held or rejected, False when it is to be accepted."""
        try:
            return self._hold(out, item, series, jump)
        except Reject as exc:
            self._drop_cross(item)
            self._reject(out, item.obs, item.index, item.time, day, subject, series, exc, now)
            return True

    def _cross_holds(self, item: _Item) -> bool:
        """The pivot cross an item was normalised with is still in its source's table."""
        table = self._cross_table(item.obs.source, item.obs.kind, item.time, self.policy.kinds[item.obs.kind])
        other = item.obs.base if item.subject == item.obs.quote else item.obs.quote
        if item.obs.kind == LIVE and other == PIVOT and (table is None or PIVOT not in table):
            return True  # a tick compared through the consensus EUR/USD, not a cross of its source
        return other == COMPARISON or (table is not None and other in table)

    # -- normalisation ---------------------------------------------------------------------
    def _normalise(
        self, index: int, obs: Observation, day: dt.date, value: Decimal, time: int, pol: KindPolicy
    ) -> _Item:
        base, quote = obs.base, obs.quote
        factor: Decimal | None
        if {base, quote} == {PIVOT, COMPARISON}:
            # The pivot cross itself is compared as USD per EUR.
            subject, other = COMPARISON, PIVOT
            sign, factor = (1 if base == PIVOT else -1), _ONE
        else:
            if base == PIVOT or (base == COMPARISON and quote != PIVOT):
                subject, other = quote, base
            elif quote in (PIVOT, COMPARISON):
                subject, other = base, quote
            else:
                subject, other = quote, base
                known = self._cross_table(obs.source, obs.kind, time, pol)
                if known is not None and quote in known and base not in known:
                    # Quoted in the source's home currency (BoC AUD/CAD, CNB USD/CZK, NBP THB/PLN, ...):
                    # the base is what is priced, through the source's own cross for its home currency.
                    subject, other = base, quote
            sign = 1 if quote == subject else -1
            if other == COMPARISON:
                factor = _ONE
            else:
                table = self._cross_table(obs.source, obs.kind, time, pol)
                factor = table.get(other) if table is not None else None
                if factor is None and other == PIVOT and obs.kind == LIVE:
                    # A market with no USD pair of its own (Binance quotes in USDT): its EUR tick is
                    # compared through the live consensus EUR/USD of the other sources, when fresh.
                    # (Fixings wait for their own source's cross instead: see _settle.)
                    usd_per_eur = self._consensus_usd_per_eur(obs.kind, time, pol)
                    factor = _ONE / usd_per_eur if usd_per_eur is not None else None
        comparison = None
        if factor is not None:
            comparison = value * factor if sign == 1 else factor / value
        if base == PIVOT:
            per_eur_text = obs.value  # the publisher's own string, untouched
        elif quote == PIVOT:
            per_eur_text = money.invert(obs.value)
        else:
            usd_per_eur = self._usd_per_eur(obs.source, obs.kind, time, pol)
            if comparison is not None and usd_per_eur is not None:
                per_eur_text = _text(comparison * usd_per_eur)
            elif comparison is not None and obs.kind == REFERENCE:
                per_eur_text = ""  # the source's EUR cross may come later the same day (see _settle)
            else:
                raise _no_cross(obs)
        return _Item(
            index, self._batch, obs, time, day, value, subject, sign, factor, comparison, per_eur_text
        )

    def _cross_table(self, source: str, kind: str, time: int, pol: KindPolicy) -> dict[str, Decimal] | None:
        tables = self._crosses.get((source, kind))
        if not tables:
            return None
        exact = tables.get(time)
        if exact is not None:
            return exact
        tolerance = pol.cross_tolerance // _MICRO
        best: dict[str, Decimal] | None = None
        best_gap = tolerance + 1
        for at, table in tables.items():
            gap = abs(at - time)
            if gap < best_gap:
                best, best_gap = table, gap
        return best

    def _add_cross(self, item: _Item) -> None:
        if item.comparison is None:
            if PIVOT in (item.obs.base, item.obs.quote):
                # e.g. a GBP-based source: EUR per USD = (GBP per USD) / (GBP per EUR).
                tables = self._crosses.get((item.obs.source, item.obs.kind))
                table = tables.get(item.time) if tables else None
                if table is not None and item.subject in table and PIVOT not in table:
                    table[PIVOT] = table[item.subject] / Decimal(item.per_eur_text)
            return
        tables = self._crosses.setdefault((item.obs.source, item.obs.kind), OrderedDict())
        table = tables.get(item.time)
        if table is None:
            table = tables[item.time] = {}
            if len(tables) > _CROSS_TIMES:
                oldest = min(tables)
                del tables[oldest]
        if item.subject == COMPARISON:
            table[PIVOT] = _ONE / item.comparison  # EUR per USD
        else:
            # First writer wins: figures are taken in order of directness (EUR/USD, USD pairs, EUR
            # pairs, others), so a cross derived through a third asset (USDT from BTC/USDT and
            # BTC/EUR) never replaces one the source quoted directly (EUR/USDT) at the same instant.
            table.setdefault(item.subject, item.comparison)

    def _consensus_usd_per_eur(self, kind: str, time: int, pol: KindPolicy) -> Decimal | None:
        last = self._consensus.get((kind, COMPARISON))
        if last is not None and abs(time - last[0]) <= pol.max_age // _MICRO:
            return last[1]
        return None

    def _usd_per_eur(self, source: str, kind: str, time: int, pol: KindPolicy) -> Decimal | None:
        table = self._cross_table(source, kind, time, pol)
        if table is not None and PIVOT in table:
            return _ONE / table[PIVOT]
        return self._consensus_usd_per_eur(kind, time, pol)

    # -- rules -----------------------------------------------------------------------------
    def _stuck(self, publication: Iterable[Observation], time: int) -> bool:
        """A publication that repeats the source's previous figures where those used to move."""
        total = same = 0
        for obs in publication:
            series = self._series.get((obs.source, obs.kind, obs.base, obs.quote))
            if series is None or not series.times or obs.quote in self._pegs or obs.base in self._pegs:
                continue
            at = bisect.bisect_left(series.times, time)
            if at == 0 or (at < len(series.times) and series.times[at] == time):
                continue  # no earlier figure, or seen before (duplicates are not judged again)
            last_ret = series.rets[at - 1]
            if last_ret <= 0:
                continue  # the series was not moving (a peg, or a constant figure): not comparable
            total += 1
            same += series.texts[at - 1] == obs.value
        return total >= self.policy.stuck_min_pairs and same >= self.policy.stuck_share * total

    def _check_history(self, item: _Item, series: _Series, pol: KindPolicy) -> _Held | None:
        """Raise on an inverted or shifted figure; return a jump to confirm, or None."""
        at = bisect.bisect_left(series.times, item.time)
        if at == 0 or item.time - series.times[at - 1] > pol.history_gap // _MICRO:
            return None
        prev = series.values[at - 1]
        window = series.rets[max(0, at - pol.history_window) : at]
        if _GAP in window:  # the series restarted after a gap: only the returns since count
            cut = len(window)
            while window[cut - 1] != _GAP:
                cut -= 1
            window = window[cut:]
        recent = window
        if len(recent) >= pol.min_history:
            vol = consensus.MAD_SCALE * consensus.median(recent)
            threshold = max(pol.jump_k * vol, pol.jump_floor)
            item.history_checked = True
        else:
            threshold = _GROSS
        found = classify(
            item.value, prev, threshold, self.policy.inversion_tolerance, self.policy.shift_tolerance
        )
        if found is None:
            return None
        if found != "jump":
            raise Reject(
                found,
                f"{item.obs.value} against {series.texts[at - 1]} the figure before ({_describe(found)})",
                series.texts[at - 1],
            )
        if not item.history_checked:
            return None
        return _Held(item, prev, abs(item.value / prev - _ONE), threshold)

    def _spike_or_move(self, jump: _Held, following: Decimal) -> None:
        """Raise when the figure after a jump comes back: the jump was a one-off spike."""
        if abs(following / jump.item.value - _ONE) <= jump.threshold:
            return  # the new level held: a real move
        if (
            abs(following / jump.prev - _ONE)
            <= self.policy.kinds[jump.item.obs.kind].revert_fraction * jump.deviation
        ):
            raise Reject(
                "jump",
                f"{jump.item.obs.value} jumped {_pct(jump.deviation)} from {money.format_decimal(jump.prev)} "
                f"(allowed {_pct(jump.threshold)}) and the next figure {money.format_decimal(following)} "
                "came back: a one-day spike",
                money.format_decimal(jump.prev),
            )

    def _resolve(self, out: BatchOutcome, series: _Series, following: Decimal, now: dt.datetime) -> None:
        held = series.pending
        assert held is not None
        series.pending = None
        same_batch = held.item.batch == self._batch
        if same_batch:
            out.held -= 1
        item = held.item
        try:
            self._spike_or_move(held, following)
        except Reject as exc:
            _remember_rejection(series, item.time, item.obs.value, exc.reason)
            stats = self._stats_for(item.obs, item.day)
            stats.accepted -= 1
            stats.rejected += 1
            if same_batch:
                out.accepted -= 1
                out.rejections.append(Rejection(item.index, exc.reason, exc.detail))
            out.anomalies.append(self._anomaly(item.obs, item.subject, exc, now))
            self._drop_cross(item)
            return
        pol = self.policy.kinds[item.obs.kind]
        self._accept(out, item, series, self._evaluate(item, pol), now, count=False)

    def _drop_cross(self, item: _Item) -> None:
        tables = self._crosses.get((item.obs.source, item.obs.kind))
        table = tables.get(item.time) if tables else None
        if table is not None:
            table.pop(PIVOT if item.subject == COMPARISON else item.subject, None)

    def _check_peg(self, item: _Item, pol: KindPolicy) -> None:
        peg = self._pegs.get(item.subject)
        if peg is None or item.day < peg.since:
            return
        if peg.anchor == PIVOT:
            level: Decimal | None = Decimal(item.per_eur_text) if item.per_eur_text else None
        else:
            level = item.comparison
        if level is None:
            return
        item.peg_checked = True
        low = peg.low * (_ONE - pol.peg_slack)
        high = peg.high * (_ONE + pol.peg_slack)
        if not low <= level <= high:
            raise Reject(
                "peg_break",
                f"{item.subject} at {_text(level)} per {peg.anchor}, outside {peg.note} "
                f"(band {money.format_decimal(peg.low)}-{money.format_decimal(peg.high)}, "
                f"slack {_pct(pol.peg_slack)})",
                money.format_decimal((peg.low + peg.high) / 2),
            )

    def _evaluate(self, item: _Item, pol: KindPolicy) -> _Evaluation:
        """The contributions a figure is judged with (itself first), and the verdict."""
        own = self._contrib(item)
        contribs = {own.source: own}
        stale: list[_Contrib] = []
        if item.comparison is None:
            return _Evaluation([], contribs, None, stale)
        others = self._latest.get((item.obs.kind, item.subject))
        if item.obs.kind == REFERENCE or not others or (len(others) == 1 and own.source in others):
            return _Evaluation([], contribs, None, stale)  # nobody else to compare with (fixings: _settle)
        max_age = pol.max_age // _MICRO
        for source, c in self._latest.get((item.obs.kind, item.subject), {}).items():
            if source in contribs or c.comparison is None or c.time > item.time:
                continue
            if item.time - c.time > max_age:
                stale.append(c)
            else:
                contribs[source] = c
        newest = max(c.time for c in contribs.values())
        points = [
            Point(c.source, c.comparison, self._weight(c, newest, pol))
            for c in contribs.values()
            if c.comparison is not None
        ]
        if len(points) == 2:
            last = self._consensus.get((item.obs.kind, item.subject))
            if last is not None and last[0] < item.time and item.time - last[0] <= max_age:
                points.append(Point(_HISTORY, last[1], 0.0))
        # With two figures the MAD cannot tell which is wrong: a third opinion (history) is needed.
        verdict = consensus.judge(points, pol.mad_k, pol.mad_floor) if len(points) >= 3 else None
        return _Evaluation(points, contribs, verdict, stale)

    def _judge_self(self, item: _Item, evaluation: _Evaluation, pol: KindPolicy) -> bool:
        """Raise when the figure is an outlier; True when another source corroborates it."""
        verdict = evaluation.verdict
        if item.comparison is None:
            return False
        if verdict is None:
            return any(
                p.key not in (item.obs.source, _HISTORY)
                and consensus.relative_deviation(item.comparison, p.value) <= pol.mad_floor
                for p in evaluation.points
            )
        source = item.obs.source
        if source in verdict.outliers:
            centre = verdict.centre
            assert item.factor is not None
            expected = centre / item.factor if item.sign == 1 else item.factor / centre
            found = classify(
                item.value,
                expected,
                verdict.tolerance,
                self.policy.inversion_tolerance,
                self.policy.shift_tolerance,
            )
            reason = found if found in ("inverted", "decimal_shift") else "outlier"
            raise Reject(
                reason,
                f"{item.obs.value} is {_pct(verdict.deviations[source])} from the consensus of "
                f"{len(evaluation.points)} ({_describe(reason)}; tolerance {_pct(verdict.tolerance)})",
                _text(expected),
            )
        return any(
            p.key not in (source, _HISTORY)
            and p.key not in verdict.outliers
            and consensus.relative_deviation(item.comparison, p.value) <= verdict.tolerance
            for p in evaluation.points
        )

    # -- acceptance and publication -------------------------------------------------------
    def _admit(
        self,
        out: BatchOutcome,
        item: _Item,
        series: _Series,
        count: bool = True,
        own: _Contrib | None = None,
        slot: _Slot | None = None,
    ) -> _Contrib:
        """Record an accepted figure in the state (series, crosses, latest figures, date slot)."""
        self._insert(series, item)
        self._add_cross(item)
        if item.comparison is None and item.subject != COMPARISON and item.per_eur_text:
            # Its source's pivot cross may have come since (held figures, later batches).
            pol = self.policy.kinds[item.obs.kind]
            table = self._cross_table(item.obs.source, item.obs.kind, item.time, pol)
            if table is not None and PIVOT in table:
                item.comparison = Decimal(item.per_eur_text) * table[PIVOT]
        if own is None or own.comparison != item.comparison:
            own = self._contrib(item)
        latest = self._latest.setdefault((item.obs.kind, item.subject), {})
        current = latest.get(own.source)
        if current is None or current.time <= own.time:
            latest[own.source] = own
        if item.obs.kind == REFERENCE:
            if slot is None:
                slot = self._slot(item.subject, item.day)
            slot.contribs[own.source] = own
            slot.excluded.pop(own.source, None)
            if item.subject == COMPARISON and item.comparison is not None:
                self._repair(own.source, item.day, item.time, _ONE / item.comparison)
        if count:  # a held figure was counted when it was held
            out.accepted += 1
            self._stats_for(item.obs, item.day).accepted += 1
        return own

    def _repair(self, source: str, day: dt.date, time: int, eur_per_usd: Decimal) -> None:
        """Give the same-date fixings of `source` that arrived before its pivot cross a comparison value."""
        for subject, slots in self._slots.items():
            slot = slots.get(day)
            c = slot.contribs.get(source) if slot is not None else None
            if c is not None and c.comparison is None and c.time == time:
                c.comparison = Decimal(c.per_eur_text) * eur_per_usd
                c.comparison_text = _text(c.comparison)
                if slot is not None and len(slot.contribs) > 1:
                    self._stale_slots.add((subject, day))

    def _accept(
        self,
        out: BatchOutcome,
        item: _Item,
        series: _Series,
        evaluation: _Evaluation,
        now: dt.datetime,
        count: bool = True,
    ) -> None:
        own = self._admit(out, item, series, count)
        if item.obs.kind == REFERENCE:
            self._publish_reference(out, item, now)
            return
        pol = self.policy.kinds[LIVE]
        verdict = evaluation.verdict
        outliers = verdict.outliers if verdict is not None else frozenset()
        excluded = [self._contribution(c, 0.0, "stale") for c in evaluation.stale]
        excluded.extend(
            self._contribution(c, 0.0, "outlier") for s, c in evaluation.contribs.items() if s in outliers
        )
        candidates = [
            own,
            *(c for s, c in evaluation.contribs.items() if s != own.source and s not in outliers),
        ]
        if len(candidates) == 1:
            chosen = own
            weights = {own.source: self.policy.weight_of(own.source)}
        else:
            newest = max(c.time for c in candidates)
            weights = {c.source: self._weight(c, newest, pol) for c in candidates}
            chosen = self._median_of(candidates, weights, own)
        if chosen.comparison is not None:
            self._consensus[(LIVE, item.subject)] = (chosen.time, chosen.comparison)
        if chosen is not own:
            return  # the consensus tick is another source's, already published when it arrived
        spread = verdict.spread if verdict is not None else _ZERO
        self._emit(out, LIVE, item.subject, chosen, candidates, excluded, weights, spread, False, True, now)

    def _publish_reference(
        self, out: BatchOutcome, item: _Item, now: dt.datetime, slot: _Slot | None = None
    ) -> None:
        """Publish the consensus of a currency's fixings of one date (the weighted median's figure)."""
        pol = self.policy.kinds[REFERENCE]
        if slot is None:
            slot = self._slot(item.subject, item.day)
        own = slot.contribs[item.obs.source]
        candidates = list(slot.contribs.values())
        spread = _ZERO
        if len(candidates) == 1:
            chosen = own
            weights = {own.source: self.policy.weight_of(own.source)}
        else:
            newest = max(c.time for c in candidates)
            weights = {c.source: self._weight(c, newest, pol) for c in candidates}
            chosen = self._median_of(candidates, weights, own)
            points = [Point(c.source, c.comparison, 1.0) for c in candidates if c.comparison is not None]
            if len(points) >= 2:
                spread = consensus.judge(points, pol.mad_k, pol.mad_floor).spread
        if chosen.comparison is not None:
            self._consensus[(REFERENCE, item.subject)] = (chosen.time, chosen.comparison)
        forwarded = (chosen.source, chosen.per_eur_text)
        publish = chosen is own or slot.forwarded != forwarded
        slot.forwarded = forwarded
        witnesses = False
        if len(candidates) == 1 and not (item.history_checked or item.peg_checked):
            max_age = pol.max_age // _MICRO
            witnesses = any(
                s != own.source and 0 <= own.time - c.time <= max_age
                for s, c in self._latest.get((REFERENCE, item.subject), {}).items()
            )
        excluded = list(slot.excluded.values())
        backed = item.history_checked or item.peg_checked or witnesses
        self._emit(
            out, REFERENCE, item.subject, chosen, candidates, excluded, weights, spread, backed, publish, now
        )

    def _median_of(self, candidates: list[_Contrib], weights: dict[str, float], own: _Contrib) -> _Contrib:
        points = [Point(c.source, c.comparison, weights[c.source]) for c in candidates if c.comparison]
        if not points:  # nothing comparable (no pivot crosses): the highest weight stands
            return max(candidates, key=lambda c: (weights[c.source], c.source))
        key = consensus.weighted_median(points).key
        return next(c for c in candidates if c.source == key)

    def _emit(
        self,
        out: BatchOutcome,
        kind: str,
        subject: str,
        chosen: _Contrib,
        candidates: list[_Contrib],
        excluded: list[Contribution],
        weights: dict[str, float],
        spread: Decimal,
        backed: bool,
        publish: bool,
        now: dt.datetime,
    ) -> None:
        pol = self.policy.kinds[kind]
        count = len(candidates)
        if publish:
            out.published.append(
                Published(
                    source=chosen.source,
                    kind=kind,
                    currency=subject,
                    value=chosen.per_eur_text,
                    day=chosen.day,
                    observed_at=chosen.observed_at,
                    sources=(chosen.source,) if count == 1 else tuple(sorted(c.source for c in candidates)),
                    replay=chosen.replay,
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
            contributors: tuple[Contribution, ...] = (
                self._contribution(chosen, weights.get(chosen.source, 0.0), ""),
            )
        else:
            newest_at = max(c.observed_at for c in candidates)
            contributors = tuple(
                self._contribution(c, weights.get(c.source, 0.0), "")
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
                spread=_text(spread) if spread else "0",
                consensus=chosen.comparison_text,
                newest_observed_at=newest_at,
                newest_input_age_seconds=max((now - newest_at).total_seconds(), 0.0),
                confidence=confidence,
                published_at=now,
            )
        )

    def _republish(self, out: BatchOutcome, subject: str, day: dt.date, now: dt.datetime) -> None:
        """A date's consensus again, after some of its fixings became comparable (a late cross)."""
        slots = self._slots.get(subject)
        slot = slots.get(day) if slots is not None else None
        if slot is None or len(slot.contribs) < 2:
            return
        pol = self.policy.kinds[REFERENCE]
        candidates = list(slot.contribs.values())
        newest = max(c.time for c in candidates)
        weights = {c.source: self._weight(c, newest, pol) for c in candidates}
        chosen = self._median_of(candidates, weights, candidates[0])
        forwarded = (chosen.source, chosen.per_eur_text)
        if forwarded == slot.forwarded:
            return
        slot.forwarded = forwarded
        points = [Point(c.source, c.comparison, 1.0) for c in candidates if c.comparison is not None]
        spread = consensus.judge(points, pol.mad_k, pol.mad_floor).spread if len(points) >= 2 else _ZERO
        excluded = list(slot.excluded.values())
        self._emit(out, REFERENCE, subject, chosen, candidates, excluded, weights, spread, True, True, now)

    # -- helpers ---------------------------------------------------------------------------
    def _stats_for(self, obs: Observation, day: dt.date) -> _Stats:
        assert obs.observed_at is not None
        key = (obs.source, obs.kind)
        stats = self._stats.get(key)
        if stats is None:
            stats = self._stats[key] = _Stats(obs.observed_at, day)
        elif obs.observed_at > stats.last_observed_at:
            stats.last_observed_at = obs.observed_at
            stats.last_day = day
        return stats

    def _slot(self, subject: str, day: dt.date) -> _Slot:
        slots = self._slots.setdefault(subject, OrderedDict())
        slot = slots.get(day)
        if slot is None:
            slot = slots[day] = _Slot()
            if len(slots) > _SLOTS:
                slots.popitem(last=False)
                slot = slots.get(day, slot)
        return slot

    def _contrib(self, item: _Item) -> _Contrib:
        assert item.obs.observed_at is not None
        return _Contrib(
            item.obs.source,
            item.time,
            item.obs.observed_at,
            item.day,
            item.comparison,
            item.per_eur_text,
            item.obs.replay,
            _text(item.comparison) if item.comparison is not None else "",
        )

    def _weight(self, c: _Contrib, newest: int, pol: KindPolicy) -> float:
        age = (newest - c.time) / (pol.half_life // _MICRO)
        decay: float = 0.5 ** max(age, 0.0)
        return self.policy.weight_of(c.source) * decay

    @staticmethod
    def _contribution(c: _Contrib, weight: float, reason: str) -> Contribution:
        return Contribution(c.source, c.per_eur_text, c.comparison_text, c.observed_at, weight, reason)

    def _insert(self, series: _Series, item: _Item) -> None:
        at = bisect.bisect_left(series.times, item.time)
        series.times.insert(at, item.time)
        series.texts.insert(at, item.obs.value)
        series.values.insert(at, item.value)
        series.rets.insert(at, _GAP)
        series.rejected.pop(item.time, None)
        gap = self.policy.kinds[item.obs.kind].history_gap // _MICRO
        _fix_ret(series, at, gap)
        _fix_ret(series, at + 1, gap)
        limit = self.policy.kinds[item.obs.kind].max_series
        if limit and len(series.times) > limit:
            cut = len(series.times) - limit
            del series.times[:cut], series.texts[:cut], series.values[:cut], series.rets[:cut]
            series.rets[0] = _GAP

    def _remove(self, series: _Series, at: int, kind: str) -> None:
        del series.times[at], series.texts[at], series.values[at], series.rets[at]
        _fix_ret(series, at, self.policy.kinds[kind].history_gap // _MICRO)

    @staticmethod
    def _anomaly(obs: Observation, subject: str, exc: Reject, now: dt.datetime) -> Anomaly:
        return Anomaly(
            reason=exc.reason,
            detail=exc.detail,
            source=obs.source,
            feed=obs.feed,
            kind=obs.kind,
            base=obs.base,
            quote=obs.quote,
            value=obs.value,
            currency=subject or (obs.quote if obs.base == PIVOT else obs.base),
            day=obs.day,
            observed_at=obs.observed_at,
            expected=exc.expected,
            detected_at=now,
        )


def _no_cross(obs: Observation) -> Reject:
    return Reject(
        "no_pivot_cross",
        f"no {PIVOT} or {COMPARISON} cross from {obs.source} near {obs.observed_at} "
        f"to express {obs.base}/{obs.quote} per {PIVOT}",
    )


REJECTIONS_KEPT = 4096  # per series: enough to recognise a resubmitted batch as a duplicate


def _remember_rejection(series: _Series, time: int, value: str, reason: str) -> None:
    """Keep the newest rejections only: a source rejected forever must not grow the state forever."""
    series.rejected[time] = (value, reason)
    if len(series.rejected) > REJECTIONS_KEPT:
        del series.rejected[next(iter(series.rejected))]


def _cross_rank(obs: Observation) -> int:
    """EUR/USD first, then USD pairs, then EUR pairs: a source's own crosses before the figures
    that need them (a BTC/USD tick is expressed per EUR through the same poll's EUR/USD)."""
    pair = (obs.base, obs.quote)
    if COMPARISON in pair and PIVOT in pair:
        return 0
    return 1 if COMPARISON in pair else 2 if PIVOT in pair else 3


def _fix_ret(series: _Series, at: int, gap: int) -> None:
    if at >= len(series.times):
        return
    if at == 0 or series.times[at] - series.times[at - 1] > gap:
        series.rets[at] = _GAP
    else:
        series.rets[at] = abs(series.values[at] / series.values[at - 1] - _ONE)


def _pct(value: Decimal) -> str:
    return f"{money.format_decimal((value * 100).quantize(Decimal('0.01')))}%"


def _describe(reason: str) -> str:
    return {
        "inverted": "looks like 1/expected: an inverted quote",
        "decimal_shift": "off by a power of ten: a decimal shift",
        "jump": "a jump beyond the recent volatility",
        "outlier": "an outlier against the other sources",
    }.get(reason, reason)

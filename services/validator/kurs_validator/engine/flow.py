"""The validation engine's flow: one batch of observations through the rules (pure, no I/O).

docs/validation.md describes every rule and threshold; each of its sections is implemented by one
module of this package (named in the document). Nothing here touches a network, a file or the
clock (`now` is passed in). Processing of one batch:

1. static rules (codes, dates, value > 0, not future-dated) — `rules.check_static`;
2. the valid observations are ordered by (observation time, source, USD pairs, EUR pairs, rest) so
   that a source's own crosses are known before its other figures of the same time;
3. per observation: duplicates and corrections (`anomalies.seen_before`), normalisation
   (`normalisation.normalise`), a stuck publication (`anomalies.stuck`), the own-history rules
   (`history.check_history`: inverted, decimal shift, jump), the peg band (`anomalies.check_peg`);
4. live ticks are then judged against the other sources' fresh ticks at once (`blend`); reference
   fixings are judged per (currency, date) against every source's fixing of that date once the
   batch has moved past the date (`kinds.settle_all`). A jump nobody corroborates is held until
   the source's next figure tells a lasting move from a one-off spike;
5. an accepted figure joins its slot; the consensus figure is published with a quality record
   (`blend`, `quality`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from kurs_common.observation import REFERENCE, Observation
from kurs_validator.engine import anomalies, blend, history, kinds, normalisation
from kurs_validator.engine.exactness import micros
from kurs_validator.engine.state import Series, State, new_state, stats_for
from kurs_validator.model import Anomaly, BatchOutcome, Rejection, SourceStatus
from kurs_validator.policy import Policy
from kurs_validator.rules import Reject, check_static

# A source's figures of one observation time (one publication, judged together for "stuck").
_Groups = dict[tuple[str, str, int], list[Observation]]


class ValidationEngine:
    """Stateful but I/O-free: feed batches with `process`, read source health with `source_states`."""

    def __init__(self, policy: Policy | None = None) -> None:
        self.policy = policy or Policy()
        self._state: State = new_state(self.policy)

    # -- public ----------------------------------------------------------------------------
    def process(self, observations: Sequence[Observation], now: dt.datetime) -> BatchOutcome:
        st = self._state
        st.batch += 1
        out = BatchOutcome()
        valid: list[tuple[int, Observation, dt.date, Decimal, int]] = []
        for index, obs in enumerate(observations):
            try:
                day, value = check_static(obs, now, self.policy.max_clock_skew)
            except Reject as exc:
                out.rejections.append(Rejection(index, exc.reason, exc.detail, exc.field))
                out.anomalies.append(anomalies.anomaly(obs, "", exc, now))
                continue
            assert obs.observed_at is not None
            valid.append((index, obs, day, value, micros(obs.observed_at)))
        cross_rank = normalisation.cross_rank
        valid.sort(key=lambda v: (v[4], v[1].source, cross_rank(v[1])))
        groups: _Groups = {}
        for _, obs, _, _, time in valid:
            groups.setdefault((obs.source, obs.kind, time), []).append(obs)
        stuck: dict[tuple[str, str, int], bool] = {}
        # Reference fixings are judged per date against every source's fixing of that date at once.
        deferred: kinds.Deferred = {}
        current: dt.date | None = None
        for index, obs, day, value, time in valid:
            if obs.kind == REFERENCE:
                if day != current and deferred:
                    kinds.settle_all(st, out, deferred, now)
                current = day
            self._one(out, index, obs, day, value, time, now, stuck, groups, deferred)
        kinds.settle_all(st, out, deferred, now)
        return out

    def check_stale(self, now: dt.datetime) -> list[Anomaly]:
        """Flag sources whose newest figure is older than their expected publication window."""
        return anomalies.check_stale(self._state, now)

    def source_states(self, now: dt.datetime) -> list[SourceStatus]:
        return anomalies.source_states(self._state, now)

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
        groups: _Groups,
        deferred: kinds.Deferred,
    ) -> None:
        st = self._state
        pol = self.policy.kinds[obs.kind]
        key = (obs.source, obs.kind, obs.base, obs.quote)
        series = st.series.get(key)
        if series is None:
            series = st.series[key] = Series()
        stats = stats_for(st, obs, day)
        if anomalies.seen_before(st, out, index, obs, time, series, stats):
            return
        if series.pending is not None and series.pending.item.time < time:
            self._resolve(out, series, value, now)

        subject = ""
        try:
            item = normalisation.normalise(st, index, obs, day, value, time, pol)
            subject = item.subject
            group = (obs.source, obs.kind, time)
            if group not in stuck:  # judged when its first figure comes, against the state then
                stuck[group] = anomalies.stuck(st, groups[group], time)
            if stuck[group]:
                raise Reject("stuck", f"{obs.source} repeats its previous figures at {obs.observed_at}")
            jump = history.check_history(st, item, series, pol)
            anomalies.check_peg(st, item, pol)
            if obs.kind == REFERENCE and item.comparison is not None:
                if jump is None:
                    normalisation.add_cross(st, item)  # tentatively: withdrawn if the cross is rejected
                deferred.setdefault((item.subject, day), []).append((item, series, jump))
                return
            evaluation = blend.evaluate(st, item, pol)
            corroborated = blend.judge_self(st, item, evaluation, pol)
            if jump is not None and not corroborated and history.hold(st, out, item, series, jump):
                return
        except Reject as exc:
            anomalies.reject(st, out, obs, index, time, day, subject, series, exc, now)
            return
        blend.accept(st, out, item, series, evaluation, now)

    def _resolve(self, out: BatchOutcome, series: Series, following: Decimal, now: dt.datetime) -> None:
        """The figure after a held jump arrived: the jump is published late, or rejected as a spike."""
        st = self._state
        held = series.pending
        assert held is not None
        series.pending = None
        same_batch = held.item.batch == st.batch
        if same_batch:
            out.held -= 1
        item = held.item
        try:
            history.spike_or_move(st, held, following)
        except Reject as exc:
            history.remember_rejection(series, item.time, item.obs.value, exc.reason)
            stats = stats_for(st, item.obs, item.day)
            stats.accepted -= 1
            stats.rejected += 1
            if same_batch:
                out.accepted -= 1
                out.rejections.append(Rejection(item.index, exc.reason, exc.detail, exc.field))
            out.anomalies.append(anomalies.anomaly(item.obs, item.subject, exc, now))
            normalisation.drop_cross(st, item)
            return
        pol = self.policy.kinds[item.obs.kind]
        blend.accept(st, out, item, series, blend.evaluate(st, item, pol), now, count=False)

"""Fan-out of newly stored anomalies to WatchAnomalies subscribers.

A subscriber whose queue overflows re-reads the store from its cursor (see the servicer).
"""

from __future__ import annotations

from collections.abc import Iterable

from kurs_common.fanout import Fanout
from kurs_validator.model import Anomaly

QUEUE_SIZE = 1_000


class AnomalyHub(Fanout[Anomaly]):
    def __init__(self) -> None:
        super().__init__(QUEUE_SIZE)

    def publish_all(self, anomalies: Iterable[Anomaly]) -> None:
        for anomaly in anomalies:
            self.publish(anomaly)

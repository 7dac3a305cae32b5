"""The `/rates/timeseries` body from the rates service's prebuilt JSON days (GetTimeSeriesJsonResponse).

The rates service renders each day of a series once (kurs_rates.series_cache) and sends the
days as one JSON object; the gateway wraps it in the envelope without decoding it. The bytes
are exactly `orjson.dumps(views.timeseries_body(<the GetTimeSeries reply>))`:
tests/integration/rates/test_series_json.py pins that.
"""

from __future__ import annotations

import orjson

from kurs.rates.v1 import rates_pb2


def timeseries_bytes(reply: rates_pb2.GetTimeSeriesJsonResponse) -> bytes:
    return b"".join(
        (
            b'{"base":',
            orjson.dumps(reply.base),
            b',"start_date":',
            orjson.dumps(reply.start_date),
            b',"end_date":',
            orjson.dumps(reply.end_date),
            b',"rates":',
            reply.rates_json or b"{}",
            b',"sources":',
            orjson.dumps(list(reply.sources)),
            b"}",
        )
    )

"""The identities every service agrees on: the storage pivot and the blended reference series.

* `PIVOT` (EUR) is the currency the blended series is quoted against (the ECB's base, so the
  ECB's figures pass through it untouched).
* `BLEND` is the source id of the blended reference series: one figure per currency and
  business date, chosen by the validator's consensus among every reference publisher
  (docs/validation.md), its contributors carried as the figure's `sources`. Every other source
  id is a publisher whose figures are stored exactly as published, in its own base.
* `CARRY_DAYS`: a currency missing from the newest business date (its publishers' holiday, or a
  weekly table such as NBP's table B) is still answered with its newest figure of the last
  `CARRY_DAYS` days, with that figure's own date shown.
"""

from __future__ import annotations

PIVOT = "EUR"
BLEND = "blend"
CARRY_DAYS = 7

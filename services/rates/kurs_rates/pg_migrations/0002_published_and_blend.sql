-- Kurs rates schema v2: figures as published (a base per row) beside the blended series.
--
-- Every reference row stored before was the consensus pick of its date, re-based per EUR. Those
-- rows become the blended series (source 'blend'; the ECB's figure first where two sources had
-- one). The ECB's rows, per EUR as the ECB publishes them, also stay the ECB's own. Other
-- publishers' old rows were re-based, not as published: they live on in the blend (and, as
-- received, in rate_observations); a backfill restores them as published.

ALTER TABLE rate_observations
    ADD COLUMN base text NOT NULL DEFAULT 'EUR',
    ADD COLUMN flag text NOT NULL DEFAULT '';

ALTER TABLE reference_rates
    ADD COLUMN base text NOT NULL DEFAULT 'EUR',
    ADD COLUMN flag text NOT NULL DEFAULT '';  -- why the validator kept it out of the blend
ALTER TABLE reference_rates DROP CONSTRAINT reference_rates_pkey;
ALTER TABLE reference_rates ADD PRIMARY KEY (source, day, base, currency);

INSERT INTO reference_rates (source, day, base, currency, value, observed_at, sources)
SELECT DISTINCT ON (day, currency) 'blend', day, 'EUR', currency, value, observed_at, sources
FROM reference_rates
ORDER BY day, currency, (source <> 'ecb'), source;

DELETE FROM reference_rates WHERE source NOT IN ('ecb', 'blend');

ALTER TABLE reference_ranges ADD COLUMN base text NOT NULL DEFAULT 'EUR';
ALTER TABLE reference_ranges DROP CONSTRAINT reference_ranges_pkey;
ALTER TABLE reference_ranges ADD PRIMARY KEY (source, base, currency);
DELETE FROM reference_ranges WHERE source <> 'ecb';
INSERT INTO reference_ranges (source, base, currency, first_day, last_day)
SELECT 'blend', 'EUR', currency, min(day), max(day) FROM reference_rates
WHERE source = 'blend' GROUP BY currency;

-- Kurs rates schema v1. Applied in one transaction under an advisory lock (see pg_store.migrate).
-- Values are TEXT holding the publisher's decimal string digit for digit ("0.83380" stays
-- "0.83380"); comparisons cast to NUMERIC, which is exact.

-- Raw observations: every rate an ingest batch carried, as received, append-only (audit).
CREATE TABLE rate_observations (
    id          bigint GENERATED ALWAYS AS IDENTITY,
    received_at timestamptz NOT NULL DEFAULT now(),
    source      text        NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('reference', 'live')),
    currency    text        NOT NULL,
    value       text        NOT NULL,
    day         date        NOT NULL,
    observed_at timestamptz NOT NULL,
    sources     text[]      NOT NULL,
    replay      boolean     NOT NULL DEFAULT false
);
-- Append order == time order, so a BRIN index answers "what arrived between t1 and t2" for a
-- few pages of index; a btree would double the cost of every bulk load.
CREATE INDEX rate_observations_received_at ON rate_observations USING brin (received_at);

-- Daily reference fixings: one value per (source, business day, currency).
-- Range-partitioned by year of `day`; partitions are created on demand by the writer.
CREATE TABLE reference_rates (
    source      text        NOT NULL,
    day         date        NOT NULL,
    currency    text        NOT NULL,
    value       text        NOT NULL,  -- validated by the service; compared as value::numeric
    observed_at timestamptz NOT NULL,
    sources     text[]      NOT NULL,
    PRIMARY KEY (source, day, currency)
) PARTITION BY RANGE (day);
-- No second index: every hot query filters on (source, day) (see docs/storage.md); the
-- per-currency first/last day lives in reference_ranges below.

-- Validated live ticks: many per day, keyed on (source, currency, observed_at).
-- Range-partitioned by year of `observed_at`, created on demand.
CREATE TABLE live_rates (
    source      text        NOT NULL,
    currency    text        NOT NULL,
    observed_at timestamptz NOT NULL,
    day         date        NOT NULL,
    value       text        NOT NULL,  -- validated by the service; compared as value::numeric
    sources     text[]      NOT NULL,
    replay      boolean     NOT NULL,
    PRIMARY KEY (source, currency, observed_at)
) PARTITION BY RANGE (observed_at);
-- The primary key (source, currency, observed_at) already serves "one currency over a time range".

-- The newest live tick per currency, maintained in the write transaction (ties on
-- observed_at: the smallest source id wins), so startup never scans the tick history.
CREATE TABLE live_latest (
    currency    text PRIMARY KEY,
    source      text        NOT NULL,
    observed_at timestamptz NOT NULL,
    day         date        NOT NULL,
    value       text        NOT NULL,
    sources     text[]      NOT NULL,
    replay      boolean     NOT NULL
);

-- First and last reference day per (source, currency), maintained in the write transaction,
-- so /currencies never aggregates decades of rows.
CREATE TABLE reference_ranges (
    source      text NOT NULL,
    currency    text NOT NULL,
    first_day   date NOT NULL,
    last_day    date NOT NULL,
    PRIMARY KEY (source, currency)
);

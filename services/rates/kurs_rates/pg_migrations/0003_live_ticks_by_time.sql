-- ListTicks reads one currency's live ticks over a time range from every source: the primary
-- key (source, currency, observed_at) serves that only for one source.
CREATE INDEX IF NOT EXISTS live_rates_by_time ON live_rates (currency, observed_at);

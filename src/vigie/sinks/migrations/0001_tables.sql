-- Vigie warehouse, version 1: one table per topic.
--
-- Every table is a ReplacingMergeTree keyed by the record's identity, partitioned by the
-- month of its event time (lodging time for declarations, scores and alerts, so that a
-- replayed record always lands in the same partition as the original). The key also
-- carries the day first, so the dashboards' time-range scans read few granules.
-- non_replicated_deduplication_window keeps the hashes of recent insert blocks: a
-- replayed batch (same insert_deduplication_token) is dropped at insert time; records
-- replayed in differently cut batches are collapsed at merge time, and queries that must
-- be exact read with FINAL.

CREATE TABLE IF NOT EXISTS declarations
(
    declaration_id String,
    item_number UInt16,
    lodged_at DateTime64(3, 'UTC'),
    office LowCardinality(String),
    declarant String,
    importer String,
    seller Nullable(String),
    commodity_code String,
    chapter LowCardinality(String) MATERIALIZED substring(commodity_code, 1, 2),
    hs6 String MATERIALIZED substring(commodity_code, 1, 6),
    origin LowCardinality(String),
    dispatch LowCardinality(Nullable(String)),
    procedure Nullable(String),
    transport_mode Nullable(String),
    incoterm Nullable(String),
    invoice_currency Nullable(String),
    invoice_amount Nullable(Float64),
    customs_value_eur Float64,
    net_mass_kg Float64,
    supplementary_units Nullable(Float64),
    duty_rate_pct Float64,
    preference Nullable(String),
    attributes Map(String, String),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(lodged_at)
ORDER BY (importer, toDate(lodged_at), declaration_id, item_number)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS scores
(
    declaration_id String,
    importer String,
    office LowCardinality(String),
    commodity_code String,
    chapter LowCardinality(String) MATERIALIZED substring(commodity_code, 1, 2),
    lodged_at DateTime64(3, 'UTC'),
    scored_at DateTime64(3, 'UTC'),
    valuation_score Float64,
    reference_unit_value Nullable(Float64),
    valuation_unit LowCardinality(Nullable(String)),
    support_level LowCardinality(Nullable(String)),
    support_count UInt32,
    value_ratio Nullable(Float64),
    robust_z Nullable(Float64),
    below_lowest_acceptable Bool,
    duty_at_risk_eur Float64,
    atypicality_score Float64,
    contributions Array(Tuple(name String, value Float64, weight Float64)),
    supervised_probability Float64,
    risk Float64,
    expected_recoverable_eur Float64,
    selected Bool,
    selection LowCardinality(Nullable(String)),
    selection_probability Float64,
    threshold Float64,
    reason_codes Array(LowCardinality(String)),
    reason_texts Array(String),
    model_versions Map(String, String),
    latency_ms Float64,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(scored_at)
PARTITION BY toYYYYMM(lodged_at)
ORDER BY (toDate(lodged_at), declaration_id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS alerts
(
    alert_id String,
    declaration_id String,
    raised_at DateTime64(3, 'UTC'),
    lodged_at DateTime64(3, 'UTC'),
    risk Float64,
    expected_recoverable_eur Float64,
    duty_at_risk_eur Float64,
    importer String,
    office LowCardinality(String),
    commodity_code String,
    chapter LowCardinality(String) MATERIALIZED substring(commodity_code, 1, 2),
    selection LowCardinality(Nullable(String)),
    reason_codes Array(LowCardinality(String)),
    reason_texts Array(String),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(lodged_at)
ORDER BY (toDate(lodged_at), alert_id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS control_results
(
    declaration_id String,
    controlled_at DateTime64(3, 'UTC'),
    outcome LowCardinality(String),
    is_fraud Bool MATERIALIZED outcome != 'compliant',
    recovered_eur Float64,
    selection LowCardinality(String),
    selection_probability Nullable(Float64),
    inspector Nullable(String),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(controlled_at)
ORDER BY (declaration_id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS dead_letters
(
    letter_id String,
    source_topic LowCardinality(String),
    key Nullable(String),
    value String,
    value_encoding LowCardinality(String),
    reason LowCardinality(String),
    errors String,
    received_at DateTime64(3, 'UTC'),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (reason, letter_id)
SETTINGS non_replicated_deduplication_window = 10000;

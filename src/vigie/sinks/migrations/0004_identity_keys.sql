-- Declarations, scores and alerts keyed by the record's identity (docs/warehouse.md).
--
-- Their keys used to carry the importer and the lodging day, so a re-sent declaration
-- with another lodging time or importer was kept twice, and Scores and Alerts of an
-- amendment (revision 2) replaced those of the declaration they amend. Now:
--   declarations  (declaration_id, item_number), one row per revision the writer
--                 numbers from the content digest; FINAL keeps the latest revision;
--   scores        (declaration_id, item_number, revision);
--   alerts        (declaration_id, item_number, revision): the alert id's parts.
-- Scores and alerts also store the data-quality flags; alerts their kind.
--
-- ClickHouse cannot change a sorting key in place. REPLACE TABLE ... AS SELECT builds
-- the new table under a temporary name, fills it from the old one, exchanges the two
-- and drops the old one, atomically (Atomic databases, chDB's included): interrupted,
-- it leaves the old table as it was. The new columns are first added to the old table
-- with defaults for the rows written before (revision 1, digest 0: unknown; an alert's
-- item and revision from its id), so that each copy reads columns both shapes have:
-- run again on its own result, it copies the same rows (optimize_on_insert off: the
-- revisions of a declaration are not folded before a merge folds them). Rows written
-- before keep one row per new key, the latest.
--
-- Rows inserted into a table while it is copied are not in the copy: apply this
-- migration (vigie warehouse migrate, or a writer's start) before starting writers.

ALTER TABLE declarations ADD COLUMN IF NOT EXISTS revision UInt32 DEFAULT 1;

ALTER TABLE declarations ADD COLUMN IF NOT EXISTS digest UInt64 DEFAULT 0;

ALTER TABLE scores ADD COLUMN IF NOT EXISTS item_number UInt16 DEFAULT 1;

ALTER TABLE scores ADD COLUMN IF NOT EXISTS revision UInt32 DEFAULT 1;

ALTER TABLE scores ADD COLUMN IF NOT EXISTS flags Array(LowCardinality(String));

-- the alert id is alert:<declaration id>[/<item>][:r<revision>]
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS item_number UInt16 DEFAULT toUInt16OrDefault(extract(substring(alert_id, length(declaration_id) + 7), '^/([0-9]+)'), toUInt16(1));

ALTER TABLE alerts ADD COLUMN IF NOT EXISTS revision UInt32 DEFAULT toUInt32OrDefault(extract(substring(alert_id, length(declaration_id) + 7), ':r([0-9]+)$'), toUInt32(1));

ALTER TABLE alerts ADD COLUMN IF NOT EXISTS kind LowCardinality(String) DEFAULT if(selection = 'random_audit', 'random_audit', 'risk');

ALTER TABLE alerts ADD COLUMN IF NOT EXISTS flags Array(LowCardinality(String));

-- control results: a re-sent result is told from a corrected one by its content
ALTER TABLE control_results ADD COLUMN IF NOT EXISTS digest UInt64;

REPLACE TABLE declarations
(
    declaration_id String,
    item_number UInt16,
    revision UInt32,
    digest UInt64,
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
    direction Enum8('import' = 1, 'export' = 2),
    destination LowCardinality(Nullable(String)),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX importer_bf importer TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX lodged_at_mm lodged_at TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(revision)
PARTITION BY toYYYYMM(lodged_at)
ORDER BY (declaration_id, item_number)
SETTINGS non_replicated_deduplication_window = 10000
AS SELECT
    declaration_id, item_number, revision, digest, lodged_at, office, declarant, importer, seller,
    commodity_code, origin, dispatch, procedure, transport_mode, incoterm, invoice_currency,
    invoice_amount, customs_value_eur, net_mass_kg, supplementary_units, duty_rate_pct,
    preference, attributes, direction, destination, ingested_at
FROM declarations
ORDER BY declaration_id, item_number, revision, ingested_at DESC
LIMIT 1 BY declaration_id, item_number, revision
SETTINGS optimize_on_insert = 0;

REPLACE TABLE scores
(
    declaration_id String,
    item_number UInt16,
    revision UInt32,
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
    flags Array(LowCardinality(String)),
    model_versions Map(String, String),
    latency_ms Float64,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX importer_bf importer TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX lodged_at_mm lodged_at TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(scored_at)
PARTITION BY toYYYYMM(lodged_at)
ORDER BY (declaration_id, item_number, revision)
SETTINGS non_replicated_deduplication_window = 10000
AS SELECT
    declaration_id, item_number, revision, importer, office, commodity_code, lodged_at, scored_at,
    valuation_score, reference_unit_value, valuation_unit, support_level, support_count,
    value_ratio, robust_z, below_lowest_acceptable, duty_at_risk_eur, atypicality_score,
    contributions, supervised_probability, risk, expected_recoverable_eur, selected,
    selection, selection_probability, threshold, reason_codes, reason_texts, flags,
    model_versions, latency_ms, ingested_at
FROM scores
ORDER BY declaration_id, item_number, revision, scored_at DESC
LIMIT 1 BY declaration_id, item_number, revision
SETTINGS optimize_on_insert = 0;

REPLACE TABLE alerts
(
    alert_id String,
    declaration_id String,
    item_number UInt16,
    revision UInt32,
    kind LowCardinality(String),
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
    flags Array(LowCardinality(String)),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX importer_bf importer TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX lodged_at_mm lodged_at TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(lodged_at)
ORDER BY (declaration_id, item_number, revision)
SETTINGS non_replicated_deduplication_window = 10000
AS SELECT
    alert_id, declaration_id, item_number, revision, kind, raised_at, lodged_at, risk,
    expected_recoverable_eur, duty_at_risk_eur, importer, office, commodity_code, selection,
    reason_codes, reason_texts, flags, ingested_at
FROM alerts
ORDER BY alert_id, raised_at DESC
LIMIT 1 BY alert_id
SETTINGS optimize_on_insert = 0;

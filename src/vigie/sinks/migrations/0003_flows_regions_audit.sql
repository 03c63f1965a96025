-- Flows both ways, customs regions, the web application's audit trail.
--
-- direction: an Enum whose first value is 'import', so declarations written before the
-- column existed read as imports (the default of an Enum column is its first value).
-- destination: the third country of an export. typology: the kind of infraction an
-- inspection found, when it says.

ALTER TABLE declarations ADD COLUMN IF NOT EXISTS direction Enum8('import' = 1, 'export' = 2);

ALTER TABLE declarations ADD COLUMN IF NOT EXISTS destination LowCardinality(Nullable(String));

ALTER TABLE control_results ADD COLUMN IF NOT EXISTS typology LowCardinality(Nullable(String));

-- Customs offices and the interregional directorate (DI) each belongs to: reference data,
-- seeded with the French offices of the generated traffic when the table is created.
-- Another country's offices replace or extend it with plain INSERTs (a newer updated_at
-- wins: ReplacingMergeTree); an office missing here is shown under region ''.
CREATE TABLE IF NOT EXISTS office_regions
(
    office String,
    office_name String,
    region LowCardinality(String),
    region_name String,
    country LowCardinality(String),
    updated_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY office
AS SELECT office, office_name, region, region_name, 'FR', toDateTime64('2026-01-01 00:00:00', 3, 'UTC')
FROM values(
    'office String, office_name String, region String, region_name String',
    ('FR000730', 'Roissy-CDG fret', 'DI-ROISSY', 'DI de Roissy'),
    ('FR009400', 'Orly', 'DI-PARIS', 'DI de Paris (Île-de-France)'),
    ('FR002300', 'Le Havre port', 'DI-ROUEN', 'DI de Rouen (Normandie)'),
    ('FR001280', 'Marseille-Fos port', 'DI-MARSEILLE', 'DI de Marseille (Provence-Alpes-Côte d''Azur-Corse)'),
    ('FR003310', 'Dunkerque port', 'DI-LILLE', 'DI de Lille (Hauts-de-France)'),
    ('FR005900', 'Lille Lesquin', 'DI-LILLE', 'DI de Lille (Hauts-de-France)'),
    ('FR004400', 'Nantes-Saint-Nazaire', 'DI-NANTES', 'DI de Nantes (Bretagne-Pays de la Loire)'),
    ('FR006900', 'Lyon Saint-Exupery', 'DI-LYON', 'DI de Lyon (Auvergne-Rhône-Alpes)'),
    ('FR007400', 'Mont-Blanc', 'DI-LYON', 'DI de Lyon (Auvergne-Rhône-Alpes)'),
    ('FR003100', 'Toulouse Blagnac', 'DI-MONTPELLIER', 'DI de Montpellier (Occitanie)'),
    ('FR006600', 'Le Boulou', 'DI-MONTPELLIER', 'DI de Montpellier (Occitanie)'),
    ('FR006700', 'Strasbourg', 'DI-STRASBOURG', 'DI de Strasbourg (Grand Est)')
);

-- Every request to `vigie web`: who, what, the answer. Written by the web application,
-- one row per request, keyed by its request id (a retried insert is collapsed).
CREATE TABLE IF NOT EXISTS web_audit
(
    request_id String,
    at DateTime64(3, 'UTC'),
    account String,
    role LowCardinality(String),
    method LowCardinality(String),
    path String,
    query String,
    status UInt16,
    operator String,
    client String,
    user_agent String,
    duration_ms Float64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (toDate(at), request_id)
SETTINGS non_replicated_deduplication_window = 10000;

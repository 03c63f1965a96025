-- Vision 360 filters scores and alerts by importer while their keys start with the day:
-- a bloom-filter skip index lets those scans jump the granules of other operators.

ALTER TABLE scores ADD INDEX IF NOT EXISTS importer_bf importer TYPE bloom_filter(0.01) GRANULARITY 4;

ALTER TABLE alerts ADD INDEX IF NOT EXISTS importer_bf importer TYPE bloom_filter(0.01) GRANULARITY 4;

-- Example questions over the tables of `imaging-bridge export` (DuckDB SQL).
-- Each query follows a "-- name:" line; the tables are the views studies, series, reports
-- and dose over the exported files (docs/record.md shows how to open them), e.g.
--   CREATE VIEW studies AS SELECT * FROM 'export/studies.parquet';
-- tests/integration/record/test_record_sync.py runs every query here.

-- name: ct_studies_per_year
SELECT year, count(*) AS studies
FROM studies
WHERE modality = 'CT'
GROUP BY year
ORDER BY year;

-- name: studies_per_modality_per_year_per_body_site
SELECT modality, year, body_site_display AS body_site, count(*) AS studies
FROM studies
GROUP BY modality, year, body_site_display
ORDER BY modality, year, body_site;

-- name: cumulative_ct_dlp_per_patient
-- the sum of the CT dose summaries' DLP totals (DCM 113813, mGy.cm); add e.g.
-- "AND effective >= '2024-01-01'" for a period
SELECT patient, sum(dlp_total_mgy_cm) AS dlp_total_mgy_cm, count(*) AS dose_reports
FROM dose
WHERE kind = 'summary' AND dlp_total_mgy_cm IS NOT NULL
GROUP BY patient
ORDER BY dlp_total_mgy_cm DESC;

-- name: follow_up_intervals
-- days from each study to the patient's previous one of the same modality and body site
SELECT patient, modality, body_site, started,
       CAST(substr(started, 1, 10) AS DATE)
         - lag(CAST(substr(started, 1, 10) AS DATE))
             OVER (PARTITION BY patient, modality, body_site ORDER BY started) AS days_since_previous
FROM studies
WHERE started IS NOT NULL
ORDER BY patient, modality, body_site, started;

-- name: reports_by_status
SELECT status, count(*) AS reports
FROM reports
GROUP BY status
ORDER BY status;

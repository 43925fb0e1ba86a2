-- Task 1.2: row counts of the curated tables, and the distinct keys (equal when deduplicated).
SELECT 'curated_events' AS table_name, COUNT(*) AS row_count, COUNT(DISTINCT event_id) AS distinct_keys
FROM curated_events
UNION ALL
SELECT 'curated_sessions' AS table_name, COUNT(*) AS row_count, COUNT(DISTINCT sessionid) AS distinct_keys
FROM curated_sessions
UNION ALL
SELECT 'curated_gap_sessions' AS table_name, COUNT(*) AS row_count, COUNT(DISTINCT session_id) AS distinct_keys
FROM curated_gap_sessions
ORDER BY table_name

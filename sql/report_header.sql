-- Report: the header: first and last event time (UTC), events, customers, product views and sessions.
SELECT
  e.first_event,
  e.last_event,
  e.events,
  e.customers,
  e.product_views,
  g.gap_sessions,
  m.minute_sessions
FROM (
  SELECT
    MIN(trans_timestamp) AS first_event,
    MAX(trans_timestamp) AS last_event,
    COUNT(*) AS events,
    COUNT(DISTINCT custid) AS customers,
    COALESCE(SUM(CASE WHEN touchproduct <> 0 THEN 1 ELSE 0 END), 0) AS product_views
  FROM curated_events
) e
CROSS JOIN (SELECT COUNT(*) AS gap_sessions FROM curated_gap_sessions) g
CROSS JOIN (SELECT COUNT(*) AS minute_sessions FROM curated_sessions) m
ORDER BY e.first_event

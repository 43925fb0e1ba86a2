-- Report: gap sessions per device, how many reached checkout, and their pages and length.
SELECT
  device,
  COUNT(*) AS sessions,
  SUM(CASE WHEN reached_checkout THEN 1 ELSE 0 END) AS checkouts,
  ROUND(CAST(SUM(CASE WHEN reached_checkout THEN 1 ELSE 0 END) AS DOUBLE) / CAST(COUNT(*) AS DOUBLE), 6) AS conversion_rate,
  ROUND(AVG(CAST(page_count AS DOUBLE)), 3) AS avg_pages,
  ROUND(AVG(duration_seconds), 3) AS avg_duration_sec
FROM curated_gap_sessions
GROUP BY device
ORDER BY conversion_rate DESC, sessions DESC, device

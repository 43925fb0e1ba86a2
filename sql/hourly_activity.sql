-- Report: events, customers and product touches per hour of event time (UTC).
SELECT
  year, month, day, hour,
  COUNT(*) AS events,
  COUNT(DISTINCT custid) AS customers,
  SUM(CASE WHEN touchproduct <> 0 THEN 1 ELSE 0 END) AS product_touches
FROM curated_events
GROUP BY year, month, day, hour
ORDER BY year, month, day, hour

-- Report: accesses (events) by device, with each device's share of all events.
SELECT
  device,
  COUNT(*) AS accesses,
  ROUND(CAST(COUNT(*) AS DOUBLE) / CAST((SELECT COUNT(*) FROM curated_events) AS DOUBLE), 6) AS share
FROM curated_events
GROUP BY device
ORDER BY accesses DESC, device

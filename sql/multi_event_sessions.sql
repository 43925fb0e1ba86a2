-- Task 1.2: a simple filter on the sessions table: per-minute sessions with more than one event.
SELECT device, COUNT(*) AS sessions, SUM(events) AS events, MAX(totaltime_sec) AS longest_sec
FROM curated_sessions
WHERE events > 1
GROUP BY device
ORDER BY sessions DESC, device

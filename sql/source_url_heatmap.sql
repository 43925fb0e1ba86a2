-- Report: accesses per traffic source and page (the source x url heat map).
SELECT trafficfrom, url, COUNT(*) AS accesses
FROM curated_events
GROUP BY trafficfrom, url
ORDER BY trafficfrom, url

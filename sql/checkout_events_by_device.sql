-- Task 1.2: a simple filter on the events table: checkout page views per device.
SELECT device, COUNT(*) AS checkout_events, COUNT(DISTINCT custid) AS customers
FROM curated_events
WHERE url = 'beer_checkout'
GROUP BY device
ORDER BY checkout_events DESC, device

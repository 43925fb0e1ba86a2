-- Task 1: the ten most searched products (events that touched a product, touchproduct <> 0).
SELECT touchproduct, COUNT(*) AS accesses, COUNT(DISTINCT custid) AS customers
FROM curated_events
WHERE touchproduct <> 0
GROUP BY touchproduct
ORDER BY accesses DESC, touchproduct
LIMIT 10

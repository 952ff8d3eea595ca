-- Keyset paging of live customers in join order, overall and per family, reads
-- only the rows of the page instead of sorting every customer per request.
CREATE INDEX customers_list_idx ON customers (create_time, id) WHERE deleted_at IS NULL;
CREATE INDEX customers_family_list_idx ON customers (family_id, create_time, id)
    WHERE deleted_at IS NULL;

-- The campaign report counts the leads a campaign brought (their `source.campaign`) and how many were won. Without
-- an index that was a scan of every lead's JSON of the tenant, once per campaign. The expression is exactly the one
-- `campaign_sums` filters on, and the index covers the query (created_at and status), so the count reads the
-- index alone. PostgreSQL has the same index (its migration 2, `crm_storage_sql::schema::commerce`, `leads_by_campaign`).
CREATE INDEX leads_by_campaign ON leads (tenant, json_extract(doc, '$.source.campaign'), created_at, status)
    WHERE json_extract(doc, '$.source.campaign') IS NOT NULL;

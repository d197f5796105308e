-- Timers read their candidates through indexes of due times, never by scanning every record.
--
-- `open_item_overdue` reads the invoices whose due date falls in a recent window (CommerceKey::DocumentsDue);
-- `contract_renewal_due` the documents whose renewal date (`renews_on`, kept in the JSON document) falls in the
-- coming days (CommerceKey::DocumentsRenewing). The expression is exactly the one the query compares.
CREATE INDEX documents_due ON documents (tenant, kind, due_day) WHERE due_day IS NOT NULL;
CREATE INDEX documents_renewing ON documents (tenant, json_extract(doc, '$.renews_on'))
    WHERE json_extract(doc, '$.renews_on') IS NOT NULL;

-- `lead_idle` reads the open leads last changed before a cutoff, newest first (LeadQuery::updated_before);
-- `close_date_passed` the open leads whose expected close date (ISO text in the JSON document) is past
-- (LeadQuery::close_before).
CREATE INDEX leads_idle ON leads (tenant, status, updated_at, id);
CREATE INDEX leads_close ON leads (tenant, status, json_extract(doc, '$.expected_close'))
    WHERE json_extract(doc, '$.expected_close') IS NOT NULL;

-- `request_age` reads the active requests opened before a cutoff (RequestQuery::opened_before): the opening time
-- becomes a column, filled from the documents of existing rows in microseconds, as every other time column. The
-- documents hold RFC 3339 UTC text (`2026-01-05T09:00:00.123457Z`); whole seconds and the fraction are read apart
-- and added as integers, so no floating point rounds a microsecond away.
ALTER TABLE requests ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0;
UPDATE requests SET created_at =
    unixepoch(substr(json_extract(doc, '$.created_at'), 1, 19)) * 1000000
    + CASE WHEN substr(json_extract(doc, '$.created_at'), 20, 1) = '.'
           THEN CAST(substr(rtrim(substr(json_extract(doc, '$.created_at'), 21), 'Z') || '000000', 1, 6) AS INTEGER)
           ELSE 0 END;
CREATE INDEX requests_opened ON requests (tenant, active, created_at, id);

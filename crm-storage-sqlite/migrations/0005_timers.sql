-- Timers read their candidates through indexes of due times, never by scanning every record.
--
-- `open_item_overdue` reads the invoices whose due date falls in a recent window (CommerceKey::DocumentsDue);
-- `contract_renewal_due` the documents whose renewal date (`renews_on`, kept in the JSON document) falls in the
-- coming days (CommerceKey::DocumentsRenewing). The expression is exactly the one the query compares.
CREATE INDEX documents_due ON documents (tenant, kind, due_day) WHERE due_day IS NOT NULL;
CREATE INDEX documents_renewing ON documents (tenant, json_extract(doc, '$.renews_on'))
    WHERE json_extract(doc, '$.renews_on') IS NOT NULL;

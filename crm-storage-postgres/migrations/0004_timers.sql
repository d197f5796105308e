-- Timers read their candidates through indexes of due times, never by scanning every record.
--
-- `open_item_overdue` reads the invoices whose due date falls in a recent window (CommerceKey::DocumentsDue);
-- `contract_renewal_due` the documents whose renewal date (`renews_on`, kept in the JSON document) falls in the
-- coming days (CommerceKey::DocumentsRenewing). The expression is exactly the one the query compares.
CREATE INDEX documents_due ON documents (tenant, kind, due_day) WHERE due_day IS NOT NULL;
CREATE INDEX documents_renewing ON documents (tenant, ((doc ->> 'renews_on')) COLLATE "C");

-- `lead_idle` reads the open leads last changed before a cutoff, newest first (LeadQuery::updated_before);
-- `close_date_passed` the open leads whose expected close date (ISO text in the JSON document) is past
-- (LeadQuery::close_before); `request_age` the active requests opened before a cutoff (RequestQuery::opened_before,
-- on the existing `created_us`).
CREATE INDEX leads_idle ON leads (tenant, status, updated_us, id);
CREATE INDEX leads_close ON leads (tenant, status, ((doc ->> 'expected_close')) COLLATE "C");
CREATE INDEX requests_opened ON requests (tenant, active, created_us, id);

-- Migration 27: `crm_storage_sql::segment::PARTNER_NAMES`, the narrow index of the partners' names and merge marks.
-- A partner's row is about 850 bytes (its document), and a `WITHOUT ROWID` table's interior pages hold whole rows, a
-- few to a page: at 1M partners a seek descends nine levels of wide records. A segment whose criteria read nothing
-- else of a partner reads this index instead (`INDEXED BY`), about 70 bytes an entry. `IF NOT EXISTS`: a file a
-- test rewound to an earlier version keeps its later indexes.
CREATE INDEX IF NOT EXISTS partners_names ON partners (tenant, id, merged_into, name);

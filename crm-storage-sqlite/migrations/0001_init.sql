-- The lead-management schema. Every table carries the tenant in its primary key and in every foreign key.
-- Money is stored as scaled integers (units of 10^-4, see crm_core::money::MONEY_SCALE), never REAL or NUMERIC.
-- Times are integer microseconds since the Unix epoch (UTC). Ids are 16-byte UUID v7 blobs.
-- Each record's full serde form is in `doc` (JSON text); the other columns exist to be indexed and aggregated.

CREATE TABLE partners (
    tenant   BLOB NOT NULL,
    id       BLOB NOT NULL,
    name     TEXT NOT NULL,
    search   TEXT NOT NULL,          -- lower-cased name and contact e-mails, for text search
    grp      TEXT,
    owner    BLOB,
    version  INTEGER NOT NULL,
    doc      TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;

CREATE TABLE partner_keys (
    tenant   BLOB NOT NULL,
    key      TEXT NOT NULL,
    partner  BLOB NOT NULL,
    PRIMARY KEY (tenant, key, partner),
    FOREIGN KEY (tenant, partner) REFERENCES partners (tenant, id)
) WITHOUT ROWID;
CREATE INDEX partner_keys_by_partner ON partner_keys (tenant, partner);

CREATE TABLE pipelines (
    tenant     BLOB NOT NULL,
    id         BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    version    INTEGER NOT NULL,
    doc        TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;

CREATE TABLE lost_reasons (
    tenant  BLOB NOT NULL,
    id      BLOB NOT NULL,
    doc     TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;

CREATE TABLE leads (
    tenant         BLOB NOT NULL,
    id             BLOB NOT NULL,
    partner        BLOB NOT NULL,
    pipeline       BLOB NOT NULL,
    stage          BLOB NOT NULL,
    status         INTEGER NOT NULL,     -- 0 open, 1 won, 2 lost
    owner          BLOB,
    currency       TEXT,                 -- ISO 4217 code of expected_units
    expected_units INTEGER,              -- expected revenue in 10^-4 units
    revenue_key    INTEGER NOT NULL,     -- expected_units, or i64::MIN when none (sort key)
    probability    INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    title_lc       TEXT NOT NULL,
    version        INTEGER NOT NULL,
    doc            TEXT NOT NULL,
    PRIMARY KEY (tenant, id),
    FOREIGN KEY (tenant, partner) REFERENCES partners (tenant, id),
    FOREIGN KEY (tenant, pipeline) REFERENCES pipelines (tenant, id)
) WITHOUT ROWID;
CREATE INDEX leads_board ON leads (tenant, pipeline, status, stage, currency, probability, expected_units);
CREATE INDEX leads_created ON leads (tenant, created_at, id);
CREATE INDEX leads_updated ON leads (tenant, updated_at, id);
CREATE INDEX leads_revenue ON leads (tenant, revenue_key, id);
CREATE INDEX leads_owner ON leads (tenant, owner, created_at, id);
CREATE INDEX leads_partner ON leads (tenant, partner, created_at, id);
CREATE INDEX leads_stage ON leads (tenant, stage, created_at, id);

CREATE TABLE lead_tags (
    tenant  BLOB NOT NULL,
    tag     TEXT NOT NULL,
    lead    BLOB NOT NULL,
    PRIMARY KEY (tenant, tag, lead),
    FOREIGN KEY (tenant, lead) REFERENCES leads (tenant, id)
) WITHOUT ROWID;
CREATE INDEX lead_tags_by_lead ON lead_tags (tenant, lead);

CREATE TABLE requests (
    tenant    BLOB NOT NULL,
    id        BLOB NOT NULL,
    lead      BLOB,
    partner   BLOB,
    assignee  BLOB NOT NULL,
    active    INTEGER NOT NULL,         -- 1 when open or in progress
    due_key   INTEGER NOT NULL,         -- due time in microseconds, i64::MAX when none
    version   INTEGER NOT NULL,
    doc       TEXT NOT NULL,
    PRIMARY KEY (tenant, id),
    FOREIGN KEY (tenant, lead) REFERENCES leads (tenant, id),
    FOREIGN KEY (tenant, partner) REFERENCES partners (tenant, id)
) WITHOUT ROWID;
CREATE INDEX requests_assignee ON requests (tenant, assignee, due_key, id);
CREATE INDEX requests_lead ON requests (tenant, lead, due_key, id);
CREATE INDEX requests_partner ON requests (tenant, partner, due_key, id);
CREATE INDEX requests_due ON requests (tenant, active, due_key, id);

CREATE TABLE comments (
    tenant      BLOB NOT NULL,
    id          BLOB NOT NULL,
    target      BLOB NOT NULL,            -- the lead, partner or request id
    created_at  INTEGER NOT NULL,
    doc         TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX comments_target ON comments (tenant, target, created_at, id);

-- The event journal, which is also the activity log. `seq` orders the whole journal for `events_since`.
CREATE TABLE events (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant   BLOB NOT NULL,
    id       BLOB NOT NULL,
    at       INTEGER NOT NULL,
    lead     BLOB,
    partner  BLOB,
    request  BLOB,
    kind     TEXT NOT NULL,
    doc      TEXT NOT NULL,
    UNIQUE (tenant, id)
);
CREATE INDEX events_lead ON events (tenant, lead, at, id) WHERE lead IS NOT NULL;
CREATE INDEX events_partner ON events (tenant, partner, at, id) WHERE partner IS NOT NULL;
CREATE INDEX events_request ON events (tenant, request, at, id) WHERE request IS NOT NULL;
CREATE INDEX events_tenant_seq ON events (tenant, seq);

CREATE TABLE stage_history (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant     BLOB NOT NULL,
    lead       BLOB NOT NULL,
    pipeline   BLOB NOT NULL,
    to_stage   BLOB NOT NULL,
    status     INTEGER NOT NULL,
    at         INTEGER NOT NULL,
    doc        TEXT NOT NULL,
    FOREIGN KEY (tenant, lead) REFERENCES leads (tenant, id)
);
CREATE INDEX stage_history_lead ON stage_history (tenant, lead, seq);
CREATE INDEX stage_history_funnel ON stage_history (tenant, pipeline, to_stage, lead);

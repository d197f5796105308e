-- The transactional outbox and the in-app inboxes (crm_core::outbox).
-- A message's immutable part is in `doc`; its delivery state lives in columns (status 0 pending, 1 delivered,
-- 2 dead) so that claiming and marking are single UPDATEs. The idempotency key is unique per tenant.

CREATE TABLE outbox (
    tenant          BLOB NOT NULL,
    id              BLOB NOT NULL,
    idempotency_key TEXT NOT NULL,
    status          INTEGER NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER,
    doc             TEXT NOT NULL,
    PRIMARY KEY (tenant, id),
    UNIQUE (tenant, idempotency_key)
) WITHOUT ROWID;
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE status = 0;
CREATE INDEX outbox_by_status ON outbox (tenant, status, created_at, id);

CREATE TABLE inbox (
    tenant     BLOB NOT NULL,
    id         BLOB NOT NULL,
    user       BLOB NOT NULL,
    message    BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    read_at    INTEGER,
    doc        TEXT NOT NULL,
    PRIMARY KEY (tenant, id),
    UNIQUE (tenant, message)
) WITHOUT ROWID;
CREATE INDEX inbox_by_user ON inbox (tenant, user, created_at, id);
CREATE INDEX inbox_unread ON inbox (tenant, user) WHERE read_at IS NULL;

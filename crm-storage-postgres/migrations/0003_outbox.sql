-- The transactional outbox and the in-app inboxes (crm_core::outbox).
-- A message's immutable part is in `doc`; its delivery state lives in columns (status 0 pending, 1 delivered,
-- 2 dead) so that claims and outcomes are single UPDATEs. The idempotency key is unique per tenant.

CREATE TABLE outbox (
    tenant          uuid     NOT NULL,
    id              uuid     NOT NULL,
    idempotency_key text     NOT NULL,
    status          smallint NOT NULL,
    attempts        integer  NOT NULL,
    next_attempt_us bigint   NOT NULL,
    last_error      text,
    created_us      bigint   NOT NULL,
    delivered_us    bigint,
    doc             jsonb    NOT NULL,
    PRIMARY KEY (tenant, id),
    UNIQUE (tenant, idempotency_key)
);
CREATE INDEX outbox_due ON outbox (next_attempt_us, id) WHERE status = 0;
CREATE INDEX outbox_by_status ON outbox (tenant, status, created_us, id);

CREATE TABLE inbox (
    tenant     uuid   NOT NULL,
    id         uuid   NOT NULL,
    usr        uuid   NOT NULL,
    message    uuid   NOT NULL,
    created_us bigint NOT NULL,
    read_us    bigint,
    doc        jsonb  NOT NULL,
    PRIMARY KEY (tenant, id),
    UNIQUE (tenant, message)
);
CREATE INDEX inbox_by_user ON inbox (tenant, usr, created_us DESC, id DESC);
CREATE INDEX inbox_unread ON inbox (tenant, usr) WHERE read_us IS NULL;

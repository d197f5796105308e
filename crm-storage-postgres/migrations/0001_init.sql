-- The engine's tables.
--
-- Every record keeps its full serde JSON in `doc` (the source of truth when reading) plus the columns the queries
-- of the Store trait filter, sort and sum on. The tenant leads every primary key, every foreign key and every
-- index, and no foreign key crosses tenants: the layout distributes by tenant (Citus) as it is.
-- Times are microseconds since the Unix epoch (bigint), the same integers the keyset cursors carry.

CREATE TABLE partners (
    tenant      uuid   NOT NULL,
    id          uuid   NOT NULL,
    name        text   NOT NULL,
    -- crm_core::store::partner_search_text: lower-cased name and contacts' e-mails, for query_leads' text filter.
    search      text   NOT NULL,
    version     bigint NOT NULL,
    created_us  bigint NOT NULL,
    updated_us  bigint NOT NULL,
    doc         jsonb  NOT NULL,
    PRIMARY KEY (tenant, id)
);

-- Normalised duplicate-detection keys (`email:ana@firma.ro`).
CREATE TABLE partner_keys (
    tenant   uuid NOT NULL,
    key      text NOT NULL,
    partner  uuid NOT NULL,
    PRIMARY KEY (tenant, key, partner),
    FOREIGN KEY (tenant, partner) REFERENCES partners (tenant, id)
);
CREATE INDEX partner_keys_by_partner ON partner_keys (tenant, partner);

CREATE TABLE pipelines (
    tenant      uuid      NOT NULL,
    id          uuid      NOT NULL,
    seq         bigserial NOT NULL,
    created_us  bigint    NOT NULL,
    doc         jsonb     NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX pipelines_by_age ON pipelines (tenant, created_us, seq);

CREATE TABLE lost_reasons (
    tenant  uuid      NOT NULL,
    id      uuid      NOT NULL,
    seq     bigserial NOT NULL,
    name    text      NOT NULL,
    doc     jsonb     NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX lost_reasons_in_order ON lost_reasons (tenant, seq);

CREATE TABLE leads (
    tenant       uuid          NOT NULL,
    id           uuid          NOT NULL,
    partner      uuid          NOT NULL,
    pipeline     uuid          NOT NULL,
    stage        uuid          NOT NULL,
    -- 0 open, 1 won, 2 lost (StatusKind::code).
    status       smallint      NOT NULL CHECK (status BETWEEN 0 AND 2),
    owner        uuid,
    -- The lower-cased title, for the text filter.
    search       text          NOT NULL,
    expected     numeric(20,4),
    currency     char(3),
    -- Money::to_units() of the expected revenue, i64::MIN without one: the ExpectedRevenueDesc sort key.
    revenue_key  bigint        NOT NULL,
    probability  smallint      NOT NULL CHECK (probability BETWEEN 0 AND 100),
    created_us   bigint        NOT NULL,
    updated_us   bigint        NOT NULL,
    version      bigint        NOT NULL,
    doc          jsonb         NOT NULL,
    PRIMARY KEY (tenant, id),
    FOREIGN KEY (tenant, partner) REFERENCES partners (tenant, id),
    FOREIGN KEY (tenant, pipeline) REFERENCES pipelines (tenant, id),
    CHECK ((expected IS NULL) = (currency IS NULL))
);
-- query_leads: one index per sort order, plus the common narrowing filters with the default order.
CREATE INDEX leads_by_created  ON leads (tenant, created_us, id);
CREATE INDEX leads_by_updated  ON leads (tenant, updated_us, id);
CREATE INDEX leads_by_revenue  ON leads (tenant, revenue_key, id);
CREATE INDEX leads_by_owner    ON leads (tenant, owner, created_us, id);
CREATE INDEX leads_by_partner  ON leads (tenant, partner, created_us, id);
-- The board and stage filters.
CREATE INDEX leads_by_stage    ON leads (tenant, pipeline, stage, status, created_us, id);

CREATE TABLE lead_tags (
    tenant  uuid NOT NULL,
    tag     text NOT NULL,
    lead    uuid NOT NULL,
    PRIMARY KEY (tenant, tag, lead),
    FOREIGN KEY (tenant, lead) REFERENCES leads (tenant, id)
);
CREATE INDEX lead_tags_by_lead ON lead_tags (tenant, lead);

CREATE TABLE requests (
    tenant      uuid     NOT NULL,
    id          uuid     NOT NULL,
    lead        uuid,
    partner     uuid,
    assignee    uuid     NOT NULL,
    -- 0 open, 1 in progress, 2 done, 3 cancelled.
    status      smallint NOT NULL,
    active      boolean  NOT NULL,
    -- request_sort_key: the due time in microseconds, i64::MAX without one.
    due_key     bigint   NOT NULL,
    created_us  bigint   NOT NULL,
    version     bigint   NOT NULL,
    doc         jsonb    NOT NULL,
    PRIMARY KEY (tenant, id),
    FOREIGN KEY (tenant, lead) REFERENCES leads (tenant, id),
    FOREIGN KEY (tenant, partner) REFERENCES partners (tenant, id)
);
CREATE INDEX requests_by_assignee ON requests (tenant, assignee, due_key, id);
CREATE INDEX requests_by_lead     ON requests (tenant, lead, due_key, id);
CREATE INDEX requests_by_partner  ON requests (tenant, partner, due_key, id);
CREATE INDEX requests_by_due      ON requests (tenant, due_key, id);

CREATE TABLE comments (
    tenant       uuid     NOT NULL,
    id           uuid     NOT NULL,
    -- 0 lead, 1 partner, 2 request.
    target_kind  smallint NOT NULL,
    target       uuid     NOT NULL,
    created_us   bigint   NOT NULL,
    doc          jsonb    NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX comments_by_target ON comments (tenant, target_kind, target, created_us DESC, id DESC);

-- The activity log. `pos` is the event's position in the tenant's commit order (see event_positions).
CREATE TABLE events (
    tenant   uuid   NOT NULL,
    id       uuid   NOT NULL,
    pos      bigint NOT NULL,
    at_us    bigint NOT NULL,
    lead     uuid,
    partner  uuid,
    request  uuid,
    kind     text   NOT NULL,
    doc      jsonb  NOT NULL,
    PRIMARY KEY (tenant, id),
    UNIQUE (tenant, pos)
);
CREATE INDEX events_by_lead    ON events (tenant, lead, at_us DESC, id DESC) WHERE lead IS NOT NULL;
CREATE INDEX events_by_partner ON events (tenant, partner, at_us DESC, id DESC) WHERE partner IS NOT NULL;
CREATE INDEX events_by_request ON events (tenant, request, at_us DESC, id DESC) WHERE request IS NOT NULL;

-- The last event position handed out per tenant. Writers bump it as the last step of their transaction, so the
-- row lock orders positions exactly as the transactions commit and a reader of events_since never skips one.
CREATE TABLE event_positions (
    tenant  uuid   NOT NULL PRIMARY KEY,
    last    bigint NOT NULL
);

CREATE TABLE stage_history (
    tenant      uuid      NOT NULL,
    lead        uuid      NOT NULL,
    seq         bigserial NOT NULL,
    pipeline    uuid      NOT NULL,
    from_stage  uuid,
    to_stage    uuid      NOT NULL,
    status      smallint  NOT NULL,
    at_us       bigint    NOT NULL,
    doc         jsonb     NOT NULL,
    PRIMARY KEY (tenant, lead, seq),
    FOREIGN KEY (tenant, lead) REFERENCES leads (tenant, id)
);
CREATE INDEX stage_history_by_pipeline ON stage_history (tenant, pipeline, to_stage, lead);


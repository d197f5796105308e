-- Commerce: products, documents with their lines and allocations, exchange rates, campaigns, cost entries and
-- targets. Money is bigint 10^-4 units (crm_core::money::Money::to_units), already converted into the reporting
-- currency when a document is recorded, so every report is a GROUP BY over integers and equals the reference
-- calculation exactly. Days are integer day numbers (crm_core::commerce::day_number); the bucket indexes (month,
-- quarter, year) are stored so GROUP BY needs no date arithmetic. Documents carry the partner's reporting
-- attributes at issue time (group, industry, owner, location), so profitability groups without a join.
-- As everywhere, the tenant leads every key and no foreign key crosses tenants.

CREATE TABLE product_categories (
    tenant   uuid   NOT NULL,
    id       uuid   NOT NULL,
    code     text   NOT NULL,
    version  bigint NOT NULL,
    doc      jsonb  NOT NULL,
    PRIMARY KEY (tenant, id),
    UNIQUE (tenant, code)
);

CREATE TABLE products (
    tenant    uuid   NOT NULL,
    id        uuid   NOT NULL,
    code      text   NOT NULL,
    category  uuid,
    version   bigint NOT NULL,
    doc       jsonb  NOT NULL,
    PRIMARY KEY (tenant, id),
    UNIQUE (tenant, code),
    FOREIGN KEY (tenant, category) REFERENCES product_categories (tenant, id)
);

CREATE TABLE exchange_rates (
    tenant    uuid    NOT NULL,
    from_ccy  char(3) NOT NULL,
    to_ccy    char(3) NOT NULL,
    day       integer NOT NULL,
    doc       jsonb   NOT NULL,
    PRIMARY KEY (tenant, from_ccy, to_ccy, day)
);

CREATE TABLE campaigns (
    tenant   uuid     NOT NULL,
    id       uuid     NOT NULL,
    status   smallint NOT NULL,
    version  bigint   NOT NULL,
    doc      jsonb    NOT NULL,
    PRIMARY KEY (tenant, id)
);

CREATE TABLE documents (
    tenant         uuid     NOT NULL,
    id             uuid     NOT NULL,
    kind           smallint NOT NULL,   -- 0 invoice, 1 credit note, 2 vendor bill, 3 payment
    number         text     NOT NULL,
    partner        uuid     NOT NULL,
    issue_day      integer  NOT NULL,
    due_day        integer,
    month_idx      bigint   NOT NULL,
    quarter_idx    bigint   NOT NULL,
    year_idx       bigint   NOT NULL,
    currency       char(3)  NOT NULL,
    total_units    bigint   NOT NULL,   -- document currency, positive
    reporting      char(3)  NOT NULL,
    revenue_units  bigint   NOT NULL,   -- reporting currency, signed
    cost_units     bigint   NOT NULL,   -- reporting currency, signed
    campaign       uuid,
    corrects       text,
    direction      smallint,            -- payments: 0 received, 1 sent
    grp            text,
    industry       text,
    owner          uuid,
    country        text,
    region         text,
    city           text,
    version        bigint   NOT NULL,
    doc            jsonb    NOT NULL,
    PRIMARY KEY (tenant, id),
    UNIQUE (tenant, kind, number),
    FOREIGN KEY (tenant, partner) REFERENCES partners (tenant, id),
    FOREIGN KEY (tenant, campaign) REFERENCES campaigns (tenant, id)
);
CREATE INDEX documents_sales ON documents (tenant, reporting, issue_day, kind, partner, revenue_units, cost_units);
CREATE INDEX documents_partner ON documents (tenant, partner, kind, issue_day);
CREATE INDEX documents_campaign ON documents (tenant, campaign, issue_day) WHERE campaign IS NOT NULL;
CREATE INDEX documents_corrects ON documents (tenant, partner, corrects) WHERE corrects IS NOT NULL;

CREATE TABLE document_lines (
    tenant          uuid     NOT NULL,
    document        uuid     NOT NULL,
    n               integer  NOT NULL,
    partner         uuid     NOT NULL,
    kind            smallint NOT NULL,
    issue_day       integer  NOT NULL,
    product         uuid     NOT NULL,
    category        uuid,
    quantity_units  bigint   NOT NULL,  -- signed: + invoices, − credit notes, 0 otherwise
    revenue_units   bigint   NOT NULL,
    cost_units      bigint   NOT NULL,
    PRIMARY KEY (tenant, document, n),
    FOREIGN KEY (tenant, document) REFERENCES documents (tenant, id),
    FOREIGN KEY (tenant, product) REFERENCES products (tenant, id)
);
CREATE INDEX document_lines_product ON document_lines (tenant, product, partner, issue_day, quantity_units);
CREATE INDEX document_lines_category ON document_lines (tenant, category, partner, issue_day, quantity_units)
    WHERE category IS NOT NULL;

CREATE TABLE allocations (
    tenant         uuid     NOT NULL,
    document       uuid     NOT NULL,
    n              integer  NOT NULL,
    partner        uuid     NOT NULL,
    target_kind    smallint NOT NULL,
    target_number  text     NOT NULL,
    amount_units   bigint   NOT NULL,
    PRIMARY KEY (tenant, document, n),
    FOREIGN KEY (tenant, document) REFERENCES documents (tenant, id)
);
CREATE INDEX allocations_target ON allocations (tenant, partner, target_kind, target_number);

CREATE TABLE campaign_costs (
    tenant        uuid    NOT NULL,
    id            uuid    NOT NULL,
    campaign      uuid    NOT NULL,
    day           integer NOT NULL,
    reporting     char(3) NOT NULL,
    amount_units  bigint  NOT NULL,
    doc           jsonb   NOT NULL,
    PRIMARY KEY (tenant, id),
    FOREIGN KEY (tenant, campaign) REFERENCES campaigns (tenant, id)
);
CREATE INDEX campaign_costs_campaign ON campaign_costs (tenant, campaign, day);

CREATE TABLE campaign_targets (
    tenant      uuid     NOT NULL,
    campaign    uuid     NOT NULL,
    partner     uuid     NOT NULL,
    agent       uuid,
    request     uuid,
    outcome     smallint,
    outcome_at  bigint,
    reached_at  bigint,
    version     bigint   NOT NULL,
    doc         jsonb    NOT NULL,
    PRIMARY KEY (tenant, campaign, partner),
    FOREIGN KEY (tenant, campaign) REFERENCES campaigns (tenant, id),
    FOREIGN KEY (tenant, partner) REFERENCES partners (tenant, id)
);
CREATE UNIQUE INDEX campaign_targets_request ON campaign_targets (tenant, request) WHERE request IS NOT NULL;

-- The campaign report counts leads by their source campaign.
CREATE INDEX leads_by_campaign ON leads (tenant, ((doc -> 'source' ->> 'campaign')), created_us)
    WHERE doc -> 'source' ->> 'campaign' IS NOT NULL;

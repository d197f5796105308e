-- Commerce: products, documents with their lines and allocations, exchange rates, campaigns, cost entries and
-- targets. Money is integer 10^-4 units (never REAL or NUMERIC); days are integer day numbers
-- (crm_core::commerce::day_number); the bucket indexes (month, quarter, year) are stored so GROUP BY needs no date
-- arithmetic. Documents also carry the partner's reporting attributes at issue time (group, industry, owner,
-- location), so profitability groups without a join.

CREATE TABLE product_categories (
    tenant   BLOB NOT NULL,
    id       BLOB NOT NULL,
    code     TEXT NOT NULL,
    version  INTEGER NOT NULL,
    doc      TEXT NOT NULL,
    PRIMARY KEY (tenant, id),
    UNIQUE (tenant, code)
) WITHOUT ROWID;

CREATE TABLE products (
    tenant   BLOB NOT NULL,
    id       BLOB NOT NULL,
    code     TEXT NOT NULL,
    category BLOB,
    version  INTEGER NOT NULL,
    doc      TEXT NOT NULL,
    PRIMARY KEY (tenant, id),
    UNIQUE (tenant, code),
    FOREIGN KEY (tenant, category) REFERENCES product_categories (tenant, id)
) WITHOUT ROWID;

CREATE TABLE exchange_rates (
    tenant    BLOB NOT NULL,
    from_ccy  TEXT NOT NULL,
    to_ccy    TEXT NOT NULL,
    day       INTEGER NOT NULL,
    doc       TEXT NOT NULL,
    PRIMARY KEY (tenant, from_ccy, to_ccy, day)
) WITHOUT ROWID;

CREATE TABLE campaigns (
    tenant   BLOB NOT NULL,
    id       BLOB NOT NULL,
    status   INTEGER NOT NULL,
    version  INTEGER NOT NULL,
    doc      TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;

CREATE TABLE documents (
    tenant        BLOB NOT NULL,
    id            BLOB NOT NULL,
    kind          INTEGER NOT NULL,      -- 0 invoice, 1 credit note, 2 vendor bill, 3 payment
    number        TEXT NOT NULL,
    partner       BLOB NOT NULL,
    issue_day     INTEGER NOT NULL,
    due_day       INTEGER,
    month_idx     INTEGER NOT NULL,
    quarter_idx   INTEGER NOT NULL,
    year_idx      INTEGER NOT NULL,
    currency      TEXT NOT NULL,
    total_units   INTEGER NOT NULL,      -- document currency, positive
    reporting     TEXT NOT NULL,
    revenue_units INTEGER NOT NULL,      -- reporting currency, signed
    cost_units    INTEGER NOT NULL,      -- reporting currency, signed
    campaign      BLOB,
    corrects      TEXT,
    direction     INTEGER,               -- payments: 0 received, 1 sent
    grp           TEXT,
    industry      TEXT,
    owner         BLOB,
    country       TEXT,
    region        TEXT,
    city          TEXT,
    version       INTEGER NOT NULL,
    doc           TEXT NOT NULL,
    PRIMARY KEY (tenant, id),
    UNIQUE (tenant, kind, number),
    FOREIGN KEY (tenant, partner) REFERENCES partners (tenant, id),
    FOREIGN KEY (tenant, campaign) REFERENCES campaigns (tenant, id)
) WITHOUT ROWID;
-- Covering indexes: a report never visits the wide `documents` rows (their JSON `doc` makes every row lookup a random
-- read). Profitability scans `documents_sales` by period and groups on any of its columns; segments probe
-- `documents_partner` per partner; the campaign report reads `documents_campaign`.
CREATE INDEX documents_sales ON documents (tenant, reporting, issue_day, kind, partner, revenue_units, cost_units,
    grp, industry, owner, country, region, city, campaign, month_idx, quarter_idx, year_idx);
CREATE INDEX documents_partner ON documents (tenant, partner, kind, issue_day, reporting, revenue_units);
CREATE INDEX documents_campaign ON documents (tenant, campaign, issue_day, kind, reporting, partner, revenue_units,
    cost_units) WHERE campaign IS NOT NULL;
CREATE INDEX documents_corrects ON documents (tenant, partner, corrects) WHERE corrects IS NOT NULL;

CREATE TABLE document_lines (
    tenant         BLOB NOT NULL,
    document       BLOB NOT NULL,
    n              INTEGER NOT NULL,
    partner        BLOB NOT NULL,
    kind           INTEGER NOT NULL,
    issue_day      INTEGER NOT NULL,
    product        BLOB NOT NULL,
    category       BLOB,
    quantity_units INTEGER NOT NULL,     -- signed: + invoices, − credit notes, 0 otherwise
    revenue_units  INTEGER NOT NULL,
    cost_units     INTEGER NOT NULL,
    PRIMARY KEY (tenant, document, n),
    FOREIGN KEY (tenant, document) REFERENCES documents (tenant, id),
    FOREIGN KEY (tenant, product) REFERENCES products (tenant, id)
) WITHOUT ROWID;
CREATE INDEX document_lines_product ON document_lines (tenant, product, partner, issue_day, quantity_units);
CREATE INDEX document_lines_category ON document_lines (tenant, category, partner, issue_day, quantity_units)
    WHERE category IS NOT NULL;

CREATE TABLE allocations (
    tenant        BLOB NOT NULL,
    document      BLOB NOT NULL,
    n             INTEGER NOT NULL,
    partner       BLOB NOT NULL,
    target_kind   INTEGER NOT NULL,
    target_number TEXT NOT NULL,
    amount_units  INTEGER NOT NULL,
    PRIMARY KEY (tenant, document, n),
    FOREIGN KEY (tenant, document) REFERENCES documents (tenant, id)
) WITHOUT ROWID;
CREATE INDEX allocations_target ON allocations (tenant, partner, target_kind, target_number);

CREATE TABLE campaign_costs (
    tenant        BLOB NOT NULL,
    id            BLOB NOT NULL,
    campaign      BLOB NOT NULL,
    day           INTEGER NOT NULL,
    reporting     TEXT NOT NULL,
    amount_units  INTEGER NOT NULL,
    doc           TEXT NOT NULL,
    PRIMARY KEY (tenant, id),
    FOREIGN KEY (tenant, campaign) REFERENCES campaigns (tenant, id)
) WITHOUT ROWID;
CREATE INDEX campaign_costs_campaign ON campaign_costs (tenant, campaign, day);

CREATE TABLE campaign_targets (
    tenant      BLOB NOT NULL,
    campaign    BLOB NOT NULL,
    partner     BLOB NOT NULL,
    agent       BLOB,
    request     BLOB,
    outcome     INTEGER,
    outcome_at  INTEGER,
    reached_at  INTEGER,
    version     INTEGER NOT NULL,
    doc         TEXT NOT NULL,
    PRIMARY KEY (tenant, campaign, partner),
    FOREIGN KEY (tenant, campaign) REFERENCES campaigns (tenant, id),
    FOREIGN KEY (tenant, partner) REFERENCES partners (tenant, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX campaign_targets_request ON campaign_targets (tenant, request) WHERE request IS NOT NULL;

-- Schema 4: access policies (signed URLs, cookies, tokens) in the database: named policies
-- (sealed: EdgeAuth keys are secrets), prefix rules, and each asset's own policy.

CREATE TABLE access_policies (
    name TEXT PRIMARY KEY,
    config_sealed TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE access_rules (
    prefix TEXT PRIMARY KEY,
    access TEXT NOT NULL
);

ALTER TABLE assets ADD COLUMN access TEXT;

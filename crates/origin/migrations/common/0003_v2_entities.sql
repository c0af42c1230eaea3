-- Schema 3: Azure Media Services v2 entity sets as the management API writes them (Assets,
-- Files, AccessPolicies, Locators, AssetDeliveryPolicies, ContentKeyAuthorizationPolicies and
-- their Options): one row per entity, its properties as the v2 JSON (sealed for the sets
-- that hold secrets: options carry token keys), and the $links between them. The catalog
-- reads them as assets (catalog/ams.rs).

CREATE TABLE ams_entities (
    entity_set TEXT NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (entity_set, id)
);

CREATE TABLE ams_links (
    source_set TEXT NOT NULL,             -- Assets, ContentKeyAuthorizationPolicies
    source_id TEXT NOT NULL,
    nav TEXT NOT NULL,                    -- ContentKeys, DeliveryPolicies, Options
    target_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (source_set, source_id, nav, target_id)
);

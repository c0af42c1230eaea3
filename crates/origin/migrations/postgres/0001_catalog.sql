-- sealcast catalog, schema 1 (PostgreSQL). Entities follow Azure Media Services v2: assets with
-- their files, content keys, authorization policies, delivery policies, locators; every secret
-- column holds a value sealed under the data-encryption key, which the `kek` table holds
-- wrapped by the key-encryption key. Keep in step with ../sqlite/0001_catalog.sql.

CREATE TABLE catalog_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO catalog_state (id, version) VALUES (1, 0);

CREATE TABLE kek (
    id TEXT PRIMARY KEY CHECK (id = 'current'),
    kind TEXT NOT NULL,
    reference TEXT NOT NULL,
    wrapped_dek TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE authorization_policies (
    id TEXT PRIMARY KEY,                 -- nb:ckpid:UUID:…
    name TEXT NOT NULL UNIQUE,
    options_sealed TEXT NOT NULL,        -- the policy's options and restrictions (JSON), sealed
    updated_at BIGINT NOT NULL
);

CREATE TABLE assets (
    id TEXT PRIMARY KEY,                 -- nb:cid:UUID:…
    path TEXT NOT NULL,
    path_key TEXT NOT NULL UNIQUE,       -- lowercased path
    options BIGINT NOT NULL,             -- AssetCreationOptions: 0 None, 1 StorageEncrypted
    clear_lead_secs BIGINT NOT NULL,
    carry_token BIGINT NOT NULL,
    authorization_policy TEXT,           -- default policy name of its keys
    cpix_sealed TEXT,
    storage_key_id TEXT,                 -- KID of its StorageEncryption content key
    storage_key_sealed TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE asset_files (
    asset_id TEXT NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    is_encrypted BIGINT NOT NULL,
    encryption_scheme TEXT NOT NULL,     -- StorageEncryption
    initialization_vector TEXT NOT NULL, -- decimal u64, as AMS writes it
    PRIMARY KEY (asset_id, name)
);

CREATE TABLE content_keys (
    asset_id TEXT NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    id TEXT NOT NULL,                    -- nb:kid:UUID:…
    content_key_type BIGINT NOT NULL,    -- ContentKeyType: 0 cenc, 4 envelope, 6 cbcs
    key_sealed TEXT NOT NULL,
    authorization_policy TEXT,
    PRIMARY KEY (asset_id, position)
);
CREATE INDEX content_keys_id ON content_keys (id);

CREATE TABLE delivery_policies (
    id TEXT PRIMARY KEY,                 -- nb:adpid:UUID:…
    asset_id TEXT NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    protocols BIGINT NOT NULL,           -- AssetDeliveryProtocol flags
    policy_type BIGINT NOT NULL,         -- AssetDeliveryPolicyType
    configuration TEXT NOT NULL          -- licence URLs (JSON)
);
CREATE INDEX delivery_policies_asset ON delivery_policies (asset_id);

CREATE TABLE locators (
    id TEXT PRIMARY KEY,                 -- the GUID in streaming URLs
    asset_path TEXT NOT NULL,
    locator_type BIGINT NOT NULL,        -- LocatorType: 2 OnDemandOrigin
    start_time BIGINT,
    expiry_time BIGINT,
    created_at BIGINT NOT NULL
);

CREATE TABLE audit (
    seq BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    address TEXT NOT NULL,
    action TEXT NOT NULL,
    entity TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only';
END;
$$;
CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit FOR EACH ROW EXECUTE FUNCTION audit_append_only();

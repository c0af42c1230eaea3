-- Schema 2: the management API's protection keys (Azure Media Services v2 key upload) and the
-- content keys uploaded through it, sealed under the data-encryption key like every secret.

CREATE TABLE protection_keys (
    thumbprint TEXT PRIMARY KEY,          -- upper-case hex SHA-1 of the certificate
    certificate TEXT NOT NULL,            -- base64 DER
    private_key_sealed TEXT NOT NULL,     -- PKCS#8, sealed
    active BIGINT NOT NULL,               -- 1: the one handed out; 0: kept for unwrapping
    created_at BIGINT NOT NULL
);

CREATE TABLE ams_content_keys (
    id TEXT PRIMARY KEY,                  -- nb:kid:UUID:…
    name TEXT NOT NULL,
    content_key_type BIGINT NOT NULL,     -- ContentKeyType
    key_sealed TEXT NOT NULL,
    checksum TEXT NOT NULL,
    protection_key_id TEXT NOT NULL,
    authorization_policy_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

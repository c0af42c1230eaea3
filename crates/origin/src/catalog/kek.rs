//! Keys at rest: every secret the database holds (content keys, storage keys, token secrets,
//! CPIX documents) is sealed with AES-256-GCM under one data-encryption key (DEK), with the
//! record's identity as associated data; the DEK itself is stored only wrapped by the
//! key-encryption key (KEK): a local 256-bit key file, or an AWS KMS key (envelope
//! encryption as KMS intends: `GenerateDataKey` once, `Decrypt` at start, never a KMS call per
//! request). A database dump alone opens nothing.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::Engine;
use zeroize::Zeroizing;

/// Where the key-encryption key is.
#[derive(Clone, PartialEq, Eq)]
pub enum KekSource {
    /// A 256-bit key in a file (64 hex digits), mode 0600.
    Local(PathBuf),
    /// An AWS KMS key.
    AwsKms(KmsConfig),
}

impl std::fmt::Debug for KekSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl KekSource {
    /// What kind of KEK this is and where, as the `kek` table records it (never a secret).
    pub fn describe(&self) -> String {
        match self {
            KekSource::Local(p) => format!("local:{}", p.display()),
            KekSource::AwsKms(k) => format!("aws_kms:{}", k.key_id),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            KekSource::Local(_) => "local",
            KekSource::AwsKms(_) => "aws_kms",
        }
    }
}

/// An AWS KMS key and how to reach it (filled from the usual AWS environment by the binary:
/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
/// `AWS_ENDPOINT_URL_KMS`).
#[derive(Clone, PartialEq, Eq)]
pub struct KmsConfig {
    /// Key ARN (or ID or alias).
    pub key_id: String,
    /// Region.
    pub region: String,
    /// Endpoint (default `https://kms.{region}.amazonaws.com`).
    pub endpoint: Option<String>,
    /// Access key ID.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: Zeroizing<String>,
    /// Session token of temporary credentials.
    pub session_token: Option<Zeroizing<String>>,
}

/// The data-encryption key in memory: seals and opens the database's secrets.
pub struct Sealer {
    key: LessSafeKey,
}

/// What the `kek` table holds: which KEK wraps the DEK, and the wrapped DEK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedDek {
    /// `local` or `aws_kms`.
    pub kind: String,
    /// [`KekSource::describe`] of the KEK (for messages; the KMS key is named by the blob).
    pub reference: String,
    /// The wrapped DEK (base64).
    pub wrapped: String,
}

const SEALED_PREFIX: &str = "v1.";
const DEK_AAD: &[u8] = b"sealcast catalog data-encryption key";

impl Sealer {
    fn from_bytes(dek: &[u8]) -> anyhow::Result<Sealer> {
        let key = UnboundKey::new(&AES_256_GCM, dek).map_err(|_| anyhow::anyhow!("the data-encryption key is not 32 bytes"))?;
        Ok(Sealer { key: LessSafeKey::new(key) })
    }

    /// A new DEK wrapped under `kek`, and the sealer holding it.
    pub async fn create(kek: &KekSource, client: &reqwest::Client) -> anyhow::Result<(Sealer, WrappedDek)> {
        match kek {
            KekSource::Local(p) => {
                let kek_bytes = read_local_kek(p)?;
                let mut dek = Zeroizing::new([0u8; 32]);
                aws_lc_rs::rand::fill(dek.as_mut()).map_err(|_| anyhow::anyhow!("no randomness"))?;
                let wrapped = seal_with(&kek_bytes, dek.as_ref(), DEK_AAD)?;
                Ok((Sealer::from_bytes(dek.as_ref())?, WrappedDek { kind: kek.kind().into(), reference: kek.describe(), wrapped }))
            }
            KekSource::AwsKms(k) => {
                let (plain, blob) = kms::generate_data_key(client, k).await?;
                Ok((Sealer::from_bytes(&plain)?, WrappedDek { kind: kek.kind().into(), reference: kek.describe(), wrapped: blob }))
            }
        }
    }

    /// Unwraps the stored DEK with `kek`. A wrong KEK is a clear error.
    pub async fn open(kek: &KekSource, stored: &WrappedDek, client: &reqwest::Client) -> anyhow::Result<Sealer> {
        if stored.kind != kek.kind() {
            bail!("the database's keys are wrapped by a {} key-encryption key ({}), but the configuration gives {}", stored.kind, stored.reference, kek.describe());
        }
        match kek {
            KekSource::Local(p) => {
                let kek_bytes = read_local_kek(p)?;
                let dek = open_with(&kek_bytes, &stored.wrapped, DEK_AAD).map_err(|_| {
                    anyhow::anyhow!("the key-encryption key {} does not open this database's keys (they were wrapped by {}): wrong KEK file?", p.display(), stored.reference)
                })?;
                Sealer::from_bytes(&dek)
            }
            KekSource::AwsKms(k) => {
                let plain = kms::decrypt(client, k, &stored.wrapped).await.with_context(|| format!("unwrapping the database's keys with AWS KMS key {}", k.key_id))?;
                Sealer::from_bytes(&plain)
            }
        }
    }

    /// Seals `plain` bound to `identity` (the record it belongs to).
    pub fn seal(&self, plain: &[u8], identity: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        // aws-lc's generator does not fail on supported platforms; a failure here would mean
        // no secure randomness at all, where refusing to run is the only safe answer.
        aws_lc_rs::rand::fill(&mut nonce).expect("secure randomness");
        let mut buf = Vec::with_capacity(NONCE_LEN + plain.len() + 16);
        buf.extend_from_slice(&nonce);
        let mut body = plain.to_vec();
        // AES-GCM sealing fails only for inputs over 2^36 bytes; secrets here are a few KiB.
        self.key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(identity.as_bytes()), &mut body).expect("AES-GCM sealing of a bounded secret");
        buf.extend_from_slice(&body);
        zeroize::Zeroize::zeroize(&mut body);
        format!("{SEALED_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf))
    }

    /// Opens a sealed value; fails when it was sealed under another DEK or for another record.
    pub fn open_sealed(&self, sealed: &str, identity: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
        let raw = sealed.strip_prefix(SEALED_PREFIX).and_then(|b| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(b).ok()).ok_or_else(|| anyhow::anyhow!("not a sealed value"))?;
        if raw.len() < NONCE_LEN + 16 {
            bail!("sealed value too short");
        }
        let (nonce, body) = raw.split_at(NONCE_LEN);
        let mut body = Zeroizing::new(body.to_vec());
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| anyhow::anyhow!("bad nonce"))?;
        let n = self
            .key
            .open_in_place(nonce, Aad::from(identity.as_bytes()), &mut body)
            .map_err(|_| anyhow::anyhow!("the sealed value does not open with this database's key for this record (another KEK, or moved from another record)"))?
            .len();
        body.truncate(n);
        Ok(body)
    }
}

fn seal_with(key: &[u8], plain: &[u8], aad: &[u8]) -> anyhow::Result<String> {
    let s = Sealer::from_bytes(key)?;
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| anyhow::anyhow!("no randomness"))?;
    let mut body = plain.to_vec();
    s.key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut body).map_err(|_| anyhow::anyhow!("sealing failed"))?;
    let mut buf = nonce.to_vec();
    buf.extend_from_slice(&body);
    zeroize::Zeroize::zeroize(&mut body);
    Ok(base64::engine::general_purpose::STANDARD.encode(buf))
}

fn open_with(key: &[u8], wrapped: &str, aad: &[u8]) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let s = Sealer::from_bytes(key)?;
    let raw = base64::engine::general_purpose::STANDARD.decode(wrapped.trim()).map_err(|_| anyhow::anyhow!("not base64"))?;
    if raw.len() < NONCE_LEN + 16 {
        bail!("too short");
    }
    let (nonce, body) = raw.split_at(NONCE_LEN);
    let mut body = Zeroizing::new(body.to_vec());
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| anyhow::anyhow!("bad nonce"))?;
    let n = s.key.open_in_place(nonce, Aad::from(aad), &mut body).map_err(|_| anyhow::anyhow!("does not open"))?.len();
    body.truncate(n);
    Ok(body)
}

/// Reads a local KEK file: refused when group or others may read it, or when it is not 64 hex
/// digits.
pub fn read_local_kek(p: &Path) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let meta = std::fs::metadata(p).with_context(|| format!("key-encryption key {}", p.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            bail!("key-encryption key {} is readable or writable by group or others (mode {mode:o}): `chmod 600` it", p.display());
        }
    }
    if meta.len() > 256 {
        bail!("key-encryption key {} is not a key file (64 hex digits)", p.display());
    }
    let text = Zeroizing::new(std::fs::read_to_string(p).with_context(|| format!("key-encryption key {}", p.display()))?);
    super::doc::hex_n(text.trim(), 32).map(Zeroizing::new).ok_or_else(|| anyhow::anyhow!("key-encryption key {} is not 64 hex digits (256 bits)", p.display()))
}

/// `sealcast keys init`: writes a new random 256-bit KEK to `p` with mode 0600; never
/// overwrites a file. The key is written to a private temporary file and linked into place, so
/// no reader ever sees a half-written key and two processes racing to create it agree.
pub fn init_local_kek(p: &Path) -> anyhow::Result<bool> {
    if p.exists() {
        return Ok(false);
    }
    let dir = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    private_dir(dir)?;
    let mut key = Zeroizing::new([0u8; 32]);
    aws_lc_rs::rand::fill(key.as_mut()).map_err(|_| anyhow::anyhow!("no randomness"))?;
    let text = Zeroizing::new(format!("{}\n", sealcast_cenc::kid::hex(key.as_ref())));
    let mut id = [0u8; 8];
    aws_lc_rs::rand::fill(&mut id).map_err(|_| anyhow::anyhow!("no randomness"))?;
    let tmp = dir.join(format!(".kek-{}", sealcast_cenc::kid::hex(&id)));
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut f = private_file(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::hard_link(&tmp, p)
    };
    let r = write();
    let _ = std::fs::remove_file(&tmp);
    match r {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e).with_context(|| format!("writing key-encryption key {}", p.display())),
    }
}

/// Creates `dir` (and its parents) readable by its owner only, when it does not exist.
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir).with_context(|| format!("creating {}", dir.display()))
}

#[cfg(unix)]
fn private_file(p: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(p)
}

#[cfg(not(unix))]
fn private_file(p: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().write(true).create_new(true).open(p)
}

/// The two AWS KMS calls envelope encryption needs, signed with AWS Signature Version 4.
///
/// Written here rather than taken from the AWS SDK: two JSON requests do not justify
/// `aws-config` + `aws-sdk-kms` (over a hundred crates on a 2-core build); the signature is
/// checked against botocore's signer in the tests.
pub mod kms {
    use super::*;
    use aws_lc_rs::{digest, hmac};

    /// `GenerateDataKey` (AES_256): the plaintext key and the wrapped blob (base64).
    pub async fn generate_data_key(client: &reqwest::Client, k: &KmsConfig) -> anyhow::Result<(Zeroizing<Vec<u8>>, String)> {
        let body = serde_json::json!({ "KeyId": k.key_id, "KeySpec": "AES_256", "EncryptionContext": { "purpose": "sealcast-catalog" } });
        let v = call(client, k, "GenerateDataKey", &body).await?;
        let plain = field_b64(&v, "Plaintext")?;
        let blob = v.get("CiphertextBlob").and_then(|b| b.as_str()).ok_or_else(|| anyhow::anyhow!("KMS answered without CiphertextBlob"))?;
        Ok((plain, blob.to_string()))
    }

    /// `Decrypt` of a blob `GenerateDataKey` gave.
    pub async fn decrypt(client: &reqwest::Client, k: &KmsConfig, blob: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
        let body = serde_json::json!({ "KeyId": k.key_id, "CiphertextBlob": blob, "EncryptionContext": { "purpose": "sealcast-catalog" } });
        let v = call(client, k, "Decrypt", &body).await?;
        field_b64(&v, "Plaintext")
    }

    fn field_b64(v: &serde_json::Value, name: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
        let s = v.get(name).and_then(|b| b.as_str()).ok_or_else(|| anyhow::anyhow!("KMS answered without {name}"))?;
        base64::engine::general_purpose::STANDARD.decode(s).map(Zeroizing::new).map_err(|_| anyhow::anyhow!("KMS answered a {name} that is not base64"))
    }

    fn endpoint(k: &KmsConfig) -> String {
        k.endpoint.clone().unwrap_or_else(|| format!("https://kms.{}.amazonaws.com", k.region))
    }

    async fn call(client: &reqwest::Client, k: &KmsConfig, action: &str, body: &serde_json::Value) -> anyhow::Result<serde_json::Value> {
        let url = endpoint(k);
        let parsed: http::Uri = url.parse().with_context(|| format!("KMS endpoint '{url}'"))?;
        let host = parsed.authority().map(|a| a.as_str().to_string()).ok_or_else(|| anyhow::anyhow!("KMS endpoint '{url}' has no host"))?;
        let payload = serde_json::to_vec(body)?;
        let now = chrono::Utc::now();
        let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
        let target = format!("TrentService.{action}");
        let headers = sign(k, &host, &amz_date, &target, &payload);
        let mut req = client.post(&url).body(payload);
        for (n, v) in headers {
            req = req.header(n, v);
        }
        let resp = req.send().await.with_context(|| format!("AWS KMS {action} at {url}"))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            // KMS error bodies name the error type and a message, never key material.
            let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            let kind = v.get("__type").and_then(|t| t.as_str()).unwrap_or("error");
            let msg = v.get("message").or_else(|| v.get("Message")).and_then(|t| t.as_str()).unwrap_or("");
            bail!("AWS KMS {action} refused ({status}): {kind} {msg}");
        }
        serde_json::from_str(&text).with_context(|| format!("AWS KMS {action}: the answer is not JSON"))
    }

    /// The headers of a signed KMS request (SigV4, service `kms`).
    pub fn sign(k: &KmsConfig, host: &str, amz_date: &str, target: &str, payload: &[u8]) -> Vec<(String, String)> {
        let date = &amz_date[..8];
        let mut headers: Vec<(String, String)> = vec![
            ("content-type".into(), "application/x-amz-json-1.1".into()),
            ("host".into(), host.into()),
            ("x-amz-date".into(), amz_date.into()),
            ("x-amz-target".into(), target.into()),
        ];
        if let Some(t) = &k.session_token {
            headers.push(("x-amz-security-token".into(), t.to_string()));
        }
        headers.sort();
        let signed: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
        let signed = signed.join(";");
        let canonical_headers: String = headers.iter().map(|(n, v)| format!("{n}:{}\n", v.trim())).collect();
        let canonical = format!("POST\n/\n\n{canonical_headers}\n{signed}\n{}", hex(digest::digest(&digest::SHA256, payload).as_ref()));
        let scope = format!("{date}/{}/kms/aws4_request", k.region);
        let to_sign = format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", hex(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref()));
        let mac = |key: &[u8], data: &[u8]| hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data).as_ref().to_vec();
        let secret = Zeroizing::new(format!("AWS4{}", k.secret_access_key.as_str()));
        let k_date = Zeroizing::new(mac(secret.as_bytes(), date.as_bytes()));
        let k_region = Zeroizing::new(mac(&k_date, k.region.as_bytes()));
        let k_service = Zeroizing::new(mac(&k_region, b"kms"));
        let k_signing = Zeroizing::new(mac(&k_service, b"aws4_request"));
        let signature = hex(&mac(&k_signing, to_sign.as_bytes()));
        headers.retain(|(n, _)| n != "host");
        headers.push(("authorization".into(), format!("AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}", k.access_key_id)));
        headers
    }

    fn hex(b: &[u8]) -> String {
        sealcast_cenc::kid::hex(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_are_bound_to_key_and_record() {
        let a = Sealer::from_bytes(&[7u8; 32]).unwrap();
        let b = Sealer::from_bytes(&[8u8; 32]).unwrap();
        let s = a.seal(b"secret key bytes", "content-key/x/0");
        assert!(!s.contains("secret"));
        assert_eq!(&a.open_sealed(&s, "content-key/x/0").unwrap()[..], b"secret key bytes");
        assert!(a.open_sealed(&s, "content-key/y/0").is_err(), "moved to another record");
        assert!(b.open_sealed(&s, "content-key/x/0").is_err(), "another DEK");
        assert!(a.open_sealed("v1.AAAA", "content-key/x/0").is_err());
        assert!(a.open_sealed("garbage", "content-key/x/0").is_err());
        // Two seals of one value differ (fresh nonce).
        assert_ne!(s, a.seal(b"secret key bytes", "content-key/x/0"));
    }

    #[test]
    fn local_kek_file_rules() {
        let dir = std::env::temp_dir().join(format!("sealcast-kek-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let p = dir.join("kek");
        assert!(init_local_kek(&p).unwrap());
        assert!(!init_local_kek(&p).unwrap(), "never overwritten");
        assert_eq!(read_local_kek(&p).unwrap().len(), 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
            let e = read_local_kek(&p).unwrap_err().to_string();
            assert!(e.contains("chmod 600"), "{e}");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        std::fs::write(&p, "not hex\n").unwrap();
        assert!(read_local_kek(&p).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}

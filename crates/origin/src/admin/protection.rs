//! Protection keys of Azure Media Services v2's key-upload flow: the origin holds RSA-2048 key
//! pairs with self-signed X.509 certificates; a client fetches the certificate
//! (`GetProtectionKeyId` → thumbprint, `GetProtectionKey` → DER), encrypts a content key to
//! it with RSA-OAEP (SHA-1, as the v2 SDK's `RSAOAEPKeyExchangeFormatter` does) and uploads
//! it with a checksum. The private keys are stored sealed under the catalog's KEK; rotated
//! ones stay for unwrapping keys uploaded to them.

use anyhow::{bail, Context};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeySize, OaepPrivateDecryptingKey, OaepPublicEncryptingKey, PrivateDecryptingKey, PublicEncryptingKey, OAEP_SHA1_MGF1SHA1};
use base64::Engine;
use sealcast_drm::Kid;
use zeroize::Zeroizing;

/// A new protection key: its certificate (DER), thumbprint and private key (PKCS#8 DER).
pub struct NewProtectionKey {
    /// Upper-case hex SHA-1 of the certificate, as Windows shows thumbprints.
    pub thumbprint: String,
    /// The self-signed certificate, DER.
    pub certificate: Vec<u8>,
    /// The RSA private key, PKCS#8 DER.
    pub private_key: Zeroizing<Vec<u8>>,
}

/// Generates an RSA-2048 key pair and a self-signed certificate for it (valid ten years).
pub fn generate(common_name: &str) -> anyhow::Result<NewProtectionKey> {
    let pair = aws_lc_rs::rsa::KeyPair::generate(KeySize::Rsa2048).map_err(|_| anyhow::anyhow!("RSA key generation failed"))?;
    let pkcs8 = Zeroizing::new(pair.as_der().map_err(|_| anyhow::anyhow!("RSA key encoding failed"))?.as_ref().to_vec());
    let key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8.as_slice()), &rcgen::PKCS_RSA_SHA256).context("loading the RSA key")?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).context("certificate parameters")?;
    params.distinguished_name.push(rcgen::DnType::CommonName, common_name);
    let now = chrono::Utc::now().timestamp();
    params.not_before = rcgen::date_time_ymd(1970, 1, 1) + time_from_unix(now - 300);
    params.not_after = params.not_before + time_from_unix(10 * 365 * 86_400);
    let cert = params.self_signed(&key).context("signing the certificate")?;
    let der = cert.der().to_vec();
    Ok(NewProtectionKey { thumbprint: thumbprint(&der), certificate: der, private_key: pkcs8 })
}

fn time_from_unix(secs: i64) -> std::time::Duration {
    std::time::Duration::from_secs(secs.max(0) as u64)
}

/// A certificate's thumbprint: upper-case hex of its SHA-1.
pub fn thumbprint(der: &[u8]) -> String {
    sealcast_cenc::kid::hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, der).as_ref()).to_ascii_uppercase()
}

/// Decrypts an `EncryptedContentKey` (RSA-OAEP, SHA-1) with a protection key.
pub fn unwrap_content_key(private_key: &[u8], encrypted: &[u8]) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let key = PrivateDecryptingKey::from_pkcs8(private_key).map_err(|_| anyhow::anyhow!("stored protection key unusable"))?;
    let oaep = OaepPrivateDecryptingKey::new(key).map_err(|_| anyhow::anyhow!("stored protection key unusable"))?;
    let mut out = Zeroizing::new(vec![0u8; oaep.min_output_size()]);
    let n = oaep.decrypt(&OAEP_SHA1_MGF1SHA1, encrypted, &mut out, None).map_err(|_| anyhow::anyhow!("EncryptedContentKey does not decrypt with this protection key (RSA-OAEP)"))?.len();
    out.truncate(n);
    Ok(out)
}

/// Encrypts a key to a certificate's RSA public key (RSA-OAEP, SHA-1): `RebindContentKey`
/// with a certificate, the documented way to move keys out without re-encrypting content.
pub fn wrap_to_certificate(certificate_der: &[u8], key: &[u8]) -> anyhow::Result<Vec<u8>> {
    let spki = sealcast_drm::auth::certificate_spki_der(certificate_der).context("the certificate is not X.509 DER")?;
    let public = PublicEncryptingKey::from_der(spki).map_err(|_| anyhow::anyhow!("the certificate's key is not RSA"))?;
    let oaep = OaepPublicEncryptingKey::new(public).map_err(|_| anyhow::anyhow!("the certificate's key is not RSA"))?;
    let mut out = vec![0u8; oaep.ciphertext_size()];
    let n = oaep.encrypt(&OAEP_SHA1_MGF1SHA1, key, &mut out, None).map_err(|_| anyhow::anyhow!("the key does not fit the certificate's RSA key"))?.len();
    out.truncate(n);
    Ok(out)
}

/// The v2 `Checksum` of a content key: AES-ECB (128 or 256 by the key's length) of the KID in
/// .NET `Guid.ToByteArray()` order, first 8 bytes, base64.
pub fn checksum(kid: Kid, key: &[u8]) -> anyhow::Result<String> {
    use aws_lc_rs::cipher::{EncryptingKey, UnboundCipherKey, AES_128, AES_256};
    let alg = match key.len() {
        16 => &AES_128,
        32 => &AES_256,
        n => bail!("a {n}-byte key has no checksum (16 or 32 bytes)"),
    };
    let k = EncryptingKey::ecb(UnboundCipherKey::new(alg, key).map_err(|_| anyhow::anyhow!("bad key"))?).map_err(|_| anyhow::anyhow!("bad key"))?;
    let mut block = kid.to_playready_bytes();
    k.encrypt(&mut block).map_err(|_| anyhow::anyhow!("AES-ECB failed"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(&block[..8]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_the_verified_vector() {
        // FORMATS.md: Shaka Packager's PlayReady CHECKSUM, recomputed with openssl.
        let kid = Kid::parse("abba271e-8bcf-552b-bd2e-86a434a9a5d9").unwrap();
        let key = crate::catalog::doc::hex_n("69eaa802a6763af979e8d1940fb88392", 16).unwrap();
        assert_eq!(checksum(kid, &key).unwrap(), "BB31ycMlSig=");
    }

    #[test]
    fn wrap_and_unwrap_round_trip() {
        let p = generate("sealcast test").unwrap();
        assert_eq!(p.thumbprint.len(), 40);
        let wrapped = wrap_to_certificate(&p.certificate, b"0123456789abcdef").unwrap();
        assert_eq!(wrapped.len(), 256);
        assert_eq!(&unwrap_content_key(&p.private_key, &wrapped).unwrap()[..], b"0123456789abcdef");
        assert!(unwrap_content_key(&p.private_key, &wrapped[1..]).is_err());
    }
}

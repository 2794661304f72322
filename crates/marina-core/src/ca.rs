//! The control plane's certificate authority: it signs the client
//! certificates host agents present on every call after they join (mutual
//! TLS, issue 23).
//!
//! Rules:
//! - The CA's key is made at first start in `<data-dir>/ca/ca.key` (0600, in
//!   a 0700 directory) with its self-signed certificate `ca.pem`; both are
//!   kept from then on (agents trust `ca.pem`).
//! - An agent makes its own ECDSA P-256 key and sends only the public point
//!   (65 bytes, uncompressed); its private key never leaves its host. The
//!   certificate names the host id (common name and DNS name) and is valid
//!   for client and server authentication for `AGENT_CERT_DAYS`.

use std::path::{Path, PathBuf};

use marina_common::Error;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PublicKeyData, SignatureAlgorithm,
};

/// How long an agent's certificate is valid.
pub const AGENT_CERT_DAYS: i64 = 365;

/// The CA's common name (its issuer name in every agent certificate).
const CA_NAME: &str = "Marina control plane CA";

/// The control plane's CA.
pub struct ControlPlaneCa {
    key: KeyPair,
    cert_pem: String,
}

impl std::fmt::Debug for ControlPlaneCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlaneCa").field("key", &"<redacted>").finish()
    }
}

fn ca_params() -> Result<CertificateParams, Error> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(Error::internal)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_NAME);
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(p)
}

impl ControlPlaneCa {
    /// Loads the CA of `data_dir`, making it at first start.
    pub fn open(data_dir: &Path) -> Result<Self, Error> {
        let dir = data_dir.join("ca");
        let (key_path, cert_path): (PathBuf, PathBuf) = (dir.join("ca.key"), dir.join("ca.pem"));
        if key_path.exists() && cert_path.exists() {
            let read = |p: &Path| {
                std::fs::read_to_string(p).map_err(|e| Error::internal(format!("reading {}: {e}", p.display())))
            };
            let key = KeyPair::from_pem(&read(&key_path)?).map_err(|e| Error::internal(format!("ca.key: {e}")))?;
            return Ok(ControlPlaneCa {
                key,
                cert_pem: read(&cert_path)?,
            });
        }
        marina_common::files::create_private_dir(&dir)
            .map_err(|e| Error::internal(format!("creating {}: {e}", dir.display())))?;
        let key = KeyPair::generate().map_err(Error::internal)?;
        let mut params = ca_params()?;
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(3650);
        let cert = params.self_signed(&key).map_err(Error::internal)?;
        crate::secrets::write_secret_file(&key_path, key.serialize_pem().as_bytes())?;
        crate::secrets::write_secret_file(&cert_path, cert.pem().as_bytes())?;
        Ok(ControlPlaneCa {
            key,
            cert_pem: cert.pem(),
        })
    }

    /// The CA certificate agents trust.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A certificate for the agent of `host_id` whose public key is the
    /// uncompressed P-256 point `public_key`.
    pub fn issue_agent_cert(&self, host_id: &str, public_key: &[u8]) -> Result<String, Error> {
        let key = AgentKey::parse(public_key)?;
        let mut p = CertificateParams::new(vec![host_id.to_string()]).map_err(Error::internal)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, host_id);
        p.distinguished_name = dn;
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth, ExtendedKeyUsagePurpose::ServerAuth];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.use_authority_key_identifier_extension = true;
        let now = time::OffsetDateTime::now_utc();
        p.not_before = now - time::Duration::minutes(5);
        p.not_after = now + time::Duration::days(AGENT_CERT_DAYS);
        let issuer = Issuer::new(ca_params()?, &self.key);
        Ok(p.signed_by(&key, &issuer).map_err(Error::internal)?.pem())
    }
}

/// An agent's public key: an uncompressed P-256 point.
struct AgentKey(Vec<u8>);

impl AgentKey {
    fn parse(raw: &[u8]) -> Result<Self, Error> {
        if raw.len() != 65 || raw[0] != 0x04 {
            return Err(Error::InvalidRequest(
                "public_key must be an uncompressed P-256 point (65 bytes, base64)".into(),
            ));
        }
        Ok(AgentKey(raw.to_vec()))
    }
}

impl PublicKeyData for AgentKey {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_ECDSA_P256_SHA256
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_ca_is_made_once_kept_private_and_signs_agent_keys() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ControlPlaneCa::open(dir.path()).unwrap();
        let mode = |p: &str| std::fs::metadata(dir.path().join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode("ca"), mode("ca/ca.key")), (0o700, 0o600));
        let again = ControlPlaneCa::open(dir.path()).unwrap();
        assert_eq!(again.cert_pem(), ca.cert_pem(), "a second start keeps the CA");
        let agent = KeyPair::generate().unwrap();
        let pem = again
            .issue_agent_cert("hs_0123456789abcdef", agent.public_key_raw())
            .unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
        // rustls accepts the chain: the agent's certificate verifies against
        // the CA certificate saved at the first start.
        let der = |p: &str| {
            let b64: String = p.lines().filter(|l| !l.starts_with("-----")).collect();
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.decode(b64).unwrap()
        };
        let mut roots = rustls::RootCertStore::empty();
        roots.add(der(ca.cert_pem()).into()).unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots.into(),
            rustls::crypto::ring::default_provider().into(),
        )
        .build()
        .unwrap();
        let leaf = rustls::pki_types::CertificateDer::from(der(&pem));
        verifier
            .verify_client_cert(&leaf, &[], rustls::pki_types::UnixTime::now())
            .expect("the agent certificate verifies against the CA");
        for bad in [&[4u8; 64][..], &[2u8; 65][..], b""] {
            assert!(matches!(
                ca.issue_agent_cert("hs_x", bad),
                Err(Error::InvalidRequest(_))
            ));
        }
    }
}

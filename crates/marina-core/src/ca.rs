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
    /// The control plane's own client identity (PEM certificate, PEM key).
    own: (String, String),
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
            let mut ca = ControlPlaneCa {
                key,
                cert_pem: read(&cert_path)?,
                own: (String::new(), String::new()),
            };
            ca.own = ca.own_identity(&dir)?;
            return Ok(ca);
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
        let mut ca = ControlPlaneCa {
            key,
            cert_pem: cert.pem(),
            own: (String::new(), String::new()),
        };
        ca.own = ca.own_identity(&dir)?;
        Ok(ca)
    }

    /// The control plane's certificate and key in `dir` (`cp.pem`,
    /// `cp.key`): kept while more than a third of its life is left, made
    /// anew otherwise.
    fn own_identity(&self, dir: &Path) -> Result<(String, String), Error> {
        let (cert_path, key_path) = (dir.join("cp.pem"), dir.join("cp.key"));
        let stamp = dir.join("cp.not-after");
        let now = time::OffsetDateTime::now_utc();
        let fresh = std::fs::read_to_string(&stamp)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .is_some_and(|not_after| not_after - now.unix_timestamp() > AGENT_CERT_DAYS * 86_400 / 3);
        if fresh && let (Ok(cert), Ok(key)) = (std::fs::read_to_string(&cert_path), std::fs::read_to_string(&key_path))
        {
            return Ok((cert, key));
        }
        let key = KeyPair::generate().map_err(Error::internal)?;
        let not_after = now + time::Duration::days(AGENT_CERT_DAYS);
        let cert = self.sign(
            marina_agent::tls::CONTROL_PLANE_NAME,
            marina_agent::tls::CONTROL_PLANE_NAME,
            &key,
            not_after,
        )?;
        // The key first: a crash in between leaves no certificate without it.
        crate::secrets::write_secret_file(&key_path, key.serialize_pem().as_bytes())?;
        crate::secrets::write_secret_file(&cert_path, cert.as_bytes())?;
        crate::secrets::write_secret_file(&stamp, not_after.unix_timestamp().to_string().as_bytes())?;
        Ok((cert, key.serialize_pem()))
    }

    /// The control plane's identity for calls to agents.
    pub fn identity(&self) -> Result<marina_agent::tls::Identity, Error> {
        marina_agent::tls::Identity::from_pem(&self.own.0, &self.own.1, &self.cert_pem).map_err(Error::internal)
    }

    /// A certificate for `key` naming `common_name` and the DNS name `dns`.
    fn sign(
        &self,
        common_name: &str,
        dns: &str,
        key: &impl PublicKeyData,
        not_after: time::OffsetDateTime,
    ) -> Result<String, Error> {
        let mut p = CertificateParams::new(vec![dns.to_string()]).map_err(Error::internal)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        p.distinguished_name = dn;
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth, ExtendedKeyUsagePurpose::ServerAuth];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.use_authority_key_identifier_extension = true;
        p.not_before = time::OffsetDateTime::now_utc() - time::Duration::minutes(5);
        p.not_after = not_after;
        let issuer = Issuer::new(ca_params()?, &self.key);
        Ok(p.signed_by(key, &issuer).map_err(Error::internal)?.pem())
    }

    /// The CA certificate agents trust.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A certificate for the agent of `host_id` whose public key is the
    /// uncompressed P-256 point `public_key`.
    pub fn issue_agent_cert(&self, host_id: &str, public_key: &[u8]) -> Result<String, Error> {
        let key = AgentKey::parse(public_key)?;
        let not_after = time::OffsetDateTime::now_utc() + time::Duration::days(AGENT_CERT_DAYS);
        self.sign(host_id, &marina_agent::tls::agent_name(host_id), &key, not_after)
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

    use rustls::pki_types::pem::PemObject;

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

    /// A TLS handshake between `client` and `server`, in memory.
    fn handshake(client: rustls::ClientConfig, server: std::sync::Arc<rustls::ServerConfig>) -> Result<(), String> {
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let mut c = rustls::ClientConnection::new(std::sync::Arc::new(client), name).map_err(|e| e.to_string())?;
        let mut s = rustls::ServerConnection::new(server).map_err(|e| e.to_string())?;
        for _ in 0..20 {
            let mut buf = Vec::new();
            c.write_tls(&mut buf).unwrap();
            s.read_tls(&mut buf.as_slice()).unwrap();
            s.process_new_packets().map_err(|e| format!("server: {e}"))?;
            let mut buf = Vec::new();
            s.write_tls(&mut buf).unwrap();
            c.read_tls(&mut buf.as_slice()).unwrap();
            c.process_new_packets().map_err(|e| format!("client: {e}"))?;
            if !c.is_handshaking() && !s.is_handshaking() {
                return Ok(());
            }
        }
        Err("the handshake did not finish".into())
    }

    #[test]
    fn agents_admit_their_ca_and_answer_only_for_themselves() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ControlPlaneCa::open(dir.path()).unwrap();
        let mode = |p: &str| std::fs::metadata(dir.path().join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("ca/cp.key"), 0o600);
        let agent = |host: &str| {
            let key = KeyPair::generate().unwrap();
            let cert = ca.issue_agent_cert(host, key.public_key_raw()).unwrap();
            marina_agent::tls::Identity::from_pem(&cert, &key.serialize_pem(), ca.cert_pem()).unwrap()
        };
        let leaf_of = |host: &str| {
            let key = KeyPair::generate().unwrap();
            let pem = ca.issue_agent_cert(host, key.public_key_raw()).unwrap();
            rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
        };
        let (a, b) = (agent("hs_aaaaaaaaaaaaaaaa"), agent("hs_bbbbbbbbbbbbbbbb"));
        let server_a = a.agent_server_config().unwrap();
        let cp = ca.identity().unwrap();
        handshake(cp.client_config("hs_aaaaaaaaaaaaaaaa").unwrap(), server_a.clone())
            .expect("the control plane reaches the agent it means");
        let e = handshake(cp.client_config("hs_bbbbbbbbbbbbbbbb").unwrap(), server_a.clone()).unwrap_err();
        assert!(e.starts_with("client:"), "agent a cannot answer for host b: {e}");
        // Another agent passes the TLS layer (it may pull a copy it was
        // offered); the router tells the names apart.
        handshake(b.client_config("hs_aaaaaaaaaaaaaaaa").unwrap(), server_a.clone()).expect("agent b reaches agent a");
        let names = a.caller_names().unwrap();
        let b_leaf = leaf_of("hs_bbbbbbbbbbbbbbbb");
        assert!(names.names(&b_leaf, &marina_agent::tls::agent_name("hs_bbbbbbbbbbbbbbbb")));
        assert!(!names.names(&b_leaf, marina_agent::tls::CONTROL_PLANE_NAME));
        assert!(!names.names(&b_leaf, &marina_agent::tls::agent_name("hs_aaaaaaaaaaaaaaaa")));
        let cp_leaf = rustls::pki_types::CertificateDer::from_pem_slice(ca.own.0.as_bytes()).unwrap();
        assert!(names.names(&cp_leaf, marina_agent::tls::CONTROL_PLANE_NAME));
        // A certificate of another CA names nothing.
        let other = tempfile::tempdir().unwrap();
        let other = ControlPlaneCa::open(other.path()).unwrap();
        let foreign = rustls::pki_types::CertificateDer::from_pem_slice(other.own.0.as_bytes()).unwrap();
        assert!(!names.names(&foreign, marina_agent::tls::CONTROL_PLANE_NAME));
        let e = handshake(
            other.identity().unwrap().client_config("hs_aaaaaaaaaaaaaaaa").unwrap(),
            server_a.clone(),
        )
        .unwrap_err();
        assert!(e.contains("BadSignature"), "another CA's side is refused: {e}");
        // A restarted control plane keeps its identity.
        let again = ControlPlaneCa::open(dir.path()).unwrap();
        assert_eq!(again.own.0, ca.own.0);
        handshake(
            again.identity().unwrap().client_config("hs_aaaaaaaaaaaaaaaa").unwrap(),
            server_a,
        )
        .unwrap();
        // A control-plane certificate near its end is made anew at start.
        std::fs::write(dir.path().join("ca/cp.not-after"), "0").unwrap();
        let renewed = ControlPlaneCa::open(dir.path()).unwrap();
        assert_ne!(renewed.own.0, ca.own.0);
    }
}

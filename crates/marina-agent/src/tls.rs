//! Mutual TLS between the control plane and its agents, both ways signed by
//! the control plane's CA (`marina-core/src/ca.rs`).
//!
//! Rules:
//! - An agent's certificate names `agent_name(host_id)`; the control
//!   plane's names `CONTROL_PLANE_NAME`. Both are signed by the one CA and
//!   valid for client and server authentication.
//! - The agent's TLS layer admits any client whose certificate chains to
//!   the CA; its router (`crate::server`) then serves the node routes only
//!   to a certificate naming the control plane, and the peer routes
//!   (`crate::peer`) only to the agent a one-time ticket names: another
//!   agent's certificate (same CA) cannot command it.
//! - The control plane checks that an agent's server certificate names the
//!   host it meant to call, whatever address it dialled (an agent cannot
//!   answer for another host).
//! - One crypto provider (ring), given explicitly: nothing is installed
//!   process-wide.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, SignatureScheme};

/// The name the control plane's own certificate carries.
pub const CONTROL_PLANE_NAME: &str = "control-plane.marina.internal";

/// The name an agent's certificate carries for `host_id` (a DNS name: the
/// id's `_` becomes `-`).
pub fn agent_name(host_id: &str) -> String {
    format!("{}.agents.marina.internal", host_id.replace('_', "-"))
}

/// A key, its certificate and the CA both sides trust, from PEM.
pub struct Identity {
    cert: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    ca: CertificateDer<'static>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").field("key", &"<redacted>").finish()
    }
}

/// A TLS set-up that cannot be built.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(String);

impl TlsError {
    pub fn new(message: impl Into<String>) -> Self {
        TlsError(message.into())
    }
}

impl Identity {
    pub fn from_pem(cert_pem: &str, key_pem: &str, ca_pem: &str) -> Result<Self, TlsError> {
        let cert: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| TlsError(format!("reading the certificate: {e}")))?;
        if cert.is_empty() {
            return Err(TlsError("no certificate in the PEM".into()));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| TlsError(format!("reading the private key: {e}")))?;
        let ca = CertificateDer::from_pem_slice(ca_pem.as_bytes())
            .map_err(|e| TlsError(format!("reading the CA certificate: {e}")))?;
        Ok(Identity { cert, key, ca })
    }

    fn roots(&self) -> Result<Arc<rustls::RootCertStore>, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(self.ca.clone())
            .map_err(|e| TlsError(format!("the CA certificate: {e}")))?;
        Ok(Arc::new(roots))
    }

    /// The agent's server: clients must present a certificate signed by
    /// the CA (whose name the router checks, see `CallerNames`).
    pub fn agent_server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let provider = provider();
        let verifier = WebPkiClientVerifier::builder_with_provider(self.roots()?, provider.clone())
            .build()
            .map_err(|e| TlsError(e.to_string()))?;
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.cert.clone(), self.key.clone_key())
            .map_err(|e| TlsError(format!("certificate and key do not fit together: {e}")))?;
        Ok(Arc::new(config))
    }

    /// Checks which name a caller's certificate (already verified by the
    /// TLS layer) carries.
    pub fn caller_names(&self) -> Result<CallerNames, TlsError> {
        let verifier = WebPkiServerVerifier::builder_with_provider(self.roots()?, provider())
            .build()
            .map_err(|e| TlsError(e.to_string()))?;
        Ok(CallerNames { verifier })
    }

    /// A client (the control plane's, or an agent's pulling a copy from
    /// another) for the agent of `host_id`.
    pub fn client_config(&self, host_id: &str) -> Result<rustls::ClientConfig, TlsError> {
        let provider = provider();
        let inner = WebPkiServerVerifier::builder_with_provider(self.roots()?, provider.clone())
            .build()
            .map_err(|e| TlsError(e.to_string()))?;
        let name =
            ServerName::try_from(agent_name(host_id)).map_err(|e| TlsError(format!("host id {host_id}: {e}")))?;
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedName { inner, name }))
            .with_client_auth_cert(self.cert.clone(), self.key.clone_key())
            .map_err(|e| TlsError(format!("certificate and key do not fit together: {e}")))
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Which name a caller's certificate carries: the name check of a server
/// certificate, applied to a client's (both are issued by the one CA for
/// client and server authentication).
pub struct CallerNames {
    verifier: Arc<WebPkiServerVerifier>,
}

impl std::fmt::Debug for CallerNames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallerNames")
    }
}

impl CallerNames {
    /// Whether `cert` chains to the CA and names `name`.
    pub fn names(&self, cert: &CertificateDer<'_>, name: &str) -> bool {
        let Ok(name) = ServerName::try_from(name.to_string()) else {
            return false;
        };
        self.verifier
            .verify_server_cert(cert, &[], &name, &[], UnixTime::now())
            .is_ok()
    }
}

/// Checks an agent's server certificate against the host meant, not the
/// address dialled.
#[derive(Debug)]
struct PinnedName {
    inner: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for PinnedName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _dialled: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

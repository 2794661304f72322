//! Mutual TLS between the control plane and its agents, both ways signed by
//! the control plane's CA (`marina-core/src/ca.rs`).
//!
//! Rules:
//! - An agent's certificate names `agent_name(host_id)`; the control
//!   plane's names `CONTROL_PLANE_NAME`. Both are signed by the one CA and
//!   valid for client and server authentication.
//! - The agent serves only a client whose certificate chains to the CA
//!   **and** names the control plane: another agent's certificate (same
//!   CA) cannot command it.
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
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

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

    /// The agent's server: clients must present the control plane's
    /// certificate.
    pub fn agent_server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let provider = provider();
        let roots = self.roots()?;
        let inner = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| TlsError(e.to_string()))?;
        let names = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| TlsError(e.to_string()))?;
        let verifier = Arc::new(ControlPlaneOnly { inner, names });
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.cert.clone(), self.key.clone_key())
            .map_err(|e| TlsError(format!("certificate and key do not fit together: {e}")))?;
        Ok(Arc::new(config))
    }

    /// The control plane's client for the agent of `host_id`.
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

/// Accepts a client certificate only when it chains to the CA and names
/// the control plane.
#[derive(Debug)]
struct ControlPlaneOnly {
    inner: Arc<dyn ClientCertVerifier>,
    names: Arc<WebPkiServerVerifier>,
}

impl ClientCertVerifier for ControlPlaneOnly {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.inner.verify_client_cert(end_entity, intermediates, now)?;
        let name = ServerName::try_from(CONTROL_PLANE_NAME).map_err(|e| rustls::Error::General(e.to_string()))?;
        self.names
            .verify_server_cert(end_entity, intermediates, &name, &[], now)
            .map_err(|_| rustls::Error::General("the client certificate is not the control plane's".into()))?;
        Ok(ClientCertVerified::assertion())
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

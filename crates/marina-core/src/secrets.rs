//! Secrets at rest and token hashing.
//!
//! - Cluster passwords Marina must read back (management, replication) are
//!   sealed with ChaCha20-Poly1305 under a key kept in `<data-dir>/secret.key`
//!   (32 random bytes, mode 0600, created on first start).
//! - A sealed secret is bound to its row: the AEAD's associated data names
//!   the table and the row's id (`SealedFor`), so a ciphertext copied into
//!   another row (another tenant's cluster or OVH application) does not
//!   open. Sealed values carry a `v2:` prefix; older values (no prefix, no
//!   associated data) still open, and are bound when next written.
//! - API token secrets are never stored: only their SHA-256 is.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::Rng;
use sha2::{Digest, Sha256};

use marina_common::Error;

/// Token secrets start with this, so secret scanners can find leaked ones.
pub const TOKEN_PREFIX: &str = "mrn_";

/// The row a sealed secret belongs to (the AEAD's associated data).
#[derive(Debug, Clone, Copy)]
pub enum SealedFor<'a> {
    /// `clusters.secrets_enc` of the cluster with this id.
    Cluster(&'a str),
    /// `ovh_applications.secret_sealed` of the application with this key.
    OvhApplication(&'a str),
}

impl SealedFor<'_> {
    fn associated_data(&self) -> Vec<u8> {
        match self {
            SealedFor::Cluster(id) => format!("clusters:{id}"),
            SealedFor::OvhApplication(key) => format!("ovh_applications:{key}"),
        }
        .into_bytes()
    }
}

/// Prefix of sealed values bound to their row.
const BOUND: &str = "v2:";

/// Seals and opens secrets with the data dir's key.
pub struct SecretBox {
    /// The AEAD cipher keyed with `secret.key`.
    cipher: ChaCha20Poly1305,
}

impl SecretBox {
    /// Loads `<dir>/secret.key`, creating it (0600) when absent.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        let path = dir.join("secret.key");
        let key = match std::fs::read(&path) {
            Ok(k) if k.len() == 32 => k,
            Ok(_) => return Err(Error::internal(format!("{} is not a 32-byte key", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut k = vec![0u8; 32];
                rand::rng().fill(&mut k[..]);
                write_secret_file(&path, &k)?;
                k
            }
            Err(e) => return Err(Error::internal(format!("reading {}: {e}", path.display()))),
        };
        Ok(SecretBox {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
        })
    }

    /// Encrypts `plain` for the row `row`: `v2:` + base64(nonce ‖ ciphertext).
    pub fn seal(&self, plain: &[u8], row: SealedFor<'_>) -> String {
        use chacha20poly1305::aead::Payload;
        let mut nonce = [0u8; 12];
        rand::rng().fill(&mut nonce);
        let aad = row.associated_data();
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad: &aad })
            .expect("ChaCha20-Poly1305 encryption cannot fail for in-memory input");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        format!("{BOUND}{}", B64.encode(out))
    }

    /// Decrypts what `seal` produced for the same row.
    pub fn open_sealed(&self, sealed: &str, row: SealedFor<'_>) -> Result<Vec<u8>, Error> {
        use chacha20poly1305::aead::Payload;
        let (text, aad) = match sealed.strip_prefix(BOUND) {
            Some(rest) => (rest, row.associated_data()),
            None => (sealed, Vec::new()),
        };
        let raw = B64
            .decode(text)
            .map_err(|_| Error::internal("sealed secret is not base64"))?;
        if raw.len() < 12 {
            return Err(Error::internal("sealed secret is too short"));
        }
        let (nonce, ct) = raw.split_at(12);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map_err(|_| {
                Error::internal(format!(
                    "sealed secret of {row:?} does not open with secret.key for this row"
                ))
            })
    }
}

/// Writes a file readable by the owner only (created 0600, never wider).
pub fn write_secret_file(path: &Path, contents: &[u8]) -> Result<(), Error> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::internal(format!("creating {}: {e}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::internal(format!("chmod {}: {e}", path.display())))?;
    f.write_all(contents)
        .map_err(|e| Error::internal(format!("writing {}: {e}", path.display())))?;
    f.sync_all()
        .map_err(|e| Error::internal(format!("syncing {}: {e}", path.display())))
}

/// A new token secret: `mrn_` + 32 random bytes in hex.
pub fn new_token_secret() -> String {
    format!("{TOKEN_PREFIX}{}", marina_common::ids::random_secret(32))
}

/// The stored form of a token secret.
pub fn hash_token(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trips_and_key_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let b = SecretBox::open(dir.path()).unwrap();
        let row = SealedFor::Cluster("cl_a");
        let sealed = b.seal(b"hunter2", row);
        assert!(!sealed.contains("hunter2"));
        assert_eq!(b.open_sealed(&sealed, row).unwrap(), b"hunter2");
        // Reopening uses the same key.
        let b2 = SecretBox::open(dir.path()).unwrap();
        assert_eq!(b2.open_sealed(&sealed, row).unwrap(), b"hunter2");
        let mode = std::fs::metadata(dir.path().join("secret.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // Tampering is detected.
        let mut raw = B64.decode(sealed.strip_prefix(BOUND).unwrap()).unwrap();
        raw[13] ^= 1;
        assert!(b.open_sealed(&format!("{BOUND}{}", B64.encode(raw)), row).is_err());
    }

    #[test]
    fn a_sealed_secret_opens_only_in_its_own_row() {
        let dir = tempfile::tempdir().unwrap();
        let b = SecretBox::open(dir.path()).unwrap();
        let sealed = b.seal(b"mgmt-password", SealedFor::Cluster("cl_victim"));
        // Copied into the attacker's cluster row, or an OVH application's.
        assert!(b.open_sealed(&sealed, SealedFor::Cluster("cl_attacker")).is_err());
        assert!(b.open_sealed(&sealed, SealedFor::OvhApplication("cl_victim")).is_err());
        assert!(b.open_sealed(&sealed, SealedFor::Cluster("cl_victim")).is_ok());
        // A value sealed before rows were bound still opens.
        let mut nonce = [0u8; 12];
        rand::rng().fill(&mut nonce);
        let ct = b.cipher.encrypt(Nonce::from_slice(&nonce), &b"old"[..]).unwrap();
        let legacy = B64.encode([nonce.to_vec(), ct].concat());
        assert_eq!(b.open_sealed(&legacy, SealedFor::Cluster("cl_any")).unwrap(), b"old");
    }

    #[test]
    fn tokens_have_prefix_and_stable_hash() {
        let s = new_token_secret();
        assert!(s.starts_with("mrn_") && s.len() == 4 + 64);
        assert_eq!(hash_token(&s), hash_token(&s));
        assert_ne!(hash_token(&s), s);
    }
}

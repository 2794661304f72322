//! Secrets at rest and token hashing.
//!
//! - Cluster passwords Marina must read back (management, replication) are
//!   sealed with ChaCha20-Poly1305 under a key kept in `<data-dir>/secret.key`
//!   (32 random bytes, mode 0600, created on first start).
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

    /// Encrypts `plain` to base64(nonce ‖ ciphertext).
    pub fn seal(&self, plain: &[u8]) -> String {
        let mut nonce = [0u8; 12];
        rand::rng().fill(&mut nonce);
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plain)
            .expect("ChaCha20-Poly1305 encryption cannot fail for in-memory input");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        B64.encode(out)
    }

    /// Decrypts what `seal` produced.
    pub fn open_sealed(&self, sealed: &str) -> Result<Vec<u8>, Error> {
        let raw = B64
            .decode(sealed)
            .map_err(|_| Error::internal("sealed secret is not base64"))?;
        if raw.len() < 12 {
            return Err(Error::internal("sealed secret is too short"));
        }
        let (nonce, ct) = raw.split_at(12);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), ct)
            .map_err(|_| Error::internal("sealed secret does not decrypt with secret.key"))
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
        let sealed = b.seal(b"hunter2");
        assert!(!sealed.contains("hunter2"));
        assert_eq!(b.open_sealed(&sealed).unwrap(), b"hunter2");
        // Reopening uses the same key.
        let b2 = SecretBox::open(dir.path()).unwrap();
        assert_eq!(b2.open_sealed(&sealed).unwrap(), b"hunter2");
        let mode = std::fs::metadata(dir.path().join("secret.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // Tampering is detected.
        let mut raw = B64.decode(&sealed).unwrap();
        raw[13] ^= 1;
        assert!(b.open_sealed(&B64.encode(raw)).is_err());
    }

    #[test]
    fn tokens_have_prefix_and_stable_hash() {
        let s = new_token_secret();
        assert!(s.starts_with("mrn_") && s.len() == 4 + 64);
        assert_eq!(hash_token(&s), hash_token(&s));
        assert_ne!(hash_token(&s), s);
    }
}

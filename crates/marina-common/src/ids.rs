//! Opaque, type-prefixed identifiers (`cl_`, `nd_`, `op_`, …) and name validation.

use rand::Rng;

/// Identifier prefixes from the contract.
pub mod prefix {
    pub const CLUSTER: &str = "cl";
    pub const NODE: &str = "nd";
    pub const OPERATION: &str = "op";
    pub const TOKEN: &str = "tok";
    pub const TENANT: &str = "tn";
    pub const EVENT: &str = "ev";
    pub const SECURITY_GROUP: &str = "sg";
    pub const RULE: &str = "sgr";
    pub const AUDIT_EVENT: &str = "ae";
    pub const BACKUP: &str = "bk";
    pub const HOST: &str = "hs";
    pub const JOIN_TOKEN: &str = "jt";
}

const ALPHABET: &[u8] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A new random identifier `<prefix>_<16 chars>` (80 bits of randomness).
pub fn new_id(prefix: &str) -> String {
    let mut rng = rand::rng();
    let body: String = (0..16)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}_{body}")
}

/// A random secret of `bytes` bytes, hex encoded.
pub fn random_secret(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill(&mut buf[..]);
    hex::encode(buf)
}

/// A random password made of letters and digits only (safe in shells and SQL).
pub fn random_password(len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// Checks a resource name against the contract's `^[a-z][a-z0-9-]{0,62}$`.
pub fn validate_name(name: &str) -> Result<(), String> {
    let bytes = name.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "name {name:?} is invalid: use 1 to 63 characters, lowercase letters, digits and '-', starting with a letter"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_prefix_and_are_unique() {
        let a = new_id(prefix::CLUSTER);
        let b = new_id(prefix::CLUSTER);
        assert!(a.starts_with("cl_"));
        assert_eq!(a.len(), 19);
        assert_ne!(a, b);
    }

    #[test]
    fn names_follow_the_contract() {
        for good in ["a", "orders", "db-1", &"a".repeat(63)] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", "1db", "Orders", "db_1", "-x", &"a".repeat(64), "db 1", "dé"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_are_alphanumeric() {
        let p = random_password(24);
        assert_eq!(p.len(), 24);
        assert!(p.chars().all(|c| c.is_ascii_alphanumeric()));
    }
}

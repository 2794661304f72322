//! The accounts every node has and the init file that creates them.
//!
//! Every node runs with `init_file` pointing at a file of `CREATE USER IF NOT
//! EXISTS` statements executed with `sql_log_bin=0`: the accounts exist before
//! the server accepts connections, they never produce GTIDs (so every node of a
//! cluster starts from the same empty GTID history), and only password *hashes*
//! are written (`IDENTIFIED BY PASSWORD`), so the file holds no secret in clear.
//!
//! - `marina_mgmt`@`127.0.0.1` and @`localhost` (unix socket): Marina's
//!   management account, all privileges.
//! - `marina_repl`@`127.0.0.1`: replication only.
//! - `admin`@`%`: the customer's account: data and schema privileges, but not
//!   `SUPER`, `READ_ONLY ADMIN`, `CREATE USER` or `GRANT OPTION`, so it cannot
//!   write on read-only replicas or touch Marina's accounts.

use sha1::{Digest, Sha1};

/// Marina's management account name.
pub const MGMT_USER: &str = "marina_mgmt";
/// The replication account name.
pub const REPL_USER: &str = "marina_repl";
/// The customer's account name.
pub const ADMIN_USER: &str = "admin";

/// Privileges of the customer `admin` account.
pub const ADMIN_PRIVILEGES: &str = "SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, RELOAD, PROCESS, \
REFERENCES, INDEX, ALTER, SHOW DATABASES, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, \
BINLOG MONITOR, SLAVE MONITOR, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, EVENT, TRIGGER";

/// `mysql_native_password` hash: `*` + upper hex of SHA1(SHA1(password)).
pub fn native_password_hash(password: &str) -> String {
    let first = Sha1::digest(password.as_bytes());
    let second = Sha1::digest(first);
    format!("*{}", hex::encode_upper(second))
}

/// Password hashes of the three accounts.
#[derive(Debug, Clone)]
pub struct AccountHashes {
    pub mgmt: String,
    pub repl: String,
    pub admin: String,
}

fn checked_hash(h: &str) -> &str {
    // A native hash is `*` + 40 hex digits: nothing that could break the quoting.
    assert!(
        h.len() == 41 && h.starts_with('*') && h[1..].bytes().all(|b| b.is_ascii_hexdigit()),
        "not a mysql_native_password hash"
    );
    h
}

/// The init file's SQL.
pub fn init_sql(h: &AccountHashes) -> String {
    format!(
        "SET sql_log_bin = 0;\n\
         CREATE USER IF NOT EXISTS '{MGMT_USER}'@'127.0.0.1' IDENTIFIED BY PASSWORD '{mgmt}';\n\
         GRANT ALL PRIVILEGES ON *.* TO '{MGMT_USER}'@'127.0.0.1' WITH GRANT OPTION;\n\
         CREATE USER IF NOT EXISTS '{MGMT_USER}'@'localhost' IDENTIFIED BY PASSWORD '{mgmt}';\n\
         GRANT ALL PRIVILEGES ON *.* TO '{MGMT_USER}'@'localhost' WITH GRANT OPTION;\n\
         CREATE USER IF NOT EXISTS '{REPL_USER}'@'127.0.0.1' IDENTIFIED BY PASSWORD '{repl}';\n\
         GRANT REPLICATION SLAVE ON *.* TO '{REPL_USER}'@'127.0.0.1';\n\
         CREATE USER IF NOT EXISTS '{ADMIN_USER}'@'%' IDENTIFIED BY PASSWORD '{admin}';\n\
         GRANT {ADMIN_PRIVILEGES} ON *.* TO '{ADMIN_USER}'@'%';\n\
         SET sql_log_bin = 1;\n",
        mgmt = checked_hash(&h.mgmt),
        repl = checked_hash(&h.repl),
        admin = checked_hash(&h.admin),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_hash_matches_mariadb() {
        // SELECT PASSWORD('secret') on MariaDB 10.11.
        assert_eq!(
            native_password_hash("secret"),
            "*14E65567ABDB5135D0CFD9A70B3032C179A49EE7"
        );
    }

    #[test]
    fn init_sql_has_no_binlog_and_no_clear_password() {
        let h = AccountHashes {
            mgmt: native_password_hash("m-pass"),
            repl: native_password_hash("r-pass"),
            admin: native_password_hash("a-pass"),
        };
        let sql = init_sql(&h);
        assert!(sql.starts_with("SET sql_log_bin = 0;"));
        assert!(!sql.contains("m-pass") && !sql.contains("a-pass"));
        assert!(sql.contains("GRANT REPLICATION SLAVE ON *.* TO 'marina_repl'"));
        assert!(!sql.contains("SUPER"));
    }
}

//! The accounts every node has and the init file that creates them.
//!
//! Every node runs with `init_file` pointing at a file of `CREATE USER IF NOT
//! EXISTS` + `ALTER USER` statements (the latter so a datadir restored from
//! another cluster's backup takes this cluster's passwords) executed with
//! `sql_log_bin=0`: the accounts exist before
//! the server accepts connections, they never produce GTIDs (so every node of a
//! cluster starts from the same empty GTID history), and only password *hashes*
//! are written (`IDENTIFIED BY PASSWORD`), so the file holds no secret in clear.
//!
//! - `marina_mgmt`@`127.0.0.1` and @`localhost` (unix socket): Marina's
//!   management account, all privileges.
//! - `marina_repl`@`127.0.0.1`: replication only.
//! - `admin`@`%`: the customer's account: data and schema privileges, but not
//!   `SUPER`, `READ_ONLY ADMIN`, `CREATE USER` or `GRANT OPTION`, so it cannot
//!   write on read-only replicas or manage accounts. Data privileges are granted
//!   per database, never on `*.*`: a global `DELETE` or `UPDATE` would reach the
//!   `mysql` schema and with it Marina's accounts (`DROP USER` only needs
//!   `DELETE` on `mysql`). MariaDB has no partial revokes, so the grants are
//!   rows in `mysql.db` whose patterns match every database name except
//!   `mysql` (`customer_db_patterns`), inserted in one statement.

use sha1::{Digest, Sha1};

/// Marina's management account name.
pub const MGMT_USER: &str = "marina_mgmt";
/// The replication account name.
pub const REPL_USER: &str = "marina_repl";
/// The customer's account name.
pub const ADMIN_USER: &str = "admin";

/// Global privileges of the customer `admin` account (none reaches a table).
/// Not `PROCESS`: with it, `SHOW FULL PROCESSLIST` shows every session's
/// statement text, and Marina's own (`CHANGE MASTER … MASTER_PASSWORD=…`)
/// carry its replication password. Without it the customer sees its own
/// sessions; the API's processlist view shows them all, Marina's text hidden.
pub const ADMIN_GLOBAL_PRIVILEGES: &str = "RELOAD, SHOW DATABASES, BINLOG MONITOR, SLAVE MONITOR";

/// `mysql.db` privilege columns the customer gets on every database but `mysql`:
/// SELECT … TRIGGER and DELETE HISTORY — everything but `GRANT OPTION`.
const ADMIN_DB_PRIVILEGE_COLUMNS: &[&str] = &[
    "Select_priv",
    "Insert_priv",
    "Update_priv",
    "Delete_priv",
    "Create_priv",
    "Drop_priv",
    "References_priv",
    "Index_priv",
    "Alter_priv",
    "Create_tmp_table_priv",
    "Lock_tables_priv",
    "Create_view_priv",
    "Show_view_priv",
    "Create_routine_priv",
    "Alter_routine_priv",
    "Execute_priv",
    "Event_priv",
    "Trigger_priv",
    "Delete_history_priv",
];

/// Characters a database name the customer may use can have at a position
/// where it differs from `mysql` (names of any other length may use any).
const NAME_CHARS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$-";

/// `LIKE` patterns (as grant database names) that together match every
/// database name except `mysql`: any name of another length, and every
/// five-character name that differs from `mysql` at some position (first
/// difference at position k: `mysql[..k]`, a different character, then `_`s).
pub fn customer_db_patterns() -> Vec<String> {
    const SYSTEM: &str = "mysql";
    let esc = |c: char| if c == '_' { "\\_".to_string() } else { c.to_string() };
    let mut patterns: Vec<String> = ["_", "__", "___", "____", "______%"]
        .iter()
        .map(|p| p.to_string())
        .collect();
    for (k, own) in SYSTEM.chars().enumerate() {
        for c in NAME_CHARS.chars().filter(|c| *c != own) {
            let prefix: String = SYSTEM.chars().take(k).map(esc).collect();
            patterns.push(format!("{prefix}{}{}", esc(c), "_".repeat(SYSTEM.len() - k - 1)));
        }
    }
    patterns
}

/// One `INSERT IGNORE` giving `user`@`%` the customer's privileges on every
/// database but `mysql` (idempotent; a `FLUSH PRIVILEGES` must follow).
fn customer_db_grants(user: &str) -> String {
    let yes = vec!["'Y'"; ADMIN_DB_PRIVILEGE_COLUMNS.len()].join(", ");
    let rows: Vec<String> = customer_db_patterns()
        .iter()
        .map(|p| format!("('%', '{p}', '{user}', {yes})"))
        .collect();
    format!(
        "INSERT IGNORE INTO mysql.db (Host, Db, User, {}) VALUES {};\n",
        ADMIN_DB_PRIVILEGE_COLUMNS.join(", "),
        rows.join(", ")
    )
}

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
    init_sql_for(h, &[])
}

/// The init file's SQL, with the management and replication accounts also
/// admitted from `networks` — (network address, netmask) pairs: the hosts
/// of a fleet, where the control plane's management connections and
/// replicas on other hosts come from. Node ports admit only the cluster's
/// peers and the control plane on top (the node-port guards).
pub fn init_sql_for(h: &AccountHashes, networks: &[(std::net::Ipv4Addr, std::net::Ipv4Addr)]) -> String {
    let local = init_sql_local(h);
    if networks.is_empty() {
        return local;
    }
    let (mgmt, repl) = (checked_hash(&h.mgmt), checked_hash(&h.repl));
    let mut remote = String::new();
    for (net, mask) in networks {
        // Two dotted quads: nothing that could break the quoting.
        let host = format!("{net}/{mask}");
        remote.push_str(&format!(
            "CREATE USER IF NOT EXISTS '{MGMT_USER}'@'{host}' IDENTIFIED BY PASSWORD '{mgmt}';\n\
             ALTER USER '{MGMT_USER}'@'{host}' IDENTIFIED BY PASSWORD '{mgmt}';\n\
             GRANT ALL PRIVILEGES ON *.* TO '{MGMT_USER}'@'{host}' WITH GRANT OPTION;\n\
             CREATE USER IF NOT EXISTS '{REPL_USER}'@'{host}' IDENTIFIED BY PASSWORD '{repl}';\n\
             ALTER USER '{REPL_USER}'@'{host}' IDENTIFIED BY PASSWORD '{repl}';\n\
             GRANT REPLICATION SLAVE ON *.* TO '{REPL_USER}'@'{host}';\n"
        ));
    }
    local.replacen("FLUSH PRIVILEGES;\n", &format!("{remote}FLUSH PRIVILEGES;\n"), 1)
}

fn init_sql_local(h: &AccountHashes) -> String {
    format!(
        "SET sql_log_bin = 0;\n\
         CREATE USER IF NOT EXISTS '{MGMT_USER}'@'127.0.0.1' IDENTIFIED BY PASSWORD '{mgmt}';\n\
         ALTER USER '{MGMT_USER}'@'127.0.0.1' IDENTIFIED BY PASSWORD '{mgmt}';\n\
         GRANT ALL PRIVILEGES ON *.* TO '{MGMT_USER}'@'127.0.0.1' WITH GRANT OPTION;\n\
         CREATE USER IF NOT EXISTS '{MGMT_USER}'@'localhost' IDENTIFIED BY PASSWORD '{mgmt}';\n\
         ALTER USER '{MGMT_USER}'@'localhost' IDENTIFIED BY PASSWORD '{mgmt}';\n\
         GRANT ALL PRIVILEGES ON *.* TO '{MGMT_USER}'@'localhost' WITH GRANT OPTION;\n\
         CREATE USER IF NOT EXISTS '{REPL_USER}'@'127.0.0.1' IDENTIFIED BY PASSWORD '{repl}';\n\
         ALTER USER '{REPL_USER}'@'127.0.0.1' IDENTIFIED BY PASSWORD '{repl}';\n\
         GRANT REPLICATION SLAVE ON *.* TO '{REPL_USER}'@'127.0.0.1';\n\
         CREATE USER IF NOT EXISTS '{ADMIN_USER}'@'%' IDENTIFIED BY PASSWORD '{admin}';\n\
         ALTER USER '{ADMIN_USER}'@'%' IDENTIFIED BY PASSWORD '{admin}';\n\
         GRANT {ADMIN_GLOBAL_PRIVILEGES} ON *.* TO '{ADMIN_USER}'@'%';\n\
         {db_grants}\
         FLUSH PRIVILEGES;\n\
         SET sql_log_bin = 1;\n",
        db_grants = customer_db_grants(ADMIN_USER),
        mgmt = checked_hash(&h.mgmt),
        repl = checked_hash(&h.repl),
        admin = checked_hash(&h.admin),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn fleet_networks_admit_the_management_and_replication_accounts() {
        let h = AccountHashes {
            mgmt: native_password_hash("m"),
            repl: native_password_hash("r"),
            admin: native_password_hash("a"),
        };
        assert_eq!(init_sql_for(&h, &[]), init_sql(&h));
        let net = ("198.51.100.0".parse().unwrap(), "255.255.255.0".parse().unwrap());
        let sql = init_sql_for(&h, &[net]);
        for want in [
            format!("GRANT ALL PRIVILEGES ON *.* TO '{MGMT_USER}'@'198.51.100.0/255.255.255.0' WITH GRANT OPTION;"),
            format!("GRANT REPLICATION SLAVE ON *.* TO '{REPL_USER}'@'198.51.100.0/255.255.255.0';"),
        ] {
            assert!(sql.contains(&want), "{sql}");
        }
        assert!(
            !sql.contains(&format!("'{ADMIN_USER}'@'198.51.100")),
            "the admin account stays '%' only"
        );
        assert!(
            sql.find("198.51.100.0").unwrap() < sql.find("FLUSH PRIVILEGES").unwrap()
                && sql.ends_with("SET sql_log_bin = 1;\n"),
            "{sql}"
        );
    }

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
        assert!(!sql.contains("GRANT SELECT"), "no data privilege on *.*");
    }

    /// `LIKE` with `\` escapes, as MariaDB matches grant database patterns.
    fn like(pattern: &str, name: &str) -> bool {
        fn go(p: &[char], n: &[char]) -> bool {
            match p.split_first() {
                None => n.is_empty(),
                Some(('%', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
                Some(('_', rest)) => !n.is_empty() && go(rest, &n[1..]),
                Some(('\\', rest)) => match rest.split_first() {
                    Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
                    None => false,
                },
                Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
            }
        }
        go(&pattern.chars().collect::<Vec<_>>(), &name.chars().collect::<Vec<_>>())
    }

    #[test]
    fn customer_patterns_cover_every_database_but_mysql() {
        // MariaDB keeps `\_` as is inside a string literal, so the patterns are
        // stored exactly as generated.
        let patterns = customer_db_patterns();
        let matches = |name: &str| patterns.iter().any(|p| like(p, name));
        assert!(!matches("mysql"));
        for name in [
            "app",
            "orders",
            "Sales",
            "mysq",
            "mysqlx",
            "my_db",
            "mysq_",
            "m",
            "sys",
            "mysqL",
            "nysql",
            "shop-2024",
            "$tmp",
        ] {
            assert!(matches(name), "{name}");
        }
    }
}

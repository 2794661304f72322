//! Databases and user accounts inside a cluster (Trove's databases/users API):
//! name validation and the SQL Marina runs for them on the primary, plus the
//! read-only views of a node (process list, variables, status variables).
//!
//! Rules:
//! - Names are validated before any SQL is built: database names
//!   `[A-Za-z0-9_]{1,64}`, user names `[A-Za-z0-9_]{1,32}`, hosts
//!   `[A-Za-z0-9.%_:-]{1,60}`. Identifiers are then backquoted and hosts
//!   single-quoted; neither can contain a quote, so nothing a client sends
//!   can end a literal or an identifier.
//! - System schemas and Marina's own accounts (and `admin`, `root`,
//!   `mariadb.sys`) are reserved: never created, listed as the customer's, or
//!   dropped through this API.
//! - Passwords never reach SQL text: accounts are created with
//!   `IDENTIFIED BY PASSWORD '<mysql_native_password hash>'`.
//! - Every statement is replicated (run on the primary with the binlog on).

use crate::users::native_password_hash;

/// Schemas that belong to MariaDB.
pub const SYSTEM_SCHEMAS: &[&str] = &["mysql", "information_schema", "performance_schema", "sys"];

/// Accounts that belong to MariaDB or Marina (`admin` is the cluster's own
/// customer admin, managed with the cluster).
pub const RESERVED_USERS: &[&str] = &["root", "mariadb.sys", "marina_mgmt", "marina_repl", "admin", "PUBLIC"];

fn chars_ok(s: &str, max: usize, extra: &str) -> bool {
    !s.is_empty() && s.len() <= max && s.chars().all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
}

/// Checks a database name (a 400 message when it is not acceptable).
pub fn validate_database(name: &str) -> Result<(), String> {
    if !chars_ok(name, 64, "_") {
        return Err(format!(
            "database name {name:?} must be 1-64 characters of letters, digits and _"
        ));
    }
    if SYSTEM_SCHEMAS.iter().any(|s| s.eq_ignore_ascii_case(name)) {
        return Err(format!("{name:?} is a system schema"));
    }
    Ok(())
}

/// Checks a user name.
pub fn validate_user(name: &str) -> Result<(), String> {
    if !chars_ok(name, 32, "_") {
        return Err(format!(
            "user name {name:?} must be 1-32 characters of letters, digits and _"
        ));
    }
    if RESERVED_USERS.iter().any(|s| s.eq_ignore_ascii_case(name)) || name.starts_with("marina_") {
        return Err(format!("{name:?} is a reserved account name"));
    }
    Ok(())
}

/// Checks an account host pattern (`%`, `10.0.0.%`, `app.example`).
pub fn validate_host(host: &str) -> Result<(), String> {
    if !chars_ok(host, 60, ".%_:-") {
        return Err(format!(
            "host {host:?} must be 1-60 characters of letters, digits and . % _ : -"
        ));
    }
    Ok(())
}

/// Checks a password given by the client.
pub fn validate_password(pw: &str) -> Result<(), String> {
    if pw.chars().count() < 8 || pw.len() > 128 {
        return Err("password must be 8 to 128 characters".into());
    }
    if pw.chars().any(|c| c.is_control()) {
        return Err("password must not contain control characters".into());
    }
    Ok(())
}

/// A database name as a grant's pattern: in `GRANT … ON \`db\`.*`, `_` and `%`
/// are `LIKE` wildcards, so `my_ql` would match `mysql` (and with it Marina's
/// accounts). Escaped, the grant matches that one database only.
pub fn grant_db_pattern(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if matches!(c, '_' | '%' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A grant's database pattern back as the name it stands for (undoes
/// `grant_db_pattern`).
pub fn db_from_grant_pattern(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// `CREATE DATABASE` (validated name).
pub fn create_database_sql(name: &str) -> String {
    format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
}

/// `DROP DATABASE` (validated name).
pub fn drop_database_sql(name: &str) -> String {
    format!("DROP DATABASE `{name}`")
}

/// The customer's databases.
pub const LIST_DATABASES_SQL: &str = "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA \
     WHERE SCHEMA_NAME NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys') ORDER BY SCHEMA_NAME";

/// The statements creating `user@host` with `password` and all privileges on
/// each of `databases` (all validated).
pub fn create_user_sql(user: &str, host: &str, password: &str, databases: &[String]) -> Vec<String> {
    create_user_hashed_sql(user, host, &native_password_hash(password), databases)
}

/// Like `create_user_sql`, from the password's native hash.
pub fn create_user_hashed_sql(user: &str, host: &str, hash: &str, databases: &[String]) -> Vec<String> {
    let account = format!("'{user}'@'{host}'");
    let mut stmts = vec![format!("CREATE USER {account} IDENTIFIED BY PASSWORD '{hash}'")];
    stmts.extend(
        databases
            .iter()
            .map(|db| format!("GRANT ALL PRIVILEGES ON `{}`.* TO {account}", grant_db_pattern(db))),
    );
    stmts
}

/// Sets the customer `admin` account's password from its native hash.
pub fn set_admin_password_sql(hash: &str) -> String {
    format!(
        "ALTER USER '{}'@'%' IDENTIFIED BY PASSWORD '{hash}'",
        crate::users::ADMIN_USER
    )
}

/// `DROP USER` (validated names).
pub fn drop_user_sql(user: &str, host: &str) -> String {
    format!("DROP USER '{user}'@'{host}'")
}

/// The customer's accounts with the databases they have grants on:
/// rows of (user, host, comma-separated databases or NULL).
pub fn list_users_sql() -> String {
    let reserved: Vec<String> = RESERVED_USERS.iter().map(|u| format!("'{u}'")).collect();
    format!(
        "SELECT u.User, u.Host, GROUP_CONCAT(DISTINCT d.Db ORDER BY d.Db SEPARATOR ',') \
         FROM mysql.user u LEFT JOIN mysql.db d ON d.User = u.User AND d.Host = u.Host \
         WHERE u.User <> '' AND u.User NOT IN ({}) AND u.User NOT LIKE 'marina\\_%' AND u.is_role = 'N' \
         GROUP BY u.User, u.Host ORDER BY u.User, u.Host",
        reserved.join(", ")
    )
}

/// Which live view of a node to read (Marina's own sessions show no
/// statement text: a `CHANGE MASTER` carries a password).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeView {
    ProcessList,
    Variables,
    StatusVariables,
}

impl NodeView {
    /// The query, returning rows of named columns.
    pub fn sql(self) -> &'static str {
        match self {
            NodeView::ProcessList => {
                "SELECT ID AS id, USER AS user, HOST AS host, DB AS db, COMMAND AS command, TIME AS time, \
                 STATE AS state, CASE WHEN USER LIKE 'marina\\_%' THEN NULL ELSE INFO END AS info \
                 FROM information_schema.PROCESSLIST ORDER BY ID"
            }
            NodeView::Variables => "SHOW GLOBAL VARIABLES",
            NodeView::StatusVariables => "SHOW GLOBAL STATUS",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_refused_before_any_sql() {
        for bad in [
            "",
            "a`b",
            "x'; DROP USER marina_mgmt; --",
            "db name",
            "a\\b",
            "é",
            "a-b",
            &"x".repeat(65),
        ] {
            assert!(validate_database(bad).is_err(), "{bad:?}");
        }
        for bad in ["mysql", "MySQL", "sys", "information_schema"] {
            assert!(validate_database(bad).is_err(), "{bad:?}");
        }
        for bad in [
            "root",
            "admin",
            "marina_mgmt",
            "marina_x",
            "a'b",
            "u@h",
            "",
            &"u".repeat(33),
        ] {
            assert!(validate_user(bad).is_err(), "{bad:?}");
        }
        for bad in ["h'", "a b", "", "x;y", "a`"] {
            assert!(validate_host(bad).is_err(), "{bad:?}");
        }
        assert!(validate_password("short").is_err());
        assert!(validate_password("line\nbreak-long").is_err());
        assert!(validate_database("orders_2024").is_ok());
        assert!(validate_user("app_ro").is_ok());
        assert!(validate_host("10.0.%").is_ok());
    }

    #[test]
    fn passwords_never_reach_the_sql_text() {
        let pw = "s3cret'); DROP DATABASE x; --";
        let stmts = create_user_sql("app", "%", pw, &["orders".into(), "billing".into()]);
        assert_eq!(stmts.len(), 3);
        assert!(stmts.iter().all(|s| !s.contains("s3cret")));
        assert!(stmts[0].contains(&native_password_hash(pw)));
        assert_eq!(stmts[2], "GRANT ALL PRIVILEGES ON `billing`.* TO 'app'@'%'");
    }

    #[test]
    fn grants_name_one_database_never_a_pattern() {
        // `my_ql` is a valid name, but unescaped it matches `mysql`.
        let stmts = create_user_sql("esc", "%", "password1", &["my_ql".into(), "a_b_c".into()]);
        assert_eq!(stmts[1], "GRANT ALL PRIVILEGES ON `my\\_ql`.* TO 'esc'@'%'");
        assert_eq!(stmts[2], "GRANT ALL PRIVILEGES ON `a\\_b\\_c`.* TO 'esc'@'%'");
        for name in ["my_ql", "orders", "a_b_c", "x%"] {
            assert_eq!(db_from_grant_pattern(&grant_db_pattern(name)), name);
        }
    }
}

//! MariaDB's backup tools: the command lines that stream a backup out of a
//! node and load one back, and the parsers for what they report.
//!
//! - Physical: `mariadb-backup --backup --stream=mbstream`, read from the
//!   node's datadir and consistent through `BACKUP STAGE` locks (short on a
//!   replica, which is where Marina takes them). Its log (stderr) names the
//!   GTID the copy is consistent with. Restore: `mbstream -x` into an empty
//!   directory, then `mariadb-backup --prepare`; the result is a datadir.
//! - Logical: `mariadb-dump --single-transaction --gtid --master-data=2` of
//!   every database but the system ones (accounts stay the new cluster's own).
//!   The GTID is in a comment at the end of the dump. Restore: the dump is
//!   played into the new primary with the `mariadb` client.
//!
//! Both tools log in as `root@localhost` over the node's unix socket, which
//! MariaDB authenticates by the OS user (`unix_socket`): no password is ever
//! on a command line or in a file. The customer's account cannot touch root.
//! A restore's `mariadb` client is the exception: it parses what a tenant
//! wrote, so it runs as the node's own uid and logs in as the management
//! account with options it reads on a descriptor (`load_args`).

use std::path::Path;

/// Schemas that are never part of a logical backup.
pub const SYSTEM_SCHEMAS: &[&str] = &["mysql", "sys", "performance_schema", "information_schema"];

/// `mariadb-backup` arguments streaming a physical backup of the node
/// listening on `socket` with data in `datadir` to stdout; `scratch` is an
/// empty directory it may use.
pub fn physical_backup_args(socket: &Path, datadir: &Path, scratch: &Path) -> Vec<String> {
    vec![
        "--backup".into(),
        "--stream=mbstream".into(),
        format!("--target-dir={}", scratch.display()),
        format!("--socket={}", socket.display()),
        "--user=root".into(),
        format!("--datadir={}", datadir.display()),
    ]
}

/// What a physical backup of a **replica** adds: its SQL thread is stopped
/// for the copy (`--safe-slave-backup`, restarted at the end), so the source
/// writes no redo while it is copied and a write load on the primary can
/// never outrun the copy — the replica still receives (its IO thread and
/// semi-sync acknowledgements go on) and applies the backlog afterwards.
pub fn replica_backup_args() -> Vec<String> {
    vec!["--safe-slave-backup".into(), "--safe-slave-backup-timeout=60".into()]
}

/// `mariadb-dump` arguments dumping every non-system database of the node
/// listening on `socket` to stdout, consistent and with its GTID position.
pub fn logical_dump_args(socket: &Path) -> Vec<String> {
    let mut args = vec![
        format!("--socket={}", socket.display()),
        "--user=root".into(),
        "--single-transaction".into(),
        "--gtid".into(),
        "--master-data=2".into(),
        "--routines".into(),
        "--events".into(),
        "--triggers".into(),
        "--all-databases".into(),
    ];
    args.extend(SYSTEM_SCHEMAS.iter().map(|s| format!("--ignore-database={s}")));
    args
}

/// `mbstream` arguments extracting a stream into `dir`.
pub fn extract_args(dir: &Path) -> Vec<String> {
    vec!["-x".into(), "-C".into(), dir.display().to_string()]
}

/// `mariadb-backup` arguments making an extracted backup a consistent datadir.
pub fn prepare_args(dir: &Path) -> Vec<String> {
    vec!["--prepare".into(), format!("--target-dir={}", dir.display())]
}

/// `mariadb` client arguments playing SQL text into the node on `socket`: a
/// logical backup's dump or `mariadb-binlog`'s output. Both carry text a
/// tenant wrote (statements, comments, names), and the `mariadb` client runs
/// client commands found in its input (`\!` runs a shell command, `\.`
/// reads a file) as the user it runs as. `--binary-mode` turns off every
/// client command but `\C` and `DELIMITER`, and `--sandbox` refuses any that
/// touches the file system; the first refused command ends the load. The
/// client logs in with the options it reads on descriptor 3
/// (`login_options`), which must come first on its command line.
pub fn load_args(socket: &Path) -> Vec<String> {
    vec![
        "--defaults-extra-file=/dev/fd/3".into(),
        format!("--socket={}", socket.display()),
        "--binary-mode".into(),
        "--sandbox".into(),
    ]
}

/// The option file text that logs the `mariadb` client in as `user` with
/// `password` (for `load_args`' descriptor 3): quoted, with `\`, `"` and
/// line ends escaped as option files read them (no value can add an option).
pub fn login_options(user: &str, password: &str) -> String {
    let quote = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
    format!("[client]\nuser=\"{}\"\npassword=\"{}\"\n", quote(user), quote(password))
}

/// The GTID a physical backup is consistent with, from `mariadb-backup`'s log:
/// `MySQL binlog position: filename '…', position '…', GTID of the last change '0-1-5'`.
pub fn parse_physical_gtid(log: &str) -> Option<String> {
    let marker = "GTID of the last change '";
    let start = log.rfind(marker)? + marker.len();
    let end = log[start..].find('\'')? + start;
    Some(log[start..end].to_string())
}

/// The GTID position a physical copy holds, from the
/// `xtrabackup_binlog_info` file in it (`<binlog file>\t<offset>\t<GTID>`).
pub fn parse_binlog_info_gtid(text: &str) -> Option<String> {
    let gtid = text.lines().next()?.split('\t').nth(2)?.trim();
    (!gtid.is_empty()).then(|| gtid.to_string())
}

/// The GTID a dump is consistent with, from its trailing comment
/// `-- SET GLOBAL gtid_slave_pos='0-1-5';`.
pub fn parse_dump_gtid(tail: &str) -> Option<String> {
    let marker = "SET GLOBAL gtid_slave_pos='";
    let start = tail.rfind(marker)? + marker.len();
    let end = tail[start..].find('\'')? + start;
    Some(tail[start..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_names_its_gtid_in_its_binlog_info() {
        for (text, want) in [
            ("mariadb-bin.000002\t1234\t0-1-5\n", Some("0-1-5")),
            ("b.000001\t4\t0-1-5,1-2-9", Some("0-1-5,1-2-9")),
            ("b.000001\t4\t\n", None),
            ("b.000001\t4\n", None),
            ("", None),
        ] {
            assert_eq!(parse_binlog_info_gtid(text).as_deref(), want, "{text:?}");
        }
    }

    #[test]
    fn sql_text_is_played_with_client_commands_off() {
        let args = load_args(Path::new("/n/mariadbd.sock"));
        assert!(args.contains(&"--binary-mode".to_string()), "{args:?}");
        assert!(args.contains(&"--sandbox".to_string()), "{args:?}");
        assert_eq!(args[0], "--defaults-extra-file=/dev/fd/3", "must come first");
        assert!(!args.iter().any(|a| a.contains("password") || a.contains("user")));
    }

    #[test]
    fn login_options_quote_what_option_files_unescape() {
        assert_eq!(
            login_options("marina_mgmt", r#"a"b\c"#),
            "[client]\nuser=\"marina_mgmt\"\npassword=\"a\\\"b\\\\c\"\n"
        );
    }

    #[test]
    fn parses_reported_gtids() {
        let log = "[00] 2026-11-26 00:02:02 MySQL binlog position: filename 'mariadb-bin.000001', \
                   position '772', GTID of the last change '0-7-3'\n[00] completed OK!";
        assert_eq!(parse_physical_gtid(log).as_deref(), Some("0-7-3"));
        assert_eq!(parse_physical_gtid("no position"), None);
        // An empty history is reported as an empty GTID.
        assert_eq!(parse_physical_gtid("GTID of the last change ''").as_deref(), Some(""));
        let tail = "-- The deferred gtid setting for slave …\n--\n-- SET GLOBAL gtid_slave_pos='0-7-3,1-2-9';\n";
        assert_eq!(parse_dump_gtid(tail).as_deref(), Some("0-7-3,1-2-9"));
        assert_eq!(parse_dump_gtid("-- nothing"), None);
    }

    #[test]
    fn dumps_skip_system_schemas_and_never_carry_a_password() {
        let args = logical_dump_args(Path::new("/n/mariadbd.sock"));
        for s in SYSTEM_SCHEMAS {
            assert!(args.contains(&format!("--ignore-database={s}")));
        }
        let physical = physical_backup_args(Path::new("/n/s.sock"), Path::new("/n/data"), Path::new("/t"));
        assert!(!args.iter().chain(&physical).any(|a| a.contains("password")));
        assert!(physical.contains(&"--stream=mbstream".to_string()));
    }
}

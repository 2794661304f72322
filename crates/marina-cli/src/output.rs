//! Output: aligned text tables for humans, pretty JSON for scripts.

use serde_json::Value;

/// `--output` formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// Renders rows as a left-aligned table with a header.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, cell) in r.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        parts.join("  ").trim_end().to_string()
    };
    let mut out = line(headers.iter().map(|h| h.to_string()).collect());
    out.push('\n');
    for r in rows {
        out.push_str(&line(r.clone()));
        out.push('\n');
    }
    out
}

/// A JSON value as a table cell.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `host:port` of an endpoint, or `-`.
pub fn endpoint(v: &Value) -> String {
    match (v["host"].as_str(), v["port"].as_u64()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        _ => "-".into(),
    }
}

/// Prints JSON.
pub fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let t = table(
            &["NAME", "STATUS"],
            &[
                vec!["orders".into(), "active".into()],
                vec!["a".into(), "creating".into()],
            ],
        );
        assert_eq!(t, "NAME    STATUS\norders  active\na       creating\n");
        assert_eq!(cell(&Value::Null), "-");
        assert_eq!(
            endpoint(&serde_json::json!({"host": "127.77.0.1", "port": 3306})),
            "127.77.0.1:3306"
        );
    }
}

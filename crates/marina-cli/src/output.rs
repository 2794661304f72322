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

/// Prints `v` as JSON, or as `render(v)` for people.
pub fn emit(format: Format, v: &Value, render: impl FnOnce(&Value) -> String) {
    match format {
        Format::Json => print_json(v),
        Format::Table => print!("{}", render(v)),
    }
}

/// Items as a table of the given `(HEADER, field)` columns; a field may be a
/// dotted path (`endpoints.writer.port`).
pub fn columns(items: &[Value], cols: &[(&str, &str)]) -> String {
    let headers: Vec<&str> = cols.iter().map(|(h, _)| *h).collect();
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|it| cols.iter().map(|(_, f)| cell(&field(it, f))).collect())
        .collect();
    table(&headers, &rows)
}

/// The value at a dotted path.
fn field(v: &Value, path: &str) -> Value {
    path.split('.').fold(v.clone(), |v, k| v[k].clone())
}

/// An object for people: one `key: value` line per scalar (nested objects
/// as `outer.inner`, keys in alphabetical order), then each array of objects
/// as a table.
pub fn detail(v: &Value) -> String {
    let mut lines = Vec::new();
    let mut tables = String::new();
    flatten("", v, &mut lines, &mut tables);
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    let mut out: String = lines
        .iter()
        .map(|(k, v)| format!("{:<width$} {v}\n", format!("{k}:")))
        .collect();
    out.push_str(&tables);
    out
}

fn flatten(prefix: &str, v: &Value, lines: &mut Vec<(String, String)>, tables: &mut String) {
    let Value::Object(map) = v else {
        lines.push((prefix.to_string(), cell(v)));
        return;
    };
    for (k, val) in map {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match val {
            Value::Object(_) => flatten(&key, val, lines, tables),
            Value::Array(items) if items.iter().all(Value::is_object) && !items.is_empty() => {
                let mut cols: Vec<String> = Vec::new();
                for it in items {
                    for (c, cv) in it.as_object().into_iter().flatten() {
                        if !cv.is_object() && !cv.is_array() && !cols.contains(c) {
                            cols.push(c.clone());
                        }
                    }
                }
                let pairs: Vec<(String, &str)> = cols.iter().map(|c| (c.to_uppercase(), c.as_str())).collect();
                let refs: Vec<(&str, &str)> = pairs.iter().map(|(h, f)| (h.as_str(), *f)).collect();
                tables.push_str(&format!("\n{key}:\n{}", columns(items, &refs)));
            }
            Value::Array(items) => {
                let parts: Vec<String> = items.iter().map(cell).collect();
                lines.push((key, if parts.is_empty() { "-".into() } else { parts.join(", ") }));
            }
            other => lines.push((key, cell(other))),
        }
    }
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

    #[test]
    fn details_flatten_objects_and_tabulate_lists() {
        let v = serde_json::json!({
            "id": "cl_1", "failover": {"mode": "manual"}, "tags": ["a", "b"], "none": [],
            "nodes": [{"id": "nd_1", "role": "primary", "probe": {"ok": true}}, {"id": "nd_2", "lag": 3}]
        });
        assert_eq!(
            detail(&v),
            "failover.mode: manual\nid:            cl_1\nnone:          -\ntags:          a, b\n\n\
             nodes:\nID    ROLE     LAG\nnd_1  primary  -\nnd_2  -        3\n"
        );
        assert_eq!(
            columns(std::slice::from_ref(&v), &[("ID", "id"), ("MODE", "failover.mode")]),
            "ID    MODE\ncl_1  manual\n"
        );
    }
}

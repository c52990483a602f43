//! What a node says about itself in 1.x's shapes: `SHOW DIAGNOSTICS` (build, configuration,
//! network, system) and `GET /debug/vars` (the `SHOW STATS` modules as 1.x's expvar JSON).
//!
//! ```text
//!   Config, start time ──▶ NodeDiagnostics ──▶ Executor (SHOW DIAGNOSTICS)
//!   metrics counters   ──▶ HttpdStats      ──▶ Executor (SHOW STATS, /debug/vars)
//! ```
//!
//! Only modules that mean something here are reported: 1.x's Go `runtime` and `memstats`, and
//! the TSM engine's modules, have no counterpart and are absent, never filled with zeros.

use std::time::SystemTime;

use querier::queries::go_duration;
use querier::stats::{Diagnostic, DiagnosticsSource, Stat, StatsSource};
use serde_json::{Map, Value};

use crate::config::Config;

/// `SHOW DIAGNOSTICS`' modules of this node.
#[derive(Debug)]
pub struct NodeDiagnostics {
    config: Config,
    started: SystemTime,
}

impl NodeDiagnostics {
    pub fn new(config: Config, started: SystemTime) -> Self {
        Self { config, started }
    }
}

fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// The machine's host name, as 1.x's `network` module shows it.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

fn module(name: &str, values: Vec<(&str, Value)>) -> Diagnostic {
    // 1.x lists a module's columns in name order.
    let mut values: Vec<(String, Value)> = values
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    values.sort_by(|a, b| a.0.cmp(&b.0));
    Diagnostic {
        module: name.to_string(),
        values,
    }
}

impl DiagnosticsSource for NodeDiagnostics {
    fn diagnostics(&self) -> Vec<Diagnostic> {
        let c = &self.config;
        let d = |g: &crate::config::GoDuration| Value::from(go_duration(g.0));
        let now = SystemTime::now();
        let uptime = now.duration_since(self.started).unwrap_or_default();
        vec![
            module(
                "build",
                vec![
                    ("Branch", "unknown".into()),
                    ("Build Time", "".into()),
                    ("Commit", "unknown".into()),
                    ("Version", env!("CARGO_PKG_VERSION").into()),
                ],
            ),
            module(
                "config",
                vec![
                    ("bind-address", c.meta.bind_address.clone().into()),
                    // Fletch never reports usage anywhere.
                    ("reporting-enabled", false.into()),
                ],
            ),
            module(
                "config-coordinator",
                vec![
                    ("log-queries-after", d(&c.coordinator.log_queries_after)),
                    (
                        "max-concurrent-queries",
                        c.coordinator.max_concurrent_queries.into(),
                    ),
                    (
                        "max-select-buckets",
                        c.coordinator.max_select_buckets.into(),
                    ),
                    ("max-select-point", c.coordinator.max_select_point.into()),
                    ("max-select-series", c.coordinator.max_select_series.into()),
                    (
                        "query-memory-bytes",
                        c.coordinator.query_memory_bytes.0.into(),
                    ),
                    (
                        "query-pool-bytes",
                        c.coordinator.query_pool().unwrap_or(0).into(),
                    ),
                    ("query-timeout", d(&c.coordinator.query_timeout)),
                    ("write-timeout", d(&c.coordinator.write_timeout)),
                ],
            ),
            module(
                "config-data",
                vec![
                    ("dir", c.data.dir.clone().into()),
                    ("max-rows-per-file", c.data.max_rows_per_file.into()),
                    ("wal-dir", c.data.wal_dir.clone().into()),
                ],
            ),
            module(
                "config-httpd",
                vec![
                    ("auth-enabled", c.http.auth_enabled.into()),
                    ("bind-address", c.http.bind_address.clone().into()),
                    ("enabled", c.http.enabled.into()),
                    ("https-enabled", c.http.https_enabled.into()),
                    ("max-row-limit", c.http.max_row_limit.into()),
                ],
            ),
            module("config-meta", vec![("dir", c.meta.dir.clone().into())]),
            module("network", vec![("hostname", hostname().into())]),
            module(
                "system",
                vec![
                    ("PID", std::process::id().into()),
                    ("currentTime", rfc3339(now).into()),
                    ("started", rfc3339(self.started).into()),
                    ("uptime", go_duration(uptime).into()),
                ],
            ),
        ]
    }
}

/// The HTTP API's counters as 1.x's `httpd` module (tag `bind`), from what `/metrics` counts.
#[derive(Debug)]
pub struct HttpdStats {
    bind: String,
}

impl HttpdStats {
    pub fn new(bind: String) -> Self {
        Self { bind }
    }
}

impl StatsSource for HttpdStats {
    fn stats(&self) -> Vec<Stat> {
        let t = crate::metrics::httpd_totals();
        vec![Stat {
            module: "httpd".into(),
            tags: [("bind".to_string(), self.bind.clone())].into(),
            values: vec![
                ("authFail".into(), t.auth_fail.into()),
                ("clientError".into(), t.client_error.into()),
                ("pointsWrittenOK".into(), t.points_written.into()),
                ("queryReq".into(), t.query_req.into()),
                ("queryReqDurationNs".into(), t.query_ns.into()),
                ("serverError".into(), t.server_error.into()),
                ("writeReq".into(), t.write_req.into()),
                ("writeReqDurationNs".into(), t.write_ns.into()),
            ],
        }]
    }
}

/// 1.x's expvar key of a module instance: its name, then the tags that tell instances apart
/// (`httpd:127.0.0.1:8086`, `hh_processor:/path/2`).
fn expvar_key(s: &Stat) -> String {
    let mut key = s.module.clone();
    let tag = |k: &str| s.tags.get(k);
    if let Some(path) = tag("path") {
        key.push(':');
        key.push_str(path);
        if let Some(id) = tag("id") {
            key.push(':');
            key.push_str(id);
        }
    } else if let Some(bind) = tag("bind") {
        if let Some(proto) = tag("proto") {
            key.push(':');
            key.push_str(proto);
        }
        key.push(':');
        key.push_str(bind);
    } else if let Some(db) = tag("database") {
        key.push(':');
        key.push_str(db);
    }
    key
}

/// `GET /debug/vars`: `system`, `cmdline`, then every `SHOW STATS` module instance, one per
/// line, as 1.x writes them (values in name order; `tags` null when there are none).
pub fn debug_vars(stats: &[Stat], started: SystemTime) -> String {
    let now = SystemTime::now();
    let uptime = now.duration_since(started).unwrap_or_default().as_secs();
    let mut lines = vec![
        format!(
            "\"system\": {}",
            serde_json::json!({
                "currentTime": rfc3339(now),
                "started": rfc3339(started),
                "uptime": uptime,
            })
        ),
        format!(
            "\"cmdline\": {}",
            Value::from(std::env::args().collect::<Vec<_>>())
        ),
    ];
    for s in stats {
        let tags = match s.tags.is_empty() {
            true => Value::Null,
            false => Value::Object(
                s.tags
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                    .collect(),
            ),
        };
        let values: Map<String, Value> = s.values.iter().cloned().collect();
        let body = serde_json::json!({ "name": s.module, "tags": tags, "values": values });
        lines.push(format!("{}: {body}", Value::from(expvar_key(s))));
    }
    format!("{{\n{}\n}}\n", lines.join(",\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expvar_keys_are_1x_keys() {
        let stat = |module: &str, tags: &[(&str, &str)]| Stat {
            module: module.into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            values: vec![("n".into(), 1.into())],
        };
        assert_eq!(
            expvar_key(&stat("httpd", &[("bind", "127.0.0.1:8086")])),
            "httpd:127.0.0.1:8086"
        );
        assert_eq!(
            expvar_key(&stat("hh_processor", &[("node", "2"), ("path", "/hh/2")])),
            "hh_processor:/hh/2"
        );
        assert_eq!(
            expvar_key(&stat("shard", &[("id", "1"), ("path", "/d/1")])),
            "shard:/d/1:1"
        );
        assert_eq!(expvar_key(&stat("queryExecutor", &[])), "queryExecutor");
        let text = debug_vars(&[stat("queryExecutor", &[])], SystemTime::now());
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v["queryExecutor"],
            serde_json::json!({"name": "queryExecutor", "tags": null, "values": {"n": 1}})
        );
        assert!(v["system"]["uptime"].is_u64());
        assert!(text.starts_with("{\n\"system\": {"), "{text}");
    }

    #[test]
    fn diagnostics_modules_are_in_name_order_with_sorted_columns() {
        let d = NodeDiagnostics::new(Config::default(), SystemTime::now()).diagnostics();
        let names: Vec<&str> = d.iter().map(|m| m.module.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        for m in &d {
            let cols: Vec<&str> = m.values.iter().map(|(k, _)| k.as_str()).collect();
            let mut s = cols.clone();
            s.sort();
            assert_eq!(cols, s, "{}", m.module);
        }
        let coord = d.iter().find(|m| m.module == "config-coordinator").unwrap();
        assert!(
            coord
                .values
                .contains(&("write-timeout".into(), "10s".into()))
        );
    }
}

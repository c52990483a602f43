//! # shell: the `fletch` command-line client
//!
//! A client of the InfluxDB 1.x HTTP API, after the `influx` 1.x shell: `-execute` runs
//! statements and prints their results; without it, statements are read from a prompt. It
//! works against Fletch or any InfluxDB 1.x server, and prints what the `influx` shell prints,
//! character for character.
//!
//! ```text
//!   fletch (main.rs) ─▶ client::main: flags ─▶ Session (host, database, format, ...)
//!        ├─ -execute / -import ─▶ client: /query (chunked), /write ─▶ column | csv | json
//!        └─ prompt ─▶ interactive: the shell's own commands, else /query
//! ```
//!
//! What it must not touch: anything of the server. It depends on an HTTP client and the
//! terminal, not on DataFusion, Raft or the storage engine, so the binary stays small. Two
//! small pieces are shared with the server and live here: Go-style single-dash flags
//! ([`normalize_args`]) and Go's CSV quoting ([`csv_field`]).

pub mod client;
pub mod interactive;

/// Accepts the Go flag style of 1.x tools (`-host x`) beside clap's (`--host x`): a
/// single-dash word of more than one letter becomes a double-dash one.
pub fn normalize_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    args.into_iter()
        .enumerate()
        .map(|(i, a)| {
            let single = a.starts_with('-') && !a.starts_with("--") && a.len() > 2;
            if i > 0
                && single
                && a[1..]
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic())
            {
                format!("-{a}")
            } else {
                a
            }
        })
        .collect()
}

/// Quotes a CSV field as Go's encoding/csv does (1.x's server and shell both write CSV with it).
pub fn csv_field(s: &str) -> String {
    let needs = !s.is_empty()
        && (s == "\\." || s.contains([',', '"', '\r', '\n']) || s.starts_with([' ', '\t']));
    if needs {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

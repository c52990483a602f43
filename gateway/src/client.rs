//! The `fletch` command-line client, after the `influx` 1.x shell: `-execute` runs statements
//! and prints their results; without it, statements are read from the prompt line by line.
//! (Import, history and the full set of shell commands come with the cluster issue.)

use std::io::{BufRead, Write};
use std::process::ExitCode;

use clap::Parser;
use serde_json::Value;

/// Fletch's command-line client (works against any InfluxDB 1.x API).
#[derive(Debug, Parser)]
#[command(name = "fletch", version, about)]
pub struct ClientArgs {
    /// Host to connect to.
    #[arg(long, default_value = "localhost")]
    pub host: String,
    /// Port to connect to.
    #[arg(long, default_value_t = 8086)]
    pub port: u16,
    /// Database to use.
    #[arg(long, default_value = "")]
    pub database: String,
    /// Execute the statements and exit.
    #[arg(long)]
    pub execute: Option<String>,
    /// column, csv or json.
    #[arg(long, default_value = "column")]
    pub format: String,
    /// Pretty-print JSON.
    #[arg(long)]
    pub pretty: bool,
    /// Time format: rfc3339, h, m, s, ms, u or ns (the `influx` shell's default: ns).
    #[arg(long, default_value = "ns")]
    pub precision: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    #[error("{0}")]
    Server(String),
}

/// Formats one `/query` JSON answer as the `influx` shell does in `column` mode.
pub fn format_column(resp: &Value) -> Result<String, String> {
    if let Some(e) = resp.get("error").and_then(Value::as_str) {
        return Err(e.to_string());
    }
    let mut out = String::new();
    for result in resp.get("results").and_then(Value::as_array).into_iter().flatten() {
        if let Some(e) = result.get("error").and_then(Value::as_str) {
            return Err(e.to_string());
        }
        for series in result.get("series").and_then(Value::as_array).into_iter().flatten() {
            if !out.is_empty() {
                out.push('\n');
            }
            if let Some(n) = series.get("name").and_then(Value::as_str) {
                out.push_str(&format!("name: {n}\n"));
            }
            if let Some(tags) = series.get("tags").and_then(Value::as_object) {
                let t: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect();
                out.push_str(&format!("tags: {}\n", t.join(", ")));
            }
            let columns: Vec<String> = series
                .get("columns")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|c| c.as_str().unwrap_or("").to_string())
                .collect();
            let mut rows: Vec<Vec<String>> = vec![columns.clone(), columns.iter().map(|c| "-".repeat(c.len())).collect()];
            for row in series.get("values").and_then(Value::as_array).into_iter().flatten() {
                rows.push(
                    row.as_array()
                        .into_iter()
                        .flatten()
                        .map(|v| match v {
                            Value::String(s) => s.clone(),
                            Value::Null => String::new(),
                            other => other.to_string(),
                        })
                        .collect(),
                );
            }
            out.push_str(&tabulate(&rows));
        }
    }
    Ok(out)
}

/// Aligns cells like Go's tabwriter with padding 1 (the `influx` shell's layout).
fn tabulate(rows: &[Vec<String>]) -> String {
    let ncols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..ncols)
        .map(|i| rows.iter().filter_map(|r| r.get(i)).map(|c| c.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 < r.len() {
                line.push_str(&format!("{cell:<w$} ", w = widths[i]));
            } else {
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

struct Session {
    http: reqwest::Client,
    base: String,
    database: String,
    format: String,
    pretty: bool,
    precision: String,
}

impl Session {
    async fn run(&self, q: &str) -> Result<String, ClientError> {
        let mut form = vec![("q", q), ("db", self.database.as_str())];
        if self.precision != "rfc3339" {
            form.push(("epoch", self.precision.as_str()));
        }
        let mut req = self.http.post(format!("{}/query", self.base)).form(&form);
        if self.format == "csv" {
            req = req.header("Accept", "application/csv");
        }
        let resp = req.send().await?;
        let text = resp.text().await?;
        match self.format.as_str() {
            "csv" => Ok(text),
            "json" => {
                let v: Value = serde_json::from_str(&text).map_err(|e| ClientError::Server(e.to_string()))?;
                Ok(if self.pretty { serde_json::to_string_pretty(&v) } else { serde_json::to_string(&v) }.unwrap_or(text) + "\n")
            }
            _ => {
                let v: Value = serde_json::from_str(&text).map_err(|e| ClientError::Server(e.to_string()))?;
                format_column(&v).map_err(ClientError::Server)
            }
        }
    }
}

pub fn main() -> ExitCode {
    let args = ClientArgs::parse_from(crate::cli::normalize_args(std::env::args()));
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fletch: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let mut s = Session {
            http: reqwest::Client::new(),
            base: format!("http://{}:{}", args.host, args.port),
            database: args.database.clone(),
            format: args.format.clone(),
            pretty: args.pretty,
            precision: args.precision.clone(),
        };
        if let Some(q) = &args.execute {
            return match s.run(q).await {
                Ok(out) => {
                    print!("{out}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    // As the influx shell: the message on stdout after ERR:, and on stderr.
                    println!("ERR: {e}");
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            };
        }
        let stdin = std::io::stdin();
        let mut line = String::new();
        loop {
            print!("> ");
            let _ = std::io::stdout().flush();
            line.clear();
            match stdin.lock().read_line(&mut line) {
                Ok(0) | Err(_) => return ExitCode::SUCCESS,
                Ok(_) => {}
            }
            let cmd = line.trim();
            let lower = cmd.to_ascii_lowercase();
            if cmd.is_empty() {
                continue;
            } else if lower == "exit" || lower == "quit" {
                return ExitCode::SUCCESS;
            } else if let Some(db) = lower.strip_prefix("use ").map(|_| cmd[4..].trim().trim_matches('"')) {
                s.database = db.to_string();
                println!("Using database {db}");
            } else if let Some(f) = lower.strip_prefix("format ") {
                s.format = f.trim().to_string();
            } else if let Some(p) = lower.strip_prefix("precision ") {
                s.precision = p.trim().to_string();
            } else {
                match s.run(cmd).await {
                    Ok(out) => print!("{out}"),
                    Err(e) => println!("ERR: {e}"),
                }
            }
        }
    })
}

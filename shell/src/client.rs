//! The `fletch` command-line client, after the `influx` 1.x shell: `-execute` runs statements
//! and prints their results; without it, statements are read from the prompt line by line.
//! Output follows the influx shell's own rules (it asks for chunked answers and prints each
//! chunk as a result), so that `column`, `csv` and `json` read the same character for
//! character. (Import, history and the rest of the shell commands come with the cluster work.)

use std::process::ExitCode;

use clap::Parser;
use serde_json::Value;

use crate::csv_field;

/// Fletch's command-line client (works against any InfluxDB 1.x API).
#[derive(Debug, Parser)]
#[command(
    name = "fletch",
    version,
    about = "Fletch's command-line client, after the influx 1.x shell (works against any InfluxDB 1.x API)"
)]
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
    /// Import a file written for `influx -import`: `# DDL` statements, then `# DML` line
    /// protocol under `# CONTEXT-DATABASE:` / `# CONTEXT-RETENTION-POLICY:`.
    #[arg(long)]
    pub import: bool,
    /// The file to import.
    #[arg(long)]
    pub path: Option<std::path::PathBuf>,
    /// The file to import is gzip-compressed.
    #[arg(long)]
    pub compressed: bool,
    /// Username for servers with authentication (sent as HTTP basic auth).
    #[arg(long, default_value = "", env = "INFLUX_USERNAME")]
    pub username: String,
    /// Password for servers with authentication.
    #[arg(
        long,
        default_value = "",
        env = "INFLUX_PASSWORD",
        hide_env_values = true
    )]
    pub password: String,
    /// Write consistency for INSERT and -import: any, one, quorum or all.
    #[arg(long, default_value = "all")]
    pub consistency: String,
    /// Use https for requests.
    #[arg(long)]
    pub ssl: bool,
    /// Set this when connecting to the cluster using https and not use SSL verification
    /// (a self-signed certificate, say). Without it the server's certificate must chain to a
    /// system root or to the file named by `SSL_CERT_FILE`.
    #[arg(long = "unsafeSsl")]
    pub unsafe_ssl: bool,
}

impl ClientArgs {
    /// `http` or, with `-ssl`, `https`.
    pub fn scheme(&self) -> &'static str {
        if self.ssl { "https" } else { "http" }
    }

    /// The HTTP client: TLS verification off only with `-unsafeSsl`.
    pub fn http_client(&self) -> Result<reqwest::Client, reqwest::Error> {
        reqwest::Client::builder()
            .danger_accept_invalid_certs(self.unsafe_ssl)
            .build()
    }
}

/// A line as Go's `log` package prints it (local time).
fn log_line(msg: &str) -> String {
    format!("{} {msg}", chrono::Local::now().format("%Y/%m/%d %H:%M:%S"))
}

/// `-import`: runs the DDL section's statements, writes the DML section in batches of 5000
/// lines, and reports as `influx -import` does.
async fn import(session: &Session, args: &ClientArgs) -> ExitCode {
    let base = session.base.as_str();
    use std::io::Read;
    let Some(path) = &args.path else {
        eprintln!("{}", log_line("must specify -path when using -import"));
        return ExitCode::FAILURE;
    };
    let raw = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{}", log_line(&format!("open {}: {e}", path.display())));
            return ExitCode::FAILURE;
        }
    };
    let data = if args.compressed {
        let mut out = Vec::new();
        if let Err(e) = flate2::read::GzDecoder::new(raw.as_slice()).read_to_end(&mut out) {
            eprintln!("{}", log_line(&e.to_string()));
            return ExitCode::FAILURE;
        }
        out
    } else {
        raw
    };
    let text = String::from_utf8_lossy(&data);
    let (mut commands, mut inserts) = (0u64, 0u64);
    let mut in_dml = false;
    let mut batch = Batch {
        session,
        precision: &args.precision,
        db: String::new(),
        rp: String::new(),
        lines: Vec::new(),
        failed: 0,
    };
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        if let Some(comment) = trimmed.strip_prefix('#') {
            let c = comment.trim();
            if c == "DDL" {
                in_dml = false;
            } else if c == "DML" {
                in_dml = true;
            } else if let Some(v) = c.strip_prefix("CONTEXT-DATABASE:") {
                batch.flush().await;
                batch.db = v.trim().to_string();
            } else if let Some(v) = c.strip_prefix("CONTEXT-RETENTION-POLICY:") {
                batch.flush().await;
                batch.rp = v.trim().to_string();
            }
            continue;
        }
        if in_dml {
            batch.lines.push(trimmed);
            inserts += 1;
            if batch.lines.len() == 5000 {
                batch.flush().await;
            }
        } else {
            commands += 1;
            match session
                .auth(session.http.post(format!("{base}/query")))
                .form(&[("q", trimmed)])
                .send()
                .await
            {
                Ok(r) => {
                    let v: Value = r.json().await.unwrap_or(Value::Null);
                    let err = v
                        .get("error")
                        .or_else(|| v["results"][0].get("error"))
                        .and_then(Value::as_str);
                    if let Some(e) = err {
                        eprintln!("{}", log_line(&format!("error: {e}")));
                    }
                }
                Err(e) => eprintln!("{}", log_line(&format!("error: {e}"))),
            }
        }
    }
    batch.flush().await;
    let failed = batch.failed;
    if failed > 0 {
        eprintln!("ERROR: {failed} points were not inserted");
        return ExitCode::FAILURE;
    }
    println!("{}", log_line(&format!("Processed {commands} commands")));
    println!("{}", log_line(&format!("Processed {inserts} inserts")));
    println!("{}", log_line(&format!("Failed {failed} inserts")));
    ExitCode::SUCCESS
}

/// The `-import` write batch: lines of one database and retention policy, sent together.
struct Batch<'a> {
    /// The connection, credentials and write consistency.
    session: &'a Session,
    precision: &'a str,
    db: String,
    rp: String,
    lines: Vec<&'a str>,
    /// Points whose batch the server refused.
    failed: u64,
}

impl Batch<'_> {
    /// Writes the pending lines (if any); a refused batch is reported and counted as failed.
    async fn flush(&mut self) {
        if self.lines.is_empty() {
            return;
        }
        let mut url = format!(
            "{}/write?db={}&precision={}&consistency={}",
            self.session.base,
            urlencode(&self.db),
            urlencode(self.precision),
            urlencode(&self.session.consistency)
        );
        if !self.rp.is_empty() {
            url.push_str(&format!("&rp={}", urlencode(&self.rp)));
        }
        let req = self.session.auth(self.session.http.post(url));
        let ok = match req.body(self.lines.join("\n")).send().await {
            Ok(r) if r.status() == reqwest::StatusCode::NO_CONTENT => true,
            Ok(r) => {
                let text = r.text().await.unwrap_or_default();
                eprintln!("{}", log_line(&format!("error writing batch:  {text}")));
                false
            }
            Err(e) => {
                eprintln!("{}", log_line(&format!("error writing batch:  {e}")));
                false
            }
        };
        if !ok {
            eprintln!("{}", log_line(&self.lines.join("\n\n")));
            eprintln!();
            self.failed += self.lines.len() as u64;
        }
        self.lines.clear();
    }
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("x", s)])
        .map(|e| e[2..].to_string())
        .unwrap_or_default()
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// With its causes (`... : invalid peer certificate: UnknownIssuer`), which reqwest's
    /// own text leaves out.
    #[error("{}", with_causes(.0))]
    Http(#[from] reqwest::Error),
    #[error("{0}")]
    Server(String),
}

/// `e` and each error that caused it, `: `-separated, repeated texts once.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

/// The shell's settings and its connection.
pub(crate) struct Session {
    pub(crate) http: reqwest::Client,
    /// `http`, or `https` with `-ssl`.
    pub(crate) scheme: &'static str,
    /// `http://host:port`.
    pub(crate) base: String,
    /// `host:port` as given (what `settings` shows).
    pub(crate) host: String,
    pub(crate) database: String,
    pub(crate) retention_policy: String,
    pub(crate) format: String,
    pub(crate) pretty: bool,
    pub(crate) precision: String,
    pub(crate) consistency: String,
    pub(crate) chunked: bool,
    pub(crate) chunk_size: u64,
    pub(crate) username: String,
    pub(crate) password: String,
}

/// A result as the influx shell's client library holds it (Go struct field order).
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct ShellResult {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    series: Vec<ShellRow>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    messages: Vec<ShellMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct ShellRow {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tags: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default)]
    columns: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    values: Vec<Vec<Value>>,
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct ShellMessage {
    level: String,
    text: String,
}

#[derive(Debug, Default, serde::Serialize)]
struct ShellResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    results: Option<Vec<ShellResult>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Session {
    pub(crate) fn auth(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if self.username.is_empty() {
            req
        } else {
            req.basic_auth(&self.username, Some(&self.password))
        }
    }

    /// `GET /ping`: the server's version.
    pub(crate) async fn ping(&self) -> Result<String, ClientError> {
        let resp = self
            .auth(self.http.get(format!("{}/ping", self.base)))
            .send()
            .await?;
        Ok(resp
            .headers()
            .get("X-Influxdb-Version")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("unknown")
            .to_string())
    }

    /// `connect host:port` (empty: the current host again).
    pub(crate) async fn connect(&mut self, target: &str) -> Result<(), ClientError> {
        if !target.is_empty() {
            self.host = target.to_string();
            self.base = format!("{}://{target}", self.scheme);
        }
        self.ping().await.map(|_| ())
    }

    /// Runs one statement without chunking and returns the JSON answer.
    async fn query_json(&self, q: &str) -> Result<Value, ClientError> {
        let resp = self
            .auth(self.http.post(format!("{}/query", self.base)))
            .form(&[("q", q)])
            .send()
            .await?;
        let text = resp.text().await?;
        serde_json::from_str(&text).map_err(|e| ClientError::Server(format!("{e}: {text}")))
    }

    /// `use db` or `use db.rp`, checked against the server as the influx shell does.
    pub(crate) async fn use_database(&mut self, arg: &str) {
        let unquote = |s: &str| s.trim().trim_matches('"').to_string();
        let (db, rp) = match arg.split_once('.') {
            Some((d, r)) => (unquote(d), Some(unquote(r))),
            None => (unquote(arg), None),
        };
        let names = |v: &Value| -> Vec<String> {
            v["results"][0]["series"][0]["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r[0].as_str().map(str::to_string))
                .collect()
        };
        if let Ok(v) = self.query_json("SHOW DATABASES").await
            && v["results"][0]["error"].is_null()
            && !names(&v).contains(&db)
        {
            println!(
                "ERR: Database {db} doesn't exist. Run SHOW DATABASES for a list of existing databases."
            );
            println!("DB does not exist!");
            return;
        }
        self.database = db.clone();
        self.retention_policy.clear();
        println!("Using database {db}");
        let Some(rp) = rp else { return };
        let q = format!(
            "SHOW RETENTION POLICIES ON {}",
            influxql::ast::quote_ident(&db)
        );
        if let Ok(v) = self.query_json(&q).await
            && v["results"][0]["error"].is_null()
            && !names(&v).contains(&rp)
        {
            println!(
                "ERR: RETENTION POLICY {rp} doesn't exist. Run SHOW RETENTION POLICIES ON \"{db}\" for a list of existing retention polices."
            );
            return;
        }
        println!("Using retention policy {rp}");
        self.retention_policy = rp;
    }

    /// `insert [into [db.]rp] <line protocol>`.
    pub(crate) async fn insert(&self, arg: &str) {
        let (mut db, mut rp, mut line) =
            (self.database.clone(), self.retention_policy.clone(), arg);
        if arg.len() > 5 && arg[..5].eq_ignore_ascii_case("into ") {
            let rest = arg[5..].trim_start();
            let (target, after) = rest.split_once(' ').unwrap_or((rest, ""));
            match target.split_once('.') {
                Some((d, r)) => {
                    db = d.to_string();
                    rp = r.to_string();
                }
                None => rp = target.to_string(),
            }
            line = after.trim_start();
        }
        let mut params = vec![("db", db.as_str()), ("rp", rp.as_str())];
        if self.precision != "rfc3339" {
            params.push(("precision", self.precision.as_str()));
        }
        params.push(("consistency", self.consistency.as_str()));
        let req = self
            .auth(self.http.post(format!("{}/write", self.base)))
            .query(&params)
            .body(line.to_string());
        let body = match req.send().await {
            Ok(resp) if resp.status().is_success() => return,
            Ok(resp) => resp.text().await.unwrap_or_default(),
            Err(e) => format!("{e}\n"),
        };
        if db.is_empty() {
            println!(
                "ERR: {body}\nNote: error may be due to not setting a database or retention policy.\n\
                 Please set a database with the command \"use <database>\" or\n\
                 INSERT INTO <database>.<retention-policy> <point>"
            );
        } else {
            println!("ERR: {body}");
        }
    }

    /// What `settings` prints.
    pub(crate) fn settings(&self) -> String {
        let rows = [
            ("Setting", "Value".to_string()),
            ("--------", "--------".to_string()),
            ("Host", self.host.clone()),
            ("Username", self.username.clone()),
            ("Database", self.database.clone()),
            ("RetentionPolicy", self.retention_policy.clone()),
            ("Pretty", self.pretty.to_string()),
            ("Format", self.format.clone()),
            ("Write Consistency", self.consistency.clone()),
            ("Chunked", self.chunked.to_string()),
            ("Chunk Size", self.chunk_size.to_string()),
        ];
        let mut out: String = rows.iter().map(|(k, v)| format!("{k:<18}{v}\n")).collect();
        out.push('\n');
        out
    }

    /// Runs statements the way the influx shell does: a chunked query, each chunk's results
    /// kept as they came. Returns what to print and, if the query failed, the error (in the
    /// `json` format the failed answer is printed too, as the influx shell does).
    pub(crate) async fn run(&self, q: &str) -> Result<(String, Option<String>), ClientError> {
        let chunk_size = self.chunk_size.to_string();
        let mut form = vec![("q", q), ("db", self.database.as_str())];
        if !self.retention_policy.is_empty() {
            form.push(("rp", self.retention_policy.as_str()));
        }
        if self.chunked {
            form.push(("chunked", "true"));
            if self.chunk_size > 0 {
                form.push(("chunk_size", chunk_size.as_str()));
            }
        }
        if self.precision != "rfc3339" {
            form.push(("epoch", self.precision.as_str()));
        }
        let resp = self
            .auth(self.http.post(format!("{}/query", self.base)))
            .form(&form)
            .send()
            .await?;
        let text = resp.text().await?;
        let mut all = ShellResponse::default();
        let mut results = Vec::new();
        let mut error = None;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line)
                .map_err(|e| ClientError::Server(format!("{e}: {line}")))?;
            if let Some(e) = v.get("error").and_then(Value::as_str) {
                all.error = Some(e.to_string());
                error = Some(e.to_string());
                break;
            }
            for r in v
                .get("results")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let r: ShellResult = serde_json::from_value(r.clone())
                    .map_err(|e| ClientError::Server(e.to_string()))?;
                if let (None, Some(e)) = (&error, &r.error) {
                    error = Some(e.clone());
                }
                results.push(r);
            }
        }
        if all.error.is_none() {
            all.results = Some(results);
        }
        let out = match self.format.as_str() {
            "json" => {
                if self.pretty {
                    let mut buf = Vec::new();
                    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
                    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
                    serde::Serialize::serialize(&all, &mut ser)
                        .map_err(|e| ClientError::Server(e.to_string()))?;
                    String::from_utf8_lossy(&buf).into_owned() + "\n"
                } else {
                    serde_json::to_string(&all).map_err(|e| ClientError::Server(e.to_string()))?
                        + "\n"
                }
            }
            _ if error.is_some() => String::new(),
            "csv" => format_csv(&all),
            _ if is_show_servers(q) => format_servers(&all),
            _ => format_columns(&all),
        };
        Ok((out, error))
    }
}

/// A value as the influx shell prints it (strings bare, null empty, a list as Go's `%v`
/// prints one: `[a b]`, as `SHOW SUBSCRIPTIONS`' destinations).
fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(items) => {
            format!("[{}]", items.iter().map(cell).collect::<Vec<_>>().join(" "))
        }
        other => other.to_string(),
    }
}

fn same_headers(a: Option<&ShellRow>, b: &ShellRow) -> bool {
    a.is_some_and(|a| a.name == b.name && a.tags == b.tags && a.columns == b.columns)
}

/// The lines of one result: for `column`, name/tags lines, a header and dashes; for `csv`,
/// name and tags as leading columns. Cells are separated by tabs.
fn result_lines(r: &ShellResult, csv: bool, suppress_headers: bool) -> Vec<String> {
    let mut rows = Vec::new();
    for (i, s) in r.series.iter().enumerate() {
        let tags: Vec<String> = s
            .tags
            .iter()
            .flatten()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut names: Vec<String> = Vec::new();
        if csv {
            if !s.name.is_empty() {
                names.push("name".into());
            }
            if !tags.is_empty() {
                names.push("tags".into());
            }
        }
        names.extend(s.columns.iter().cloned());
        if i > 0 && !csv && !suppress_headers {
            rows.push(String::new());
        }
        if !csv && !suppress_headers {
            if !s.name.is_empty() {
                rows.push(format!("name: {}", s.name));
            }
            if !tags.is_empty() {
                rows.push(format!("tags: {}", tags.join(", ")));
            }
        }
        if !suppress_headers {
            rows.push(names.join("\t"));
        }
        if !csv && !suppress_headers {
            rows.push(
                names
                    .iter()
                    .map(|n| "-".repeat(n.len()))
                    .collect::<Vec<_>>()
                    .join("\t"),
            );
        }
        for v in &s.values {
            let mut cells: Vec<String> = Vec::new();
            if csv {
                if !s.name.is_empty() {
                    cells.push(s.name.clone());
                }
                if !tags.is_empty() {
                    cells.push(tags.join(","));
                }
            }
            cells.extend(v.iter().map(cell));
            rows.push(cells.join("\t"));
        }
    }
    rows
}

/// Aligns tab-separated cells as Go's tabwriter (min width 0, padding 1) does: a run of
/// consecutive lines with tabs is one block; every cell but a line's last is padded to its
/// column's width in the block plus one space.
fn tabwriter(lines: &[String]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        if !lines[i].contains('\t') {
            out.push_str(&lines[i]);
            out.push('\n');
            i += 1;
            continue;
        }
        let start = i;
        while i < lines.len() && lines[i].contains('\t') {
            i += 1;
        }
        let block: Vec<Vec<&str>> = lines[start..i]
            .iter()
            .map(|l| l.split('\t').collect())
            .collect();
        let ncols = block.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..ncols)
            .map(|c| {
                block
                    .iter()
                    .filter(|r| c + 1 < r.len())
                    .map(|r| r[c].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for r in &block {
            for (c, text) in r.iter().enumerate() {
                if c + 1 < r.len() {
                    out.push_str(&format!("{text:<w$} ", w = widths[c]));
                } else {
                    out.push_str(text);
                }
            }
            out.push('\n');
        }
    }
    out
}

fn is_show_servers(q: &str) -> bool {
    let words: Vec<String> = q
        .trim()
        .trim_end_matches(';')
        .split_whitespace()
        .map(str::to_ascii_uppercase)
        .collect();
    words == ["SHOW", "SERVERS"]
}

/// `SHOW SERVERS` in the layout of the 0.10 clustering guide: the name underlined with dashes,
/// then tab-separated columns.
fn format_servers(resp: &ShellResponse) -> String {
    let mut blocks = Vec::new();
    for r in resp.results.iter().flatten() {
        for s in &r.series {
            let title = format!("name: {}", s.name);
            let mut block = format!(
                "{title}\n{}\n{}\n",
                "-".repeat(title.len()),
                s.columns.join("\t")
            );
            for row in &s.values {
                let cells: Vec<String> = row.iter().map(cell).collect();
                block.push_str(&cells.join("\t"));
                block.push('\n');
            }
            blocks.push(block);
        }
    }
    blocks.join("\n")
}

/// The influx shell's `column` format.
fn format_columns(resp: &ShellResponse) -> String {
    let empty = Vec::new();
    let results = resp.results.as_ref().unwrap_or(&empty);
    let mut lines: Vec<String> = Vec::new();
    let mut out = String::new();
    let mut previous: Option<&ShellRow> = None;
    for (i, r) in results.iter().enumerate() {
        for m in &r.messages {
            out.push_str(&format!("{}: {}.\n", m.level, m.text));
        }
        let suppress = r.series.first().is_some_and(|s| same_headers(previous, s));
        if !suppress {
            if let Some(s) = r.series.first() {
                previous = Some(s);
            }
        }
        if !suppress && i > 0 {
            lines.push(String::new());
        }
        lines.extend(result_lines(r, false, suppress));
    }
    out.push_str(&tabwriter(&lines));
    out
}

/// The influx shell's `csv` format.
fn format_csv(resp: &ShellResponse) -> String {
    let mut out = String::new();
    let mut previous: Option<&ShellRow> = None;
    for r in resp.results.iter().flatten() {
        let suppress = r.series.first().is_some_and(|s| same_headers(previous, s));
        if !suppress {
            if let Some(s) = r.series.first() {
                previous = Some(s);
            }
        }
        for line in result_lines(r, true, suppress) {
            let fields: Vec<String> = line.split('\t').map(csv_field).collect();
            out.push_str(&fields.join(","));
            out.push('\n');
        }
    }
    out
}

pub fn main() -> ExitCode {
    let args = ClientArgs::parse_from(crate::normalize_args(std::env::args()));
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fletch: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let http = match args.http_client() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("fletch: {e}");
                return ExitCode::FAILURE;
            }
        };
        let mut s = Session {
            http,
            scheme: args.scheme(),
            base: format!("{}://{}:{}", args.scheme(), args.host, args.port),
            host: format!("{}:{}", args.host, args.port),
            database: args.database.clone(),
            retention_policy: String::new(),
            format: args.format.clone(),
            pretty: args.pretty,
            precision: args.precision.clone(),
            consistency: args.consistency.clone(),
            chunked: true,
            chunk_size: 0,
            username: args.username.clone(),
            password: args.password.clone(),
        };
        if args.import {
            return import(&s, &args).await;
        }
        if let Some(q) = &args.execute {
            let failed = |e: &str| {
                // As the influx shell: the message on stdout after ERR:, and on stderr.
                println!("ERR: {e}");
                eprintln!("{e}");
                ExitCode::FAILURE
            };
            return match s.run(q).await {
                Ok((out, error)) => {
                    print!("{out}");
                    match error {
                        Some(e) => failed(&e),
                        None => ExitCode::SUCCESS,
                    }
                }
                Err(e) => failed(&e.to_string()),
            };
        }
        crate::interactive::interactive(&mut s).await
    })
}

//! Configuration: one typed struct per concern, each with defaults, layered as
//! flags > environment (`FLETCH_<SECTION>_<KEY>`) > TOML file > defaults.
//!
//! The file uses InfluxDB's section and key names (`[meta] bind-address`, `[http]
//! max-body-size`, ...), so an existing `influxdb.conf` loads: keys Fletch does not know are
//! reported as warnings, never errors. A value of the wrong type, an address that does not
//! parse or a duration that does not read is an error naming the key, before anything binds.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Value;

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Syntax { path: String, message: String },
    #[error("config {key}: {message}")]
    Invalid { key: String, message: String },
}

/// Why Fletch refuses to start with `[section] key = value`: a security setting it does not
/// implement, which, ignored, would leave users believing they are protected. `None` for
/// keys it may ignore with a warning (or these keys set to their off values).
fn unhonoured(section: &str, key: &str, value: &toml::Value) -> Option<String> {
    let on = match value {
        toml::Value::Boolean(b) => *b,
        toml::Value::String(s) => !s.is_empty(),
        toml::Value::Integer(i) => *i != 0,
        _ => true,
    };
    let why = match (section, key) {
        ("meta", "auth-enabled") => {
            "the meta HTTP API has no users of its own: it is closed to all but the cluster's nodes by [meta] internal-shared-secret; set that instead"
        }
        ("meta", "https-insecure-tls") => {
            "Fletch always verifies other nodes' certificates; name the CA that signed them in [meta] https-ca-certificate instead"
        }
        ("http", "pprof-auth-enabled" | "ping-auth-enabled") => {
            "credentials on /debug/pprof and /ping are not implemented yet"
        }
        _ => return None,
    };
    on.then(|| format!("{why}; remove the key or set it off to start"))
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        message: message.into(),
    }
}

/// `[meta]`: the catalog's Raft member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct MetaConfig {
    pub enabled: bool,
    /// Raft log, snapshots and the node's identity.
    pub dir: String,
    /// Raft and internal RPC (one port).
    pub bind_address: String,
    /// The meta HTTP API (`-join` targets this address).
    pub http_bind_address: String,
    /// The host name or IP other nodes and clients use to reach this node, when it differs from
    /// the bound addresses (behind Docker or NAT, or when binding 0.0.0.0). The ports stay those
    /// of `bind-address`, `http-bind-address` and `[http] bind-address`.
    pub advertise_address: String,
    /// Meta HTTP addresses of cluster members to join (`host:8091,host:8091`), tried in order;
    /// empty for the first node. Also `-join` and `FLETCH_JOIN`. Ignored by a node that is
    /// already a member.
    pub join: String,
    /// How many meta nodes vote in Raft (odd); further meta nodes are standbys.
    pub voters: u64,
    /// Interval of the leader's heartbeats.
    pub heartbeat_interval: GoDuration,
    /// A follower that hears no leader for this long (randomized up to twice as long) calls an
    /// election.
    pub election_timeout: GoDuration,
    /// How long a catalog change waits for a leader and a commit before it fails with
    /// `meta service unavailable: no quorum`.
    pub commit_timeout: GoDuration,
    /// How long a voter may fail to answer the leader before a standby takes its place.
    pub promote_after: GoDuration,
    /// A snapshot of the catalog is taken after this many Raft log entries; older entries are
    /// then dropped, and a member that falls further behind catches up from the snapshot.
    pub snapshot_after_entries: u64,
    /// On start, how long the node waits to apply the catalog up to the leader's commit index
    /// before it serves; past it, it serves from its own copy and logs a warning.
    pub catch_up_timeout: GoDuration,
    /// The secret the cluster's nodes share (Enterprise's `meta-internal-shared-secret`): every
    /// call on the internal port (Raft, forwarded writes, shard writes, remote reads, hinted
    /// handoff) and on the meta HTTP API (`/join`, `/status`) must carry a credential derived
    /// from it, or is refused; a node with another secret cannot join. Required as soon as any
    /// listen address is not loopback. `fletchd config` prints it as `[REDACTED]`.
    pub internal_shared_secret: String,
    /// Serve the internal port (Raft, RPC) and the meta HTTP API over TLS only, and call the
    /// other nodes over TLS: every node of a cluster sets it alike.
    pub https_enabled: bool,
    /// PEM file of the certificate chain this node presents to the others (its names must
    /// cover the addresses they reach it by).
    pub https_certificate: String,
    /// PEM file of its private key; empty: the key is in `https-certificate`'s file.
    pub https_private_key: String,
    /// PEM file of the CA(s) that signed the nodes' certificates; empty: the system's roots.
    pub https_ca_certificate: String,
}

impl MetaConfig {
    /// The `join` list, split on commas.
    pub fn join_addresses(&self) -> Vec<String> {
        self.join
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// `[data]`: the storage engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct DataConfig {
    pub enabled: bool,
    /// Parquet files and shard manifests.
    pub dir: String,
    pub wal_dir: String,
    /// Writes get 503 while this many bytes are buffered and not yet persisted.
    pub cache_max_memory_size: Size,
    /// The buffer is persisted to Parquet when it reaches this many bytes...
    pub cache_snapshot_memory_size: Size,
    /// ...or when its oldest write is this old.
    pub cache_snapshot_write_cold_duration: GoDuration,
    /// A shard that has taken no write or delete for this long is compacted down to few large
    /// files.
    pub compact_full_write_cold_duration: GoDuration,
    /// A measurement of a shard with this many Parquet files is compacted into one.
    pub compact_max_files: u64,
    /// Largest number of rows in one Parquet file written by compaction.
    pub max_rows_per_file: u64,
    /// Accept unsigned integer field values (`123u`); InfluxDB 1.x OSS refuses them.
    pub unsigned_integers: bool,
}

/// `[retention]`: expiry of shard groups past their retention policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct RetentionConfig {
    pub enabled: bool,
    pub check_interval: GoDuration,
}

/// `[http]`: the client API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct HttpConfig {
    pub enabled: bool,
    pub bind_address: String,
    /// Largest accepted `/write` body in bytes (after gzip decoding); 0 means no limit.
    pub max_body_size: u64,
    /// Most rows a non-chunked `/query` answer carries; past it the answer is cut and its last
    /// series marked `partial`, as 1.x does. 0 means no limit.
    pub max_row_limit: u64,
    /// Most Arrow bytes a non-chunked `/query` answer may hold in memory before it is written;
    /// past it the statement answers an error (chunked answers are not held). 0: no limit.
    pub max_response_memory: Size,
    /// Log every request at info level (a `p` parameter's password is never shown).
    pub log_enabled: bool,
    /// Credentials are required (once an admin user exists, as 1.x): reads need READ, writes
    /// WRITE, admin statements an admin (docs/security.md).
    pub auth_enabled: bool,
    /// The HMAC key (HS256/384/512) of JWT bearer tokens (`Authorization: Bearer <jwt>` with
    /// `username` and `exp` claims, as 1.x); empty: JWTs are refused.
    pub shared_secret: String,
    /// Failed logins one client address may make in a minute; past it, its requests answer
    /// 429 until the minute is over. 0 = no limit.
    pub max_failed_logins: u32,
    /// Serve the API port (HTTP and Flight SQL, and `[flight] bind-address`) over TLS only.
    pub https_enabled: bool,
    /// PEM file of the certificate chain the API port presents.
    pub https_certificate: String,
    /// PEM file of its private key; empty: the key is in `https-certificate`'s file (1.x).
    pub https_private_key: String,
}

/// `[flight]`: Arrow Flight (SQL) for clients. It is always served on `[http] bind-address`
/// too (gRPC beside HTTP/1.1, as InfluxDB 3 serves both); this adds a port of its own.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct FlightConfig {
    /// A second address serving Flight and Flight SQL only; empty: none.
    pub bind_address: String,
}

/// `[coordinator]`: how writes reach the owners of their shards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct CoordinatorConfig {
    /// How long a write waits for the acknowledgements its consistency level needs before it
    /// answers `timeout`.
    pub write_timeout: GoDuration,
    /// How long a query request may run, reads of other nodes' shards included, before its
    /// running statement answers `query-timeout limit exceeded`; 0 = no limit (1.x's default).
    pub query_timeout: GoDuration,
    /// Requests (all their statements) running on this node at once; one more answers 1.x's
    /// `max-concurrent-queries limit exceeded(n, limit)`. 0 = no limit (1.x's default).
    pub max_concurrent_queries: usize,
    /// A request still running this long is logged as a slow query when it ends (1.x's
    /// `Detected slow query`); 0 = never.
    pub log_queries_after: GoDuration,
    /// How many reads of other nodes' shards (scans and plan fragments, all queries together)
    /// this node sets up on any one data node at a time, until that node starts answering;
    /// more wait their turn. 0 = no limit.
    pub max_remote_reads_per_node: usize,
    /// Most `GROUP BY time` buckets a statement with a lower time bound may span (to now when
    /// it has no upper one); past it, 1.x's `max-select-buckets limit exceeded: (n/limit)`.
    /// 0 = no limit (1.x's default).
    pub max_select_buckets: u64,
    /// Most points (rows) one measurement of a `SELECT` may read in its time range and tag
    /// conditions; past it, 1.x's `max-select-point limit exceeed: (n/limit)`. 0 = no limit.
    pub max_select_point: u64,
    /// Most series one measurement of a `SELECT` may read; past it, 1.x's
    /// `max-select-series limit exceeded: (n/limit)`. 0 = no limit.
    pub max_select_series: u64,
    /// Most bytes one query's operators (hash aggregates, sorts, joins, buffers) may hold at
    /// once; sorts and grouped aggregates spill to `[data] dir/spill` past it, others fail the
    /// statement with `query-memory-bytes limit exceeded`. 0 = bounded by the pool alone.
    pub query_memory_bytes: Size,
    /// Most bytes all queries' operators on this node may hold together (past it,
    /// `query-pool-bytes limit exceeded`). 0 = half of the machine's memory.
    pub query_pool_bytes: Size,
}

impl CoordinatorConfig {
    /// `query-pool-bytes` in bytes: the configured value, or half of the machine's memory
    /// (`None` when that cannot be read: no bound).
    pub fn query_pool(&self) -> Option<u64> {
        match self.query_pool_bytes.0 {
            0 => total_memory().map(|m| m / 2),
            n => Some(n),
        }
    }
}

/// The machine's memory (`MemTotal` of `/proc/meminfo`), in bytes.
fn total_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// `[hinted-handoff]`: points an owner of their shard could not take, queued on this node's
/// disk until it can (InfluxDB Enterprise's keys and defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct HintedHandoffConfig {
    /// Off: a write to an owner that cannot take it fails for that owner (nothing is queued).
    pub enabled: bool,
    /// One queue directory per destination node.
    pub dir: String,
    /// Bytes one destination's queue may hold; past it writes for that node answer
    /// `queue is full`.
    pub max_size: Size,
    /// Queued points older than this are dropped.
    pub max_age: GoDuration,
    /// Bytes per second a queue is drained at; 0 = unlimited.
    pub retry_rate_limit: u64,
    /// How soon a node that did not take queued points is tried again...
    pub retry_interval: GoDuration,
    /// ...doubling after each failure up to this.
    pub retry_max_interval: GoDuration,
    /// How often points past `max-age` are dropped.
    pub purge_interval: GoDuration,
}

/// `[anti-entropy]`: comparing and repairing the owners' copies of cold shards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct AntiEntropyConfig {
    /// On by default (InfluxDB Enterprise's is off).
    pub enabled: bool,
    /// How often this node checks the cold shards it is the first owner of.
    pub check_interval: GoDuration,
}

/// `[continuous_queries]` (1.x's section): running continuous queries. They run on the meta
/// leader only, so the setting matters on meta nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct ContinuousQueriesConfig {
    pub enabled: bool,
    /// How often the leader checks which continuous queries are due.
    pub run_interval: GoDuration,
    /// Log each run (its query and time range).
    pub log_enabled: bool,
}

impl Default for ContinuousQueriesConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            run_interval: GoDuration(Duration::from_secs(1)),
            log_enabled: true,
        }
    }
}

/// `[subscriber]` (1.x's section): copying writes to the destinations of `CREATE
/// SUBSCRIPTION`. The node that accepts a write forwards it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct SubscriberConfig {
    pub enabled: bool,
    /// How long a send to an `http`/`https` destination may take.
    pub http_timeout: GoDuration,
    /// Accept any certificate from an `https` destination.
    pub insecure_skip_verify: bool,
    /// A PEM file of the CA certificates `https` destinations are checked against (instead
    /// of the system's); empty: the system's.
    pub ca_certs: String,
    /// Sends in flight at a time, per subscription.
    pub write_concurrency: usize,
    /// Writes queued per subscription; a write that finds the queue full is not sent.
    pub write_buffer_size: usize,
}

impl Default for SubscriberConfig {
    fn default() -> Self {
        let d = coordinator::SubscriberConfig::default();
        Self {
            enabled: d.enabled,
            http_timeout: GoDuration(d.http_timeout),
            insecure_skip_verify: d.insecure_skip_verify,
            ca_certs: String::new(),
            write_concurrency: d.write_concurrency,
            write_buffer_size: d.write_buffer_size,
        }
    }
}

impl SubscriberConfig {
    /// The coordinator's form of it.
    pub fn to_coordinator(&self) -> coordinator::SubscriberConfig {
        coordinator::SubscriberConfig {
            enabled: self.enabled,
            http_timeout: self.http_timeout.0,
            insecure_skip_verify: self.insecure_skip_verify,
            ca_certs: (!self.ca_certs.is_empty()).then(|| PathBuf::from(&self.ca_certs)),
            write_concurrency: self.write_concurrency,
            write_buffer_size: self.write_buffer_size,
        }
    }
}

/// `[[udp]]` (1.x's section, one per listener): line protocol over UDP into one database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct UdpConfig {
    pub enabled: bool,
    /// Where datagrams are received (`:8089` means all interfaces).
    pub bind_address: String,
    /// The database points go to; created at the first write if missing.
    pub database: String,
    /// Its retention policy; empty: the default one.
    pub retention_policy: String,
    /// The timestamps' unit (`n`, `u`, `ms`, `s`, `m`, `h`; empty: nanoseconds).
    pub precision: String,
    /// Points written at once...
    pub batch_size: usize,
    /// ...or whatever has come after this long.
    pub batch_timeout: GoDuration,
}

impl Default for UdpConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            bind_address: ":8089".into(),
            database: "udp".into(),
            retention_policy: String::new(),
            precision: String::new(),
            batch_size: 5000,
            batch_timeout: GoDuration(Duration::from_secs(1)),
        }
    }
}

/// `[logging]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct LoggingConfig {
    /// `error`, `warn`, `info`, `debug` or `trace`; `RUST_LOG` overrides it.
    pub level: String,
}

/// The whole configuration of a `fletchd` node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct Config {
    pub meta: MetaConfig,
    pub data: DataConfig,
    pub retention: RetentionConfig,
    pub coordinator: CoordinatorConfig,
    pub hinted_handoff: HintedHandoffConfig,
    pub anti_entropy: AntiEntropyConfig,
    #[serde(rename = "continuous_queries")]
    pub continuous_queries: ContinuousQueriesConfig,
    pub subscriber: SubscriberConfig,
    /// `[[udp]]` listeners (none by default).
    #[serde(default)]
    pub udp: Vec<UdpConfig>,
    pub http: HttpConfig,
    pub flight: FlightConfig,
    pub logging: LoggingConfig,
}

impl Default for MetaConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            dir: "~/.fletch/meta".into(),
            bind_address: "127.0.0.1:8088".into(),
            http_bind_address: "127.0.0.1:8091".into(),
            advertise_address: String::new(),
            join: String::new(),
            voters: 3,
            heartbeat_interval: GoDuration(Duration::from_millis(250)),
            election_timeout: GoDuration(Duration::from_secs(1)),
            commit_timeout: GoDuration(Duration::from_secs(5)),
            promote_after: GoDuration(Duration::from_secs(10)),
            snapshot_after_entries: 5000,
            catch_up_timeout: GoDuration(Duration::from_secs(10)),
            internal_shared_secret: String::new(),
            https_enabled: false,
            https_certificate: "/etc/ssl/influxdb.pem".into(),
            https_private_key: String::new(),
            https_ca_certificate: String::new(),
        }
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            dir: "~/.fletch/data".into(),
            wal_dir: "~/.fletch/wal".into(),
            cache_max_memory_size: Size(1 << 30),
            cache_snapshot_memory_size: Size(25 << 20),
            cache_snapshot_write_cold_duration: GoDuration(Duration::from_secs(600)),
            compact_full_write_cold_duration: GoDuration(Duration::from_secs(4 * 3600)),
            compact_max_files: 8,
            max_rows_per_file: 4_000_000,
            unsigned_integers: false,
        }
    }
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            check_interval: GoDuration(Duration::from_secs(30 * 60)),
        }
    }
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        Self {
            write_timeout: GoDuration(Duration::from_secs(10)),
            query_timeout: GoDuration(Duration::ZERO),
            max_concurrent_queries: 0,
            log_queries_after: GoDuration(Duration::ZERO),
            max_remote_reads_per_node: 32,
            max_select_buckets: 0,
            max_select_point: 0,
            max_select_series: 0,
            query_memory_bytes: Size(0),
            query_pool_bytes: Size(0),
        }
    }
}

impl Default for HintedHandoffConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            dir: "~/.fletch/hh".into(),
            max_size: Size(10 << 30),
            max_age: GoDuration(Duration::from_secs(168 * 3600)),
            retry_rate_limit: 0,
            retry_interval: GoDuration(Duration::from_secs(1)),
            retry_max_interval: GoDuration(Duration::from_secs(200)),
            purge_interval: GoDuration(Duration::from_secs(60)),
        }
    }
}

impl Default for AntiEntropyConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            check_interval: GoDuration(Duration::from_secs(300)),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            bind_address: "127.0.0.1:8086".into(),
            max_body_size: 25_000_000,
            max_row_limit: 0,
            max_response_memory: Size(512 << 20),
            log_enabled: false,
            auth_enabled: false,
            shared_secret: String::new(),
            max_failed_logins: crate::auth::MAX_FAILURES,
            https_enabled: false,
            https_certificate: "/etc/ssl/influxdb.pem".into(),
            https_private_key: String::new(),
        }
    }
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
        }
    }
}

/// A duration written as Go writes them: `10m`, `1h30m`, `500ms`, `30s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoDuration(pub Duration);

impl GoDuration {
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if s == "0" {
            return Some(Self(Duration::ZERO));
        }
        let mut total: u128 = 0;
        let mut rest = s;
        if rest.is_empty() {
            return None;
        }
        while !rest.is_empty() {
            let num_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            let n: f64 = rest[..num_len].parse().ok()?;
            rest = &rest[num_len..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let mult: f64 = match &rest[..unit_len] {
                "ns" => 1.0,
                "us" | "µs" | "u" => 1e3,
                "ms" => 1e6,
                "s" => 1e9,
                "m" => 60e9,
                "h" => 3600e9,
                "d" => 86400e9,
                _ => return None,
            };
            total += (n * mult) as u128;
            rest = &rest[unit_len..];
        }
        Some(Self(Duration::from_nanos(
            total.min(u64::MAX as u128) as u64
        )))
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs();
        if self.0.subsec_nanos() != 0 {
            return write!(f, "{}ms", self.0.as_millis());
        }
        match secs {
            0 => f.write_str("0s"),
            s if s % 3600 == 0 => write!(f, "{}h", s / 3600),
            s if s % 60 == 0 => write!(f, "{}m", s / 60),
            s => write!(f, "{s}s"),
        }
    }
}

impl Serialize for GoDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("invalid duration {s:?} (use e.g. 30s, 10m, 1h30m)"))
        })
    }
}

/// A byte size: an integer, or a string with a `k`, `m` or `g` suffix as 1.x accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

impl Size {
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        let (num, mult) = match s.chars().last()? {
            'k' => (&s[..s.len() - 1], 1u64 << 10),
            'm' => (&s[..s.len() - 1], 1 << 20),
            'g' => (&s[..s.len() - 1], 1 << 30),
            _ => (&s[..], 1),
        };
        num.trim().parse::<u64>().ok()?.checked_mul(mult).map(Self)
    }
}

impl Serialize for Size {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Str(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => Ok(Self(n)),
            Raw::Str(s) => Self::parse(&s).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "invalid size {s:?} (use bytes, or e.g. 512m, 1g)"
                ))
            }),
        }
    }
}

/// Values given on the command line, the highest layer.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `(section, key, value)` triples, e.g. `("http", "bind-address", "127.0.0.1:9086")`.
    pub values: Vec<(String, String, String)>,
}

/// The configuration with what loading it had to say.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// Unknown sections and keys, one line each.
    pub warnings: Vec<String>,
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

/// Parses a flag or environment string into the type the default has.
fn typed_like(default: &Value, raw: &str, key: &str) -> Result<Value, ConfigError> {
    Ok(match default {
        Value::Boolean(_) => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Value::Boolean(true),
            "false" | "0" | "no" | "off" => Value::Boolean(false),
            _ => {
                return Err(invalid(
                    key,
                    format!("expected true or false, found {raw:?}"),
                ));
            }
        },
        Value::Integer(_) => match raw.trim().parse::<i64>() {
            Ok(n) => Value::Integer(n),
            // Sizes also accept suffixes.
            Err(_) => match Size::parse(raw) {
                Some(s) => Value::Integer(s.0 as i64),
                None => return Err(invalid(key, format!("expected an integer, found {raw:?}"))),
            },
        },
        _ => Value::String(raw.to_string()),
    })
}

/// `FLETCH_<SECTION>_<KEY>` for a key.
pub fn env_name(section: &str, key: &str) -> String {
    format!("FLETCH_{}_{}", section, key)
        .to_ascii_uppercase()
        .replace('-', "_")
}

impl Config {
    /// Loads defaults, then `file` (if any), then the environment, then `overrides`.
    pub fn load(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        overrides: &Overrides,
    ) -> Result<Loaded, ConfigError> {
        let defaults =
            Value::try_from(Config::default()).map_err(|e| invalid("defaults", e.to_string()))?;
        let Value::Table(defaults) = defaults else {
            return Err(invalid("defaults", "not a table"));
        };
        let mut merged = defaults.clone();
        let mut warnings = Vec::new();
        let mut udp: Vec<UdpConfig> = Vec::new();

        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.display().to_string(),
                source,
            })?;
            let doc: toml::Table =
                text.parse()
                    .map_err(|e: toml::de::Error| ConfigError::Syntax {
                        path: path.display().to_string(),
                        message: e.to_string(),
                    })?;
            for (section, value) in doc {
                if section == "udp" {
                    // An array of tables: each listener with its defaults.
                    let items = match value {
                        Value::Array(items) => items,
                        table @ Value::Table(_) => vec![table],
                        other => {
                            return Err(invalid(
                                "[[udp]]",
                                format!("expected [[udp]] sections, found {}", type_name(&other)),
                            ));
                        }
                    };
                    let base = Value::try_from(UdpConfig::default())
                        .map_err(|e| invalid("defaults", e.to_string()))?;
                    for item in items {
                        let Value::Table(given) = &item else {
                            return Err(invalid("[[udp]]", "expected a table"));
                        };
                        let mut full = match &base {
                            Value::Table(t) => t.clone(),
                            _ => toml::Table::new(),
                        };
                        for (k, v) in given {
                            if !full.contains_key(k) {
                                warnings.push(format!("unknown config key [[udp]] {k} ignored"));
                                continue;
                            }
                            full.insert(k.clone(), v.clone());
                        }
                        udp.push(deserialize_section::<UdpConfig>(
                            &Value::Table(full),
                            Some(&base),
                            "[udp]",
                        )?);
                    }
                    continue;
                }
                let Some(Value::Table(known)) = defaults.get(&section) else {
                    warnings.push(match value {
                        Value::Table(_) => format!("unknown config section [{section}] ignored"),
                        _ => format!("unknown config key {section} ignored"),
                    });
                    continue;
                };
                let Value::Table(given) = value else {
                    return Err(invalid(
                        &section,
                        format!(
                            "expected a [{section}] section, found {}",
                            type_name(&value)
                        ),
                    ));
                };
                for (key, v) in given {
                    let Some(default) = known.get(&key) else {
                        if let Some(why) = unhonoured(&section, &key, &v) {
                            return Err(invalid(&format!("[{section}] {key}"), why));
                        }
                        warnings.push(format!("unknown config key [{section}] {key} ignored"));
                        continue;
                    };
                    let ok = matches!(
                        (default, &v),
                        (Value::String(_), Value::String(_))
                            | (Value::Integer(_), Value::Integer(_) | Value::String(_))
                            | (Value::Boolean(_), Value::Boolean(_))
                    );
                    if !ok {
                        return Err(invalid(
                            &format!("[{section}] {key}"),
                            format!("expected {}, found {}", type_name(default), type_name(&v)),
                        ));
                    }
                    if let Some(Value::Table(t)) = merged.get_mut(&section) {
                        t.insert(key, v);
                    }
                }
            }
        }

        for (section, value) in &defaults {
            let Value::Table(keys) = value else { continue };
            for (key, default) in keys {
                if let Some(raw) = env(&env_name(section, key)) {
                    let v = typed_like(default, &raw, &env_name(section, key))?;
                    if let Some(Value::Table(t)) = merged.get_mut(section) {
                        t.insert(key.clone(), v);
                    }
                }
            }
        }

        // `FLETCH_JOIN`, as short as the `-join` flag it stands for.
        if env(&env_name("meta", "join")).is_none() {
            if let (Some(raw), Some(Value::Table(t))) = (env("FLETCH_JOIN"), merged.get_mut("meta"))
            {
                t.insert("join".into(), Value::String(raw));
            }
        }

        for (section, key, raw) in &overrides.values {
            let name = format!("[{section}] {key}");
            let default = defaults
                .get(section)
                .and_then(|s| s.get(key))
                .ok_or_else(|| invalid(&name, "no such setting"))?;
            let v = typed_like(default, raw, &name)?;
            if let Some(Value::Table(t)) = merged.get_mut(section) {
                t.insert(key.clone(), v);
            }
        }

        let mut config = Config::default();
        macro_rules! section {
            ($field:ident, $name:literal) => {
                if let Some(v) = merged.get($name) {
                    config.$field = deserialize_section(v, defaults.get($name), $name)?;
                }
            };
        }
        section!(meta, "meta");
        section!(data, "data");
        section!(retention, "retention");
        section!(coordinator, "coordinator");
        section!(hinted_handoff, "hinted-handoff");
        section!(anti_entropy, "anti-entropy");
        section!(continuous_queries, "continuous_queries");
        section!(subscriber, "subscriber");
        config.udp = udp;
        section!(http, "http");
        section!(flight, "flight");
        section!(logging, "logging");
        config.validate()?;
        Ok(Loaded { config, warnings })
    }

    /// Checks what types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let addr = |key: &str, v: &str| -> Result<(), ConfigError> {
            parse_addr(v).map(|_| ()).map_err(|m| invalid(key, m))
        };
        addr("[meta] bind-address", &self.meta.bind_address)?;
        addr("[meta] http-bind-address", &self.meta.http_bind_address)?;
        addr("[http] bind-address", &self.http.bind_address)?;
        if !self.flight.bind_address.is_empty() {
            addr("[flight] bind-address", &self.flight.bind_address)?;
        }
        // Another host could reach the internal port (or will, once one address is public):
        // nodes must then prove they belong to the cluster.
        if self.meta.internal_shared_secret.is_empty() {
            let listened = [
                (true, "[meta] bind-address", &self.meta.bind_address),
                (
                    self.meta.enabled,
                    "[meta] http-bind-address",
                    &self.meta.http_bind_address,
                ),
                (
                    self.http.enabled,
                    "[http] bind-address",
                    &self.http.bind_address,
                ),
                (
                    !self.flight.bind_address.is_empty(),
                    "[flight] bind-address",
                    &self.flight.bind_address,
                ),
            ];
            for (used, key, a) in listened {
                if used && parse_addr(a).is_ok_and(|s| !s.ip().is_loopback()) {
                    return Err(invalid(
                        "[meta] internal-shared-secret",
                        format!(
                            "required when a listen address is not loopback ({key} = {a:?}): without it any host that reaches the internal port could join the cluster, write to shards and read them; set the same secret on every node (FLETCH_META_INTERNAL_SHARED_SECRET)"
                        ),
                    ));
                }
            }
        }
        for (key, dir) in [
            ("[meta] dir", &self.meta.dir),
            ("[data] dir", &self.data.dir),
            ("[data] wal-dir", &self.data.wal_dir),
            ("[hinted-handoff] dir", &self.hinted_handoff.dir),
        ] {
            if dir.trim().is_empty() {
                return Err(invalid(key, "must not be empty"));
            }
        }
        if self.coordinator.write_timeout.0.is_zero() {
            return Err(invalid("[coordinator] write-timeout", "must be above 0"));
        }
        let hh = &self.hinted_handoff;
        if hh.retry_interval.0.is_zero() || hh.retry_max_interval.0 < hh.retry_interval.0 {
            return Err(invalid(
                "[hinted-handoff] retry-interval",
                "must be above 0 and at most retry-max-interval",
            ));
        }
        if self.continuous_queries.run_interval.0.is_zero() {
            return Err(invalid(
                "[continuous_queries] run-interval",
                "must be above 0",
            ));
        }
        for u in self.udp.iter().filter(|u| u.enabled) {
            addr("[[udp]] bind-address", &u.bind_address)?;
            if u.database.trim().is_empty() {
                return Err(invalid("[[udp]] database", "must not be empty"));
            }
        }
        let sub = &self.subscriber;
        if sub.http_timeout.0.is_zero() {
            return Err(invalid("[subscriber] http-timeout", "must be above 0"));
        }
        if sub.write_concurrency == 0 {
            return Err(invalid("[subscriber] write-concurrency", "must be above 0"));
        }
        if sub.write_buffer_size == 0 {
            return Err(invalid("[subscriber] write-buffer-size", "must be above 0"));
        }
        if !sub.ca_certs.is_empty() && !Path::new(&sub.ca_certs).is_file() {
            return Err(invalid(
                "[subscriber] ca-certs",
                format!("file {} does not exist", sub.ca_certs),
            ));
        }
        if self.anti_entropy.check_interval.0.is_zero() {
            return Err(invalid("[anti-entropy] check-interval", "must be above 0"));
        }
        if hh.purge_interval.0.is_zero() {
            return Err(invalid(
                "[hinted-handoff] purge-interval",
                "must be above 0",
            ));
        }
        if !["error", "warn", "info", "debug", "trace"].contains(&self.logging.level.as_str()) {
            return Err(invalid(
                "[logging] level",
                format!(
                    "expected error, warn, info, debug or trace, found {:?}",
                    self.logging.level
                ),
            ));
        }
        if self.data.cache_snapshot_memory_size.0 > self.data.cache_max_memory_size.0 {
            return Err(invalid(
                "[data] cache-snapshot-memory-size",
                "must not exceed cache-max-memory-size",
            ));
        }
        if !self.meta.enabled && !self.data.enabled {
            return Err(invalid(
                "[meta] enabled",
                "a node needs the meta role, the data role, or both",
            ));
        }
        if self.meta.voters == 0 || self.meta.voters % 2 == 0 {
            return Err(invalid(
                "[meta] voters",
                format!(
                    "must be an odd number (1, 3, 5...), found {}",
                    self.meta.voters
                ),
            ));
        }
        if self.meta.heartbeat_interval.0.is_zero()
            || self.meta.election_timeout.0 < self.meta.heartbeat_interval.0 * 2
        {
            return Err(invalid(
                "[meta] election-timeout",
                "must be at least twice heartbeat-interval (and heartbeat-interval above 0)",
            ));
        }
        if self.meta.snapshot_after_entries == 0 {
            return Err(invalid("[meta] snapshot-after-entries", "must be above 0"));
        }
        if self.meta.commit_timeout.0.is_zero() {
            return Err(invalid("[meta] commit-timeout", "must be above 0"));
        }
        for a in self.meta.join_addresses() {
            // Not resolved here: peers may come up after this node (e.g. under Compose).
            let ok = a
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
            if !ok {
                return Err(invalid(
                    "[meta] join",
                    format!("{a:?} is not a host:port address"),
                ));
            }
        }
        if self.meta.advertise_address.contains(':')
            && !self.meta.advertise_address.starts_with('[')
        {
            return Err(invalid(
                "[meta] advertise-address",
                format!(
                    "a host name or IP without a port, found {:?}",
                    self.meta.advertise_address
                ),
            ));
        }
        Ok(())
    }

    /// The whole configuration as TOML (what `fletchd config` prints); secrets are shown as
    /// `[REDACTED]`.
    pub fn to_toml(&self) -> String {
        let mut shown = self.clone();
        for secret in [
            &mut shown.http.shared_secret,
            &mut shown.meta.internal_shared_secret,
        ] {
            if !secret.is_empty() {
                *secret = "[REDACTED]".into();
            }
        }
        toml::to_string_pretty(&shown)
            .unwrap_or_else(|e| format!("# cannot print the configuration: {e}\n"))
    }
}

/// Deserializes one section; on failure, finds the key whose value is at fault and names it.
fn deserialize_section<T: serde::de::DeserializeOwned>(
    value: &Value,
    defaults: Option<&Value>,
    section: &str,
) -> Result<T, ConfigError> {
    match value.clone().try_into::<T>() {
        Ok(v) => Ok(v),
        Err(e) => {
            if let (Value::Table(given), Some(Value::Table(base))) = (value, defaults) {
                for (key, v) in given {
                    let mut probe = base.clone();
                    probe.insert(key.clone(), v.clone());
                    if let Err(e) = Value::Table(probe).try_into::<T>() {
                        return Err(invalid(
                            &format!("[{section}] {key}"),
                            e.message().to_string(),
                        ));
                    }
                }
            }
            Err(invalid(&format!("[{section}]"), e.message().to_string()))
        }
    }
}

/// Parses `host:port`; an empty host means all interfaces, as in 1.x (`:8086`).
pub fn parse_addr(v: &str) -> Result<SocketAddr, String> {
    let v = v.trim();
    let full = if v.starts_with(':') {
        format!("0.0.0.0{v}")
    } else {
        v.to_string()
    };
    if let Ok(a) = full.parse::<SocketAddr>() {
        return Ok(a);
    }
    use std::net::ToSocketAddrs;
    match full.to_socket_addrs() {
        Ok(mut it) => it
            .next()
            .ok_or_else(|| format!("{v:?} resolves to no address")),
        Err(e) => Err(format!("{v:?} is not a host:port address ({e})")),
    }
}

/// Expands a leading `~` to `$HOME`.
pub fn expand_home(p: &str) -> PathBuf {
    if let Some(rest) = p
        .strip_prefix("~/")
        .or(if p == "~" { Some("") } else { None })
    {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(rest);
        }
    }
    PathBuf::from(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(
        toml: &str,
        env: &[(&str, &str)],
        flags: &[(&str, &str, &str)],
    ) -> Result<Loaded, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.toml");
        std::fs::write(&path, toml).unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let overrides = Overrides {
            values: flags
                .iter()
                .map(|(s, k, v)| (s.to_string(), k.to_string(), v.to_string()))
                .collect(),
        };
        Config::load(Some(&path), &lookup, &overrides)
    }

    #[test]
    fn layers_flags_over_env_over_file_over_defaults() {
        let l = load(
            "[http]\nbind-address = \"127.0.0.1:1\"\nmax-body-size = 7\n",
            &[("FLETCH_HTTP_BIND_ADDRESS", "127.0.0.1:2")],
            &[],
        )
        .unwrap();
        assert_eq!(l.config.http.bind_address, "127.0.0.1:2");
        assert_eq!(l.config.http.max_body_size, 7);
        assert_eq!(l.config.meta.http_bind_address, "127.0.0.1:8091");
        let l = load(
            "",
            &[("FLETCH_HTTP_BIND_ADDRESS", "127.0.0.1:2")],
            &[("http", "bind-address", "127.0.0.1:3")],
        )
        .unwrap();
        assert_eq!(l.config.http.bind_address, "127.0.0.1:3");
    }

    #[test]
    fn cluster_settings_are_checked_and_join_has_a_short_env_name() {
        let err = |toml: &str| load(toml, &[], &[]).unwrap_err().to_string();
        assert_eq!(
            err("[meta]\nvoters = 2\n"),
            "config [meta] voters: must be an odd number (1, 3, 5...), found 2"
        );
        assert!(
            err("[meta]\nelection-timeout = \"100ms\"\n")
                .starts_with("config [meta] election-timeout: must be at least twice"),
        );
        assert_eq!(
            err("[meta]\njoin = \"influx1:8091,influx2\"\n"),
            "config [meta] join: \"influx2\" is not a host:port address"
        );
        assert_eq!(
            err("[meta]\nadvertise-address = \"influx1:8088\"\n"),
            "config [meta] advertise-address: a host name or IP without a port, found \"influx1:8088\""
        );
        assert_eq!(
            err("[meta]\nenabled = false\n[data]\nenabled = false\n"),
            "config [meta] enabled: a node needs the meta role, the data role, or both"
        );
        // Peers are not resolved at load time: they may come up later.
        let l = load("", &[("FLETCH_JOIN", "influx1:8091, influx2:8091")], &[]).unwrap();
        assert_eq!(
            l.config.meta.join_addresses(),
            ["influx1:8091", "influx2:8091"]
        );
        // The long name wins over the short one.
        let l = load(
            "",
            &[("FLETCH_JOIN", "a:1"), ("FLETCH_META_JOIN", "b:2")],
            &[],
        )
        .unwrap();
        assert_eq!(l.config.meta.join_addresses(), ["b:2"]);
    }

    #[test]
    fn subscriber_settings_are_checked_at_start() {
        let l = load(
            "[subscriber]\nhttp-timeout = \"5s\"\nwrite-concurrency = 2\n",
            &[],
            &[],
        )
        .unwrap();
        let c = l.config.subscriber.to_coordinator();
        assert_eq!(c.http_timeout, Duration::from_secs(5));
        assert_eq!((c.write_concurrency, c.write_buffer_size), (2, 1000));
        assert!(c.enabled && c.ca_certs.is_none());
        for (toml, key) in [
            ("http-timeout = \"0s\"", "[subscriber] http-timeout"),
            ("write-concurrency = 0", "[subscriber] write-concurrency"),
            ("write-buffer-size = 0", "[subscriber] write-buffer-size"),
            (
                "ca-certs = \"/nonexistent/ca.pem\"",
                "[subscriber] ca-certs",
            ),
        ] {
            let bad = load(&format!("[subscriber]\n{toml}\n"), &[], &[]);
            assert!(
                matches!(&bad, Err(ConfigError::Invalid { key: k, .. }) if k == key),
                "{toml}: {bad:?}"
            );
        }
    }

    #[test]
    fn udp_listeners_are_an_array_of_tables_with_1x_defaults() {
        let l = load(
            "[[udp]]\nenabled = true\nbind-address = \"127.0.0.1:8089\"\nfoo = 1\n[[udp]]\ndatabase = \"b\"\nbatch-timeout = \"5s\"\n",
            &[],
            &[],
        )
        .unwrap();
        assert_eq!(l.config.udp.len(), 2);
        assert!(l.config.udp[0].enabled);
        assert_eq!(l.config.udp[0].database, "udp");
        assert_eq!(l.config.udp[0].batch_size, 5000);
        assert_eq!(l.config.udp[1].database, "b");
        assert_eq!(l.config.udp[1].batch_timeout.0, Duration::from_secs(5));
        assert_eq!(l.warnings, ["unknown config key [[udp]] foo ignored"]);
        assert!(Config::default().udp.is_empty());
        let bad = load(
            "[[udp]]\nenabled = true\nbind-address = \"nowhere\"\n",
            &[],
            &[],
        );
        assert!(
            matches!(&bad, Err(ConfigError::Invalid { key, .. }) if key == "[[udp]] bind-address"),
            "{bad:?}"
        );
        let bad = load("[[udp]]\nbatch-size = \"x\"\n", &[], &[]);
        assert!(bad.is_err(), "{bad:?}");
    }

    #[test]
    fn unknown_sections_and_keys_warn() {
        let l = load(
            "reporting-disabled = true\n[monitor]\nx = 1\n[subscriber]\ny = 2\n[http]\npprof-auth-enabled = false\n",
            &[],
            &[],
        )
        .unwrap();
        assert_eq!(
            l.warnings,
            [
                "unknown config key [http] pprof-auth-enabled ignored",
                "unknown config section [monitor] ignored",
                "unknown config key reporting-disabled ignored",
                "unknown config key [subscriber] y ignored"
            ]
        );
    }

    #[test]
    fn security_settings_it_cannot_honour_refuse_to_start() {
        let e = load("[meta]\nhttps-insecure-tls = true\n", &[], &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("[meta] https-ca-certificate instead"), "{e}");
        for (text, key) in [(
            "[http]\npprof-auth-enabled = true\n",
            "[http] pprof-auth-enabled",
        )] {
            let e = load(text, &[], &[]).unwrap_err().to_string();
            assert!(
                e.contains(key) && e.contains("not implemented"),
                "{text}: {e}"
            );
        }
        let e = load("[meta]\nauth-enabled = true\n", &[], &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("set that instead"), "{e}");
        // Off, they are only unknown keys.
        let l = load(
            "[meta]\nhttps-insecure-tls = false\n[http]\npprof-auth-enabled = false\n",
            &[],
            &[],
        )
        .unwrap();
        assert_eq!(l.warnings.len(), 2, "{:?}", l.warnings);
    }

    #[test]
    fn an_address_other_hosts_reach_needs_the_internal_secret() {
        for (env, key) in [
            ("FLETCH_HTTP_BIND_ADDRESS", "[http] bind-address"),
            ("FLETCH_META_BIND_ADDRESS", "[meta] bind-address"),
            ("FLETCH_META_HTTP_BIND_ADDRESS", "[meta] http-bind-address"),
            ("FLETCH_FLIGHT_BIND_ADDRESS", "[flight] bind-address"),
        ] {
            let e = load("", &[(env, "0.0.0.0:1")], &[])
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with("config [meta] internal-shared-secret: required when a listen address is not loopback")
                    && e.contains(key),
                "{e}"
            );
            let with_secret = load(
                "",
                &[
                    (env, "0.0.0.0:1"),
                    ("FLETCH_META_INTERNAL_SHARED_SECRET", "s"),
                ],
                &[],
            );
            assert!(with_secret.is_ok(), "{env}");
        }
        // `:8086` is every interface, as in influxd; `localhost` is loopback.
        assert!(load("", &[("FLETCH_HTTP_BIND_ADDRESS", ":8086")], &[]).is_err());
        assert!(load("", &[("FLETCH_HTTP_BIND_ADDRESS", "localhost:8086")], &[]).is_ok());
        let l = load("[meta]\ninternal-shared-secret = \"in-secret\"\n", &[], &[]).unwrap();
        assert!(!l.config.to_toml().contains("in-secret"));
    }

    #[test]
    fn auth_settings_load_and_the_secret_is_never_printed() {
        let l = load(
            "[http]\nauth-enabled = true\nshared-secret = \"s3cret\"\n",
            &[],
            &[],
        )
        .unwrap();
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        assert!(l.config.http.auth_enabled);
        assert_eq!(l.config.http.shared_secret, "s3cret");
        let printed = l.config.to_toml();
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(
            printed.contains("shared-secret = \"[REDACTED]\""),
            "{printed}"
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = load("[http]\nmax-body-size = true\n", &[], &[])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "config [http] max-body-size: expected an integer, found a boolean"
        );
        let e = load("[http]\nbind-address = \"nope\"\n", &[], &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("config [http] bind-address: \"nope\" is not a host:port address"),
            "{e}"
        );
        let e = load(
            "[data]\ncache-snapshot-write-cold-duration = \"10 parsecs\"\n",
            &[],
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("config [data] cache-snapshot-write-cold-duration: invalid duration"),
            "{e}"
        );
        let e = load("", &[("FLETCH_HTTP_MAX_BODY_SIZE", "lots")], &[])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "config FLETCH_HTTP_MAX_BODY_SIZE: expected an integer, found \"lots\""
        );
        let e = load("[logging]\nlevel = \"loud\"\n", &[], &[])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("config [logging] level"), "{e}");
    }

    #[test]
    fn sizes_and_durations_read_like_1x() {
        let l = load("[data]\ncache-max-memory-size = \"1g\"\ncache-snapshot-memory-size = \"25m\"\ncache-snapshot-write-cold-duration = \"1h30m\"\n", &[], &[]).unwrap();
        assert_eq!(l.config.data.cache_max_memory_size.0, 1 << 30);
        assert_eq!(l.config.data.cache_snapshot_memory_size.0, 25 << 20);
        assert_eq!(
            l.config.data.cache_snapshot_write_cold_duration.0,
            Duration::from_secs(5400)
        );
    }

    #[test]
    fn printed_config_loads_back_the_same() {
        let text = Config::default().to_toml();
        let l = load(&text, &[], &[]).unwrap();
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        assert_eq!(l.config, Config::default());
    }
}

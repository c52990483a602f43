//! InfluxQL statements. `Display` gives the canonical text 1.x prints (for example in the
//! warning for a write statement sent with GET).

use std::fmt;

/// `WITH DURATION .. REPLICATION .. SHARD DURATION .. NAME ..` of `CREATE DATABASE`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionPolicyClause {
    pub duration: Option<i64>,
    pub replication: Option<u32>,
    pub shard_duration: Option<i64>,
    pub name: Option<String>,
}

/// The properties of `CREATE RETENTION POLICY` (where `DURATION` and `REPLICATION` are
/// required, so always set) and `ALTER RETENTION POLICY` (any of them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionPolicyOptions {
    pub duration: Option<i64>,
    pub replication: Option<u32>,
    pub shard_duration: Option<i64>,
    pub default: bool,
}

impl fmt::Display for RetentionPolicyOptions {
    /// ` DURATION .. REPLICATION .. SHARD DURATION .. DEFAULT`, the ones that are set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = self.duration {
            write!(f, " DURATION {}", format_duration_literal(d))?;
        }
        if let Some(r) = self.replication {
            write!(f, " REPLICATION {r}")?;
        }
        if let Some(d) = self.shard_duration {
            write!(f, " SHARD DURATION {}", format_duration_literal(d))?;
        }
        if self.default {
            f.write_str(" DEFAULT")?;
        }
        Ok(())
    }
}

/// Which tag keys `SHOW TAG VALUES WITH KEY ...` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagKeyMatch {
    Eq(String),
    NotEq(String),
    Regex(String),
    NotRegex(String),
    In(Vec<String>),
}

/// `WITH MEASUREMENT = name | =~ /regex/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeasurementMatch {
    Eq(String),
    Regex(String),
}

/// The parts shared by the `SHOW` statements over series data.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ShowFilter {
    pub database: Option<String>,
    pub sources: Vec<super::select::Measurement>,
    pub condition: Option<super::select::Expr>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    CreateDatabase {
        name: String,
        rp: Option<RetentionPolicyClause>,
    },
    DropDatabase {
        name: String,
    },
    ShowDatabases,
    ShowRetentionPolicies {
        database: Option<String>,
    },
    ShowMeasurements {
        database: Option<String>,
        with: Option<MeasurementMatch>,
        condition: Option<super::select::Expr>,
        limit: Option<u64>,
        offset: Option<u64>,
    },
    ShowTagKeys(ShowFilter),
    ShowTagValues {
        filter: ShowFilter,
        key: TagKeyMatch,
    },
    ShowFieldKeys(ShowFilter),
    ShowSeries(ShowFilter),
    /// `SHOW SERIES|MEASUREMENT|TAG KEY|TAG VALUES|FIELD KEY [EXACT] CARDINALITY ...`: how
    /// many rows `inner` (the matching `SHOW` statement) has, per measurement or in all.
    ShowCardinality {
        exact: bool,
        inner: Box<Statement>,
    },
    ShowShards,
    ShowShardGroups,
    /// `SHOW QUERIES`: the queries running on this node.
    ShowQueries,
    /// `KILL QUERY <qid> [ON "<host>"]`.
    KillQuery {
        id: u64,
        host: Option<String>,
    },
    /// The data and meta nodes of the cluster (from the 0.10 clustering guide).
    ShowServers,
    /// The Raft group as its leader sees it (a Fletch extension).
    ShowMetaStatus,
    /// `SHOW STATS [FOR '<module>']`: the node's counters, one series per module instance.
    ShowStats {
        module: Option<String>,
    },
    /// `SHOW DIAGNOSTICS [FOR '<module>']`: the node's build, configuration and system facts,
    /// one series per module.
    ShowDiagnostics {
        module: Option<String>,
    },
    /// `DROP META SERVER <id>` (from the 0.10 clustering guide).
    DropMetaServer {
        id: u64,
    },
    /// `DROP DATA SERVER <id> [FORCE]`; `FORCE` drops a node that holds the only copy of a shard.
    DropDataServer {
        id: u64,
        force: bool,
    },
    CreateRetentionPolicy {
        name: String,
        database: String,
        options: RetentionPolicyOptions,
    },
    AlterRetentionPolicy {
        name: String,
        database: String,
        options: RetentionPolicyOptions,
    },
    DropRetentionPolicy {
        name: String,
        database: String,
    },
    DropMeasurement {
        name: String,
    },
    /// `DROP SERIES` (no time allowed) and `DELETE` share their shape.
    DropSeries {
        sources: Vec<super::select::Measurement>,
        condition: Option<super::select::Expr>,
    },
    Delete {
        sources: Vec<super::select::Measurement>,
        condition: Option<super::select::Expr>,
    },
    /// `CREATE USER <name> WITH PASSWORD '<p>' [WITH ALL PRIVILEGES]`.
    CreateUser {
        name: String,
        password: String,
        admin: bool,
    },
    DropUser {
        name: String,
    },
    /// `SET PASSWORD FOR <name> = '<p>'`.
    SetPassword {
        name: String,
        password: String,
    },
    /// `GRANT <privilege> ON <db> TO <user>`, or `GRANT ALL [PRIVILEGES] TO <user>` (admin)
    /// when `database` is `None`.
    Grant {
        privilege: Privilege,
        database: Option<String>,
        user: String,
    },
    /// `REVOKE <privilege> ON <db> FROM <user>`, or `REVOKE ALL [PRIVILEGES] FROM <user>`.
    Revoke {
        privilege: Privilege,
        database: Option<String>,
        user: String,
    },
    ShowUsers,
    /// `SHOW GRANTS FOR <user>`.
    ShowGrants {
        user: String,
    },
    /// `CREATE CONTINUOUS QUERY <name> ON <db> [RESAMPLE [EVERY d] [FOR d]] BEGIN <select> END`.
    CreateContinuousQuery(Box<ContinuousQuery>),
    /// `DROP CONTINUOUS QUERY <name> ON <db>`.
    DropContinuousQuery {
        name: String,
        database: String,
    },
    /// `SHOW CONTINUOUS QUERIES`: every database's, one series per database.
    ShowContinuousQueries,
    /// `CREATE SUBSCRIPTION <name> ON <db>.<rp> DESTINATIONS ALL|ANY '<url>'[, '<url>']`.
    CreateSubscription {
        name: String,
        database: String,
        retention_policy: String,
        mode: SubscriptionMode,
        destinations: Vec<String>,
    },
    /// `DROP SUBSCRIPTION <name> ON <db>.<rp>`.
    DropSubscription {
        name: String,
        database: String,
        retention_policy: String,
    },
    /// `SHOW SUBSCRIPTIONS`: every database's, one series per database that has any.
    ShowSubscriptions,
    /// `DROP SHARD <id>`: the shard and its data, on every owner.
    DropShard {
        id: u64,
    },
    Select(Box<super::select::SelectStatement>),
    /// `EXPLAIN [ANALYZE] SELECT ...`: the DataFusion plan (with metrics when analyzed).
    Explain {
        analyze: bool,
        select: Box<super::select::SelectStatement>,
    },
}

/// A continuous query as `CREATE CONTINUOUS QUERY` gives it; `Display` is the statement
/// (1.x keeps and shows that text).
#[derive(Debug, Clone, PartialEq)]
pub struct ContinuousQuery {
    pub name: String,
    pub database: String,
    /// `RESAMPLE EVERY`: how often it runs (default: its `GROUP BY time` interval).
    pub resample_every: Option<i64>,
    /// `RESAMPLE FOR`: how far back each run recomputes (default: the interval).
    pub resample_for: Option<i64>,
    pub select: super::select::SelectStatement,
}

impl fmt::Display for ContinuousQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CREATE CONTINUOUS QUERY {} ON {}",
            quote_ident(&self.name),
            quote_ident(&self.database)
        )?;
        if self.resample_every.is_some() || self.resample_for.is_some() {
            f.write_str(" RESAMPLE")?;
            if let Some(d) = self.resample_every {
                write!(f, " EVERY {}", format_duration_literal(d))?;
            }
            if let Some(d) = self.resample_for {
                write!(f, " FOR {}", format_duration_literal(d))?;
            }
        }
        write!(f, " BEGIN {} END", self.select)
    }
}

/// How a subscription spreads writes over its destinations: `ALL` or `ANY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionMode {
    All,
    Any,
}

impl fmt::Display for SubscriptionMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::All => "ALL",
            Self::Any => "ANY",
        })
    }
}

/// A privilege as `GRANT` and `REVOKE` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privilege {
    Read,
    Write,
    All,
}

impl fmt::Display for Privilege {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Read => "READ",
            Self::Write => "WRITE",
            Self::All => "ALL PRIVILEGES",
        })
    }
}

impl Statement {
    /// Statements that change something; 1.x warns when they arrive with GET.
    pub fn is_write(&self) -> bool {
        match self {
            Self::CreateUser { .. }
            | Self::DropUser { .. }
            | Self::SetPassword { .. }
            | Self::Grant { .. }
            | Self::Revoke { .. }
            | Self::CreateDatabase { .. }
            | Self::DropDatabase { .. }
            | Self::CreateRetentionPolicy { .. }
            | Self::AlterRetentionPolicy { .. }
            | Self::DropRetentionPolicy { .. }
            | Self::DropMeasurement { .. }
            | Self::DropSeries { .. }
            | Self::DropMetaServer { .. }
            | Self::DropDataServer { .. }
            | Self::KillQuery { .. }
            | Self::CreateContinuousQuery(_)
            | Self::DropContinuousQuery { .. }
            | Self::CreateSubscription { .. }
            | Self::DropSubscription { .. }
            | Self::DropShard { .. }
            | Self::Delete { .. } => true,
            Self::Select(s) => s.into.is_some(),
            _ => false,
        }
    }
}

/// Quotes an identifier when 1.x would.
pub fn quote_ident(s: &str) -> String {
    let bare = s
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_alphanumeric() || c == '_')
        && !super::parser::is_keyword(s);
    if bare {
        s.to_string()
    } else {
        format!(
            "\"{}\"",
            s.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n")
        )
    }
}

/// Formats nanoseconds as an InfluxQL duration literal in the largest unit that divides it.
pub fn format_duration_literal(d: i64) -> String {
    if d == 0 {
        return "0s".into();
    }
    for (unit, n) in [
        ("w", 604_800_000_000_000i64),
        ("d", 86_400_000_000_000),
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("u", 1_000),
    ] {
        if d % n == 0 {
            return format!("{}{unit}", d / n);
        }
    }
    format!("{d}ns")
}

impl fmt::Display for Statement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CreateDatabase { name, rp } => {
                write!(f, "CREATE DATABASE {}", quote_ident(name))?;
                if let Some(rp) = rp {
                    f.write_str(" WITH")?;
                    if let Some(d) = rp.duration {
                        write!(f, " DURATION {}", format_duration_literal(d))?;
                    }
                    if let Some(r) = rp.replication {
                        write!(f, " REPLICATION {r}")?;
                    }
                    if let Some(d) = rp.shard_duration {
                        write!(f, " SHARD DURATION {}", format_duration_literal(d))?;
                    }
                    if let Some(n) = &rp.name {
                        write!(f, " NAME {}", quote_ident(n))?;
                    }
                }
                Ok(())
            }
            Self::DropDatabase { name } => write!(f, "DROP DATABASE {}", quote_ident(name)),
            // Passwords are never printed (logs, SHOW QUERIES, error texts), as in 1.x.
            Self::CreateUser { name, admin, .. } => write!(
                f,
                "CREATE USER {} WITH PASSWORD [REDACTED]{}",
                quote_ident(name),
                if *admin { " WITH ALL PRIVILEGES" } else { "" }
            ),
            Self::DropUser { name } => write!(f, "DROP USER {}", quote_ident(name)),
            Self::SetPassword { name, .. } => {
                write!(f, "SET PASSWORD FOR {} = [REDACTED]", quote_ident(name))
            }
            Self::Grant {
                privilege,
                database,
                user,
            } => match database {
                Some(db) => write!(
                    f,
                    "GRANT {privilege} ON {} TO {}",
                    quote_ident(db),
                    quote_ident(user)
                ),
                None => write!(f, "GRANT ALL PRIVILEGES TO {}", quote_ident(user)),
            },
            Self::Revoke {
                privilege,
                database,
                user,
            } => match database {
                Some(db) => write!(
                    f,
                    "REVOKE {privilege} ON {} FROM {}",
                    quote_ident(db),
                    quote_ident(user)
                ),
                None => write!(f, "REVOKE ALL PRIVILEGES FROM {}", quote_ident(user)),
            },
            Self::ShowUsers => f.write_str("SHOW USERS"),
            Self::ShowGrants { user } => write!(f, "SHOW GRANTS FOR {}", quote_ident(user)),
            Self::Select(s) => write!(f, "{s}"),
            Self::Explain { analyze, select } => write!(
                f,
                "EXPLAIN {}{select}",
                if *analyze { "ANALYZE " } else { "" }
            ),
            Self::ShowDatabases => f.write_str("SHOW DATABASES"),
            Self::ShowRetentionPolicies { database } => {
                f.write_str("SHOW RETENTION POLICIES")?;
                if let Some(db) = database {
                    write!(f, " ON {}", quote_ident(db))?;
                }
                Ok(())
            }
            Self::ShowMeasurements {
                database,
                with,
                condition,
                limit,
                offset,
            } => {
                f.write_str("SHOW MEASUREMENTS")?;
                if let Some(db) = database {
                    write!(f, " ON {}", quote_ident(db))?;
                }
                match with {
                    Some(MeasurementMatch::Eq(m)) => {
                        write!(f, " WITH MEASUREMENT = {}", quote_ident(m))?
                    }
                    Some(MeasurementMatch::Regex(r)) => write!(f, " WITH MEASUREMENT =~ /{r}/")?,
                    None => {}
                }
                if let Some(c) = condition {
                    write!(f, " WHERE {c}")?;
                }
                write_limits(f, *limit, *offset)
            }
            Self::ShowTagKeys(flt) => write_show(f, "SHOW TAG KEYS", flt, None),
            Self::ShowTagValues { filter, key } => {
                write_show(f, "SHOW TAG VALUES", filter, Some(key))
            }
            Self::ShowFieldKeys(flt) => write_show(f, "SHOW FIELD KEYS", flt, None),
            Self::ShowSeries(flt) => write_show(f, "SHOW SERIES", flt, None),
            Self::ShowCardinality { exact, inner } => {
                let words = if *exact {
                    "EXACT CARDINALITY"
                } else {
                    "CARDINALITY"
                };
                if let Self::ShowMeasurements {
                    database,
                    with,
                    condition,
                    ..
                } = inner.as_ref()
                {
                    // Its measurements are named with FROM.
                    write!(f, "SHOW MEASUREMENT {words}")?;
                    if let Some(db) = database {
                        write!(f, " ON {}", quote_ident(db))?;
                    }
                    match with {
                        Some(MeasurementMatch::Eq(m)) => write!(f, " FROM {}", quote_ident(m))?,
                        Some(MeasurementMatch::Regex(r)) => write!(f, " FROM /{r}/")?,
                        None => {}
                    }
                    if let Some(c) = condition {
                        write!(f, " WHERE {c}")?;
                    }
                    return Ok(());
                }
                // The inner statement with its head made singular and followed by the words.
                let text = inner.to_string();
                let heads = [
                    ("SHOW SERIES", "SHOW SERIES"),
                    ("SHOW MEASUREMENTS", "SHOW MEASUREMENT"),
                    ("SHOW TAG KEYS", "SHOW TAG KEY"),
                    ("SHOW TAG VALUES", "SHOW TAG VALUES"),
                    ("SHOW FIELD KEYS", "SHOW FIELD KEY"),
                ];
                let (rest, head) = heads
                    .iter()
                    .find_map(|(h, s)| text.strip_prefix(h).map(|r| (r, *s)))
                    .unwrap_or((text.as_str(), "SHOW SERIES"));
                write!(f, "{head} {words}{rest}")
            }
            Self::ShowShards => f.write_str("SHOW SHARDS"),
            Self::CreateRetentionPolicy {
                name,
                database,
                options,
            } => write!(
                f,
                "CREATE RETENTION POLICY {} ON {}{options}",
                quote_ident(name),
                quote_ident(database)
            ),
            Self::AlterRetentionPolicy {
                name,
                database,
                options,
            } => write!(
                f,
                "ALTER RETENTION POLICY {} ON {}{options}",
                quote_ident(name),
                quote_ident(database)
            ),
            Self::DropRetentionPolicy { name, database } => write!(
                f,
                "DROP RETENTION POLICY {} ON {}",
                quote_ident(name),
                quote_ident(database)
            ),
            Self::DropMeasurement { name } => write!(f, "DROP MEASUREMENT {}", quote_ident(name)),
            Self::DropSeries { sources, condition } | Self::Delete { sources, condition } => {
                f.write_str(if matches!(self, Self::Delete { .. }) {
                    "DELETE"
                } else {
                    "DROP SERIES"
                })?;
                if !sources.is_empty() {
                    f.write_str(" FROM ")?;
                    for (i, m) in sources.iter().enumerate() {
                        if i > 0 {
                            f.write_str(", ")?;
                        }
                        write!(f, "{m}")?;
                    }
                }
                if let Some(c) = condition {
                    write!(f, " WHERE {c}")?;
                }
                Ok(())
            }
            Self::ShowShardGroups => f.write_str("SHOW SHARD GROUPS"),
            Self::ShowQueries => f.write_str("SHOW QUERIES"),
            Self::CreateContinuousQuery(cq) => write!(f, "{cq}"),
            Self::DropContinuousQuery { name, database } => write!(
                f,
                "DROP CONTINUOUS QUERY {} ON {}",
                quote_ident(name),
                quote_ident(database)
            ),
            Self::ShowContinuousQueries => f.write_str("SHOW CONTINUOUS QUERIES"),
            Self::CreateSubscription {
                name,
                database,
                retention_policy,
                mode,
                destinations,
            } => {
                write!(
                    f,
                    "CREATE SUBSCRIPTION {} ON {}.{} DESTINATIONS {mode} ",
                    quote_ident(name),
                    quote_ident(database),
                    quote_ident(retention_policy)
                )?;
                for (i, d) in destinations.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(&crate::select::quote_string(d))?;
                }
                Ok(())
            }
            Self::DropSubscription {
                name,
                database,
                retention_policy,
            } => write!(
                f,
                "DROP SUBSCRIPTION {} ON {}.{}",
                quote_ident(name),
                quote_ident(database),
                quote_ident(retention_policy)
            ),
            Self::ShowSubscriptions => f.write_str("SHOW SUBSCRIPTIONS"),
            Self::DropShard { id } => write!(f, "DROP SHARD {id}"),
            Self::KillQuery { id, host: None } => write!(f, "KILL QUERY {id}"),
            Self::KillQuery { id, host: Some(h) } => {
                write!(f, "KILL QUERY {id} ON {}", quote_ident(h))
            }
            Self::ShowServers => f.write_str("SHOW SERVERS"),
            Self::ShowMetaStatus => f.write_str("SHOW META STATUS"),
            Self::ShowStats { module: None } => f.write_str("SHOW STATS"),
            Self::ShowStats { module: Some(m) } => {
                write!(
                    f,
                    "SHOW STATS FOR '{}'",
                    m.replace('\\', "\\\\").replace('\'', "\\'")
                )
            }
            Self::ShowDiagnostics { module: None } => f.write_str("SHOW DIAGNOSTICS"),
            Self::ShowDiagnostics { module: Some(m) } => {
                write!(
                    f,
                    "SHOW DIAGNOSTICS FOR '{}'",
                    m.replace('\\', "\\\\").replace('\'', "\\'")
                )
            }
            Self::DropMetaServer { id } => write!(f, "DROP META SERVER {id}"),
            Self::DropDataServer { id, force } => {
                write!(
                    f,
                    "DROP DATA SERVER {id}{}",
                    if *force { " FORCE" } else { "" }
                )
            }
        }
    }
}

fn write_limits(
    f: &mut fmt::Formatter<'_>,
    limit: Option<u64>,
    offset: Option<u64>,
) -> fmt::Result {
    if let Some(l) = limit {
        write!(f, " LIMIT {l}")?;
    }
    if let Some(o) = offset {
        write!(f, " OFFSET {o}")?;
    }
    Ok(())
}

fn write_show(
    f: &mut fmt::Formatter<'_>,
    head: &str,
    flt: &ShowFilter,
    key: Option<&TagKeyMatch>,
) -> fmt::Result {
    f.write_str(head)?;
    if let Some(db) = &flt.database {
        write!(f, " ON {}", quote_ident(db))?;
    }
    if !flt.sources.is_empty() {
        f.write_str(" FROM ")?;
        for (i, m) in flt.sources.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{m}")?;
        }
    }
    match key {
        Some(TagKeyMatch::Eq(k)) => write!(f, " WITH KEY = {}", quote_ident(k))?,
        Some(TagKeyMatch::NotEq(k)) => write!(f, " WITH KEY != {}", quote_ident(k))?,
        Some(TagKeyMatch::Regex(r)) => write!(f, " WITH KEY =~ /{r}/")?,
        Some(TagKeyMatch::NotRegex(r)) => write!(f, " WITH KEY !~ /{r}/")?,
        Some(TagKeyMatch::In(ks)) => {
            let ks: Vec<String> = ks.iter().map(|k| quote_ident(k)).collect();
            write!(f, " WITH KEY IN ({})", ks.join(", "))?
        }
        None => {}
    }
    if let Some(c) = &flt.condition {
        write!(f, " WHERE {c}")?;
    }
    write_limits(f, flt.limit, flt.offset)
}

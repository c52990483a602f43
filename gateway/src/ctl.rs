//! `fletchd ctl`: the operator's commands on shards, after `influxd-ctl`, and the Flight
//! actions on the internal port (`[meta] bind-address`) that answer them.
//!
//! ```text
//!  fletchd ctl [-bind host:8088] show                          nodes, and shards with their owners
//!                                copy-shard <src> <dst> <id>   dst becomes an owner; src's copy is
//!                                                              copied onto it
//!                                remove-shard <node> <id>      node stops owning the shard (and
//!                                                              drops its copy); not its last owner
//!                                truncate-shards               open shard groups end now
//!                                entropy show                  every shard's owners compared
//!                                entropy repair <id>           ...and repaired
//!     ─ DoAction ctl.<command> (JSON) ─▶ any node ─▶ catalog commands through the leader,
//!                                                    copies through replicas::repair
//! ```

use std::sync::Arc;
use std::time::Duration;

use catalog::rpc::RpcClient;
use catalog::{Command, MetaService};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::cluster_nodes::ClusterNodes;

/// The action types of `fletchd ctl`.
pub mod action {
    pub const SHOW: &str = "ctl.show";
    pub const COPY_SHARD: &str = "ctl.copy-shard";
    pub const REMOVE_SHARD: &str = "ctl.remove-shard";
    pub const TRUNCATE_SHARDS: &str = "ctl.truncate-shards";
    pub const ENTROPY_SHOW: &str = "ctl.entropy-show";
    pub const ENTROPY_REPAIR: &str = "ctl.entropy-repair";
}

/// The body of the shard commands.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ShardCommand {
    #[serde(default)]
    pub shard: u64,
    #[serde(default)]
    pub source: u64,
    #[serde(default)]
    pub node: u64,
}

/// What the node needs to answer `ctl` actions.
#[derive(Debug, Clone)]
pub struct Ctl {
    pub meta: Arc<MetaService>,
    pub nodes: Arc<ClusterNodes>,
    pub entropy: Arc<replicas::AntiEntropy>,
}

impl Ctl {
    /// Answers one `ctl.*` action (JSON in, JSON out); the error is the operator's message.
    pub async fn handle(&self, kind: &str, body: &[u8]) -> Result<Value, String> {
        let cmd: ShardCommand = if body.is_empty() {
            ShardCommand::default()
        } else {
            serde_json::from_slice(body).map_err(|e| format!("malformed request: {e}"))?
        };
        match kind {
            action::SHOW => Ok(self.show()),
            action::COPY_SHARD => {
                let (db, rp) = self
                    .shard_place(cmd.shard)
                    .ok_or(format!("shard not found: {}", cmd.shard))?;
                if !self.owners(cmd.shard).contains(&cmd.source) {
                    return Err(format!(
                        "data node {} does not own shard {}",
                        cmd.source, cmd.shard
                    ));
                }
                self.meta
                    .execute(Command::AddShardOwner {
                        shard: cmd.shard,
                        node: cmd.node,
                    })
                    .await
                    .map_err(|e| e.to_string())?;
                self.meta.catch_up(Duration::from_secs(10)).await;
                let copied = replicas::repair::copy_series(
                    self.nodes.as_ref(),
                    &db,
                    &rp,
                    cmd.shard,
                    cmd.source,
                    cmd.node,
                    None,
                )
                .await
                .map_err(|e| e.to_string())?;
                Ok(
                    json!({"shard": cmd.shard, "from": cmd.source, "to": cmd.node,
                    "series": copied.series, "points": copied.points}),
                )
            }
            action::REMOVE_SHARD => {
                self.meta
                    .execute(Command::RemoveShardOwner {
                        shard: cmd.shard,
                        node: cmd.node,
                    })
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(json!({"shard": cmd.shard, "removed": cmd.node}))
            }
            action::TRUNCATE_SHARDS => {
                self.meta
                    .execute(Command::TruncateShardGroups {
                        at: ingester::now_nanos(),
                    })
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(json!({"truncated": true}))
            }
            action::ENTROPY_SHOW => Ok(serde_json::to_value(self.entropy.compare_all().await)
                .map_err(|e| e.to_string())?),
            action::ENTROPY_REPAIR => {
                let check = self
                    .entropy
                    .repair(cmd.shard)
                    .await
                    .map_err(|e| e.to_string())?;
                serde_json::to_value(check).map_err(|e| e.to_string())
            }
            other => Err(format!("unknown ctl command {other}")),
        }
    }

    fn owners(&self, shard: u64) -> Vec<u64> {
        let cat = self.meta.catalog();
        cat.find_shard(shard)
            .map(|p| p.shard.owners.clone())
            .unwrap_or_default()
    }

    /// The database and retention policy of `shard`.
    fn shard_place(&self, shard: u64) -> Option<(String, String)> {
        let cat = self.meta.catalog();
        cat.find_shard(shard)
            .map(|p| (p.database.name.clone(), p.rp.name.clone()))
    }

    fn show(&self) -> Value {
        let cat = self.meta.catalog();
        let nodes = |m: &std::collections::BTreeMap<u64, catalog::NodeInfo>| -> Vec<Value> {
            m.values()
                .map(|n| json!({"id": n.id, "http_addr": n.http_addr, "tcp_addr": n.tcp_addr}))
                .collect()
        };
        let mut shards = Vec::new();
        for db in cat.databases.values() {
            for rp in db.retention_policies.values() {
                for g in rp.live_shard_groups() {
                    for s in &g.shards {
                        shards.push(json!({
                            "id": s.id, "database": db.name, "retention_policy": rp.name,
                            "shard_group": g.id, "start": g.start, "end": g.end,
                            "owners": s.owners,
                        }));
                    }
                }
            }
        }
        json!({"data_nodes": nodes(&cat.data_nodes), "meta_nodes": nodes(&cat.meta_nodes), "shards": shards})
    }
}

/// `fletchd ctl`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct CtlArgs {
    /// A node's `[meta] bind-address` (its internal port).
    #[arg(long = "bind", default_value = "localhost:8088")]
    pub bind: String,
    /// The cluster's `[meta] internal-shared-secret`, when it has one.
    #[arg(
        long = "internal-shared-secret",
        env = "FLETCH_META_INTERNAL_SHARED_SECRET",
        default_value = "",
        hide_env_values = true
    )]
    pub internal_shared_secret: String,
    /// The cluster talks TLS (`[meta] https-enabled`): call the node over TLS.
    #[arg(long = "tls", env = "FLETCH_META_HTTPS_ENABLED")]
    pub tls: bool,
    /// With `--tls`: the CA that signed the nodes' certificates (`[meta]
    /// https-ca-certificate`); empty: the system's roots.
    #[arg(
        long = "ca-certificate",
        env = "FLETCH_META_HTTPS_CA_CERTIFICATE",
        default_value = ""
    )]
    pub ca_certificate: String,
    #[command(subcommand)]
    pub command: CtlCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum CtlCommand {
    /// The data and meta nodes, and every shard with its owners.
    Show,
    /// Make <dst> an owner of shard <id> and copy <src>'s copy of it onto <dst>.
    CopyShard { src: u64, dst: u64, id: u64 },
    /// Take <node> off the owners of shard <id> (it drops its copy); not the shard's last owner.
    RemoveShard { node: u64, id: u64 },
    /// End every open shard group now: the next writes make new groups with the current nodes.
    TruncateShards,
    /// Compare (show) or repair the owners' copies of shards.
    Entropy {
        #[command(subcommand)]
        command: EntropyCommand,
    },
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum EntropyCommand {
    /// Every shard with several owners: the points each owner holds, and whether they agree.
    Show,
    /// Copy onto each owner of shard <id> what it lacks.
    Repair { id: u64 },
}

/// Runs `fletchd ctl`: prints the answer, or the error (and fails).
pub fn run(args: CtlArgs) -> Result<String, String> {
    let (kind, body) = match &args.command {
        CtlCommand::Show => (action::SHOW, ShardCommand::default()),
        CtlCommand::CopyShard { src, dst, id } => (
            action::COPY_SHARD,
            ShardCommand {
                shard: *id,
                source: *src,
                node: *dst,
            },
        ),
        CtlCommand::RemoveShard { node, id } => (
            action::REMOVE_SHARD,
            ShardCommand {
                shard: *id,
                node: *node,
                ..Default::default()
            },
        ),
        CtlCommand::TruncateShards => (action::TRUNCATE_SHARDS, ShardCommand::default()),
        CtlCommand::Entropy {
            command: EntropyCommand::Show,
        } => (action::ENTROPY_SHOW, ShardCommand::default()),
        CtlCommand::Entropy {
            command: EntropyCommand::Repair { id },
        } => (
            action::ENTROPY_REPAIR,
            ShardCommand {
                shard: *id,
                ..Default::default()
            },
        ),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let tls = match (args.tls, args.ca_certificate.as_str()) {
        (false, _) => None,
        (true, "") => Some(catalog::rpc::ClientTls { ca_pem: None }),
        (true, path) => Some(catalog::rpc::ClientTls {
            ca_pem: Some(
                crate::tls::ca_pem("meta", "https-ca-certificate", path)
                    .map_err(|e| e.to_string())?,
            ),
        }),
    };
    let answer: Result<Value, String> = runtime.block_on(async {
        RpcClient::new(catalog::rpc::InternalCredential::from_secret(
            &args.internal_shared_secret,
        ))
        .with_tls(tls)
        .call::<_, Result<Value, String>>(&args.bind, kind, &body, Duration::from_secs(600))
        .await
        .map_err(|e| e.to_string())?
    });
    Ok(render(&args.command, &answer?))
}

/// The answer as the operator reads it.
fn render(cmd: &CtlCommand, v: &Value) -> String {
    let mut out = String::new();
    match cmd {
        CtlCommand::Show => {
            for (title, key) in [("Data Nodes", "data_nodes"), ("Meta Nodes", "meta_nodes")] {
                out += &format!("{title}\n==========\nID\tHTTP Address\tTCP Address\n");
                for n in v[key].as_array().into_iter().flatten() {
                    out += &format!(
                        "{}\t{}\t{}\n",
                        n["id"],
                        str_of(&n["http_addr"]),
                        str_of(&n["tcp_addr"])
                    );
                }
                out += "\n";
            }
            out += "Shards\n==========\nID\tDatabase\tRetention Policy\tShard Group\tOwners\n";
            for s in v["shards"].as_array().into_iter().flatten() {
                out += &format!(
                    "{}\t{}\t{}\t{}\t{}\n",
                    s["id"],
                    str_of(&s["database"]),
                    str_of(&s["retention_policy"]),
                    s["shard_group"],
                    s["owners"]
                );
            }
        }
        CtlCommand::Entropy {
            command: EntropyCommand::Show,
        } => {
            out += "Shard\tDatabase\tRetention Policy\tOwners\tPoints per owner\tState\n";
            for c in v.as_array().into_iter().flatten() {
                out += &format!(
                    "{}\t{}\t{}\t{}\t{}\t{}{}\n",
                    c["shard"],
                    str_of(&c["database"]),
                    str_of(&c["retention_policy"]),
                    c["owners"],
                    c["points"],
                    str_of(&c["state"]),
                    c["error"]
                        .as_str()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default()
                );
            }
        }
        _ => out = format!("{v}\n"),
    }
    out
}

fn str_of(v: &Value) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

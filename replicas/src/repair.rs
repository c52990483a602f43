//! Copying series of a shard from one owner onto another, through the read and write paths.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use line_protocol::{FieldValue, Point};
use querier::ExecError;
use querier::shard_source::ShardSource;

use crate::digest::{Rows, ShardDigest, Value, scan_all};

/// Points per WAL entry a copy writes.
const POINTS_PER_ENTRY: usize = 5000;

#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    #[error(transparent)]
    Read(#[from] ExecError),
    #[error("data node {node}: {message}")]
    Node { node: u64, message: String },
    #[error("shard {0} is not in the catalog")]
    UnknownShard(u64),
}

/// The data nodes, as a repair reaches them: this node directly, the others over Flight.
#[async_trait]
pub trait Nodes: Send + Sync + std::fmt::Debug {
    /// This node's data node id, if it has the data role.
    fn here(&self) -> Option<u64>;

    /// The source of node `node`'s shards.
    fn source(&self, node: u64) -> Option<Arc<dyn ShardSource>>;

    /// Node `node`'s digest of `shard` of `database`.
    async fn digest(
        &self,
        node: u64,
        database: &str,
        shard: u64,
    ) -> Result<ShardDigest, RepairError>;

    /// Stores a WAL entry on node `node` (durable there when `Ok`).
    async fn write(&self, node: u64, entry: Bytes) -> Result<(), RepairError>;
}

/// What a copy did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Copied {
    pub series: u64,
    pub points: u64,
}

/// Copies from node `from` onto node `to` the rows of `shard` (of `database`.`rp`) in the
/// given series of each measurement, or of every series when `series` is `None`.
pub async fn copy_series(
    nodes: &dyn Nodes,
    database: &str,
    rp: &str,
    shard: u64,
    from: u64,
    to: u64,
    series: Option<&BTreeMap<String, Vec<String>>>,
) -> Result<Copied, RepairError> {
    let source = nodes.source(from).ok_or(RepairError::Node {
        node: from,
        message: "not a data node of the catalog".into(),
    })?;
    let measurements: Vec<String> = match series {
        Some(s) => s.keys().cloned().collect(),
        None => source
            .measurements(database, &[shard])
            .await?
            .into_iter()
            .collect(),
    };
    let mut copied = Copied::default();
    for m in measurements {
        let wanted: Option<BTreeSet<&str>> = series.map(|s| {
            s.get(&m)
                .into_iter()
                .flatten()
                .map(String::as_str)
                .collect()
        });
        let Some(schema) = source.schema(database, &[shard], &m).await? else {
            continue;
        };
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut points: Vec<Point<'static>> = Vec::new();
        let mut stream = scan_all(source.as_ref(), database, shard, &m, &schema).await?;
        while let Some(batch) = stream.try_next().await.map_err(ExecError::from)? {
            let rows = Rows::new(&batch, &schema)?;
            for i in 0..rows.len() {
                let key = rows.series_key(i);
                if wanted.as_ref().is_some_and(|w| !w.contains(key.as_str())) {
                    continue;
                }
                let fields: Vec<(Cow<'static, str>, FieldValue<'static>)> = rows
                    .fields(i)
                    .into_iter()
                    .map(|(k, v)| {
                        let v = match v {
                            Value::Float(f) => FieldValue::Float(f),
                            Value::Integer(n) => FieldValue::Integer(n),
                            Value::Unsigned(n) => FieldValue::UInteger(n),
                            Value::String(s) => FieldValue::String(Cow::Owned(s)),
                            Value::Boolean(b) => FieldValue::Boolean(b),
                        };
                        (Cow::Owned(k.to_string()), v)
                    })
                    .collect();
                if fields.is_empty() {
                    continue;
                }
                points.push(Point {
                    measurement: Cow::Owned(m.clone()),
                    tags: rows
                        .tags(i)
                        .into_iter()
                        .map(|(k, v)| (Cow::Owned(k.to_string()), Cow::Owned(v.to_string())))
                        .collect(),
                    fields,
                    time: rows.time(i),
                });
                seen.insert(key);
                if points.len() >= POINTS_PER_ENTRY {
                    copied.points += points.len() as u64;
                    send(nodes, to, database, rp, shard, std::mem::take(&mut points)).await?;
                }
            }
        }
        if !points.is_empty() {
            copied.points += points.len() as u64;
            send(nodes, to, database, rp, shard, points).await?;
        }
        copied.series += seen.len() as u64;
    }
    Ok(copied)
}

async fn send(
    nodes: &dyn Nodes,
    to: u64,
    database: &str,
    rp: &str,
    shard: u64,
    points: Vec<Point<'static>>,
) -> Result<(), RepairError> {
    let refs: Vec<&Point<'_>> = points.iter().collect();
    let entry = ingester::wal::encode_entry(database, rp, &[(shard, refs)]);
    nodes.write(to, Bytes::from(entry)).await
}

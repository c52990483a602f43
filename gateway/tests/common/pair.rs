//! Two data nodes in one process, sharing one catalog: each owns half of every shard group,
//! reads the other's shards through the other's executor (plan fragments encoded and decoded
//! as they would cross the network) and writes the other's points through its ingester. What
//! Arrow Flight carries between processes, without the network.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use catalog::{Command, MetaOptions, MetaService, Outcome};
use coordinator::PointsWriter;
use coordinator::peer::{PeerError, PeerWriter};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::TryStreamExt;
use ingester::{Ingester, IngesterConfig, WriteOutcome};
use querier::fragment::Fragment;
use querier::shard_source::{Peers, ScanRequest, ShardSource};
use querier::{ExecError, Executor};

/// Sources of other nodes' shards: the other executors in this process.
#[derive(Debug, Default)]
pub struct InProcess(pub Mutex<HashMap<u64, Arc<dyn ShardSource>>>);

impl Peers for InProcess {
    fn source(&self, node: u64) -> Option<Arc<dyn ShardSource>> {
        self.0.lock().unwrap().get(&node).cloned()
    }
}

/// The other nodes' ingesters, as a write coordinator's peers.
#[derive(Debug, Default)]
struct InProcessWriters(Mutex<HashMap<u64, Arc<Ingester>>>);

#[async_trait::async_trait]
impl PeerWriter for InProcessWriters {
    async fn write(
        &self,
        node: u64,
        index: u64,
        entry: bytes::Bytes,
    ) -> Result<WriteOutcome, PeerError> {
        let ing = self
            .0
            .lock()
            .unwrap()
            .get(&node)
            .cloned()
            .ok_or(PeerError::UnknownNode(node))?;
        let e = ingester::wal::WalEntry::decode(&entry).map_err(|e| PeerError::Refused {
            node,
            message: e.to_string(),
        })?;
        let shards = e
            .shards
            .into_iter()
            .map(|s| (s.shard_id, s.points))
            .collect();
        ing.write_shards_at(&e.database, &e.rp, shards, index)
            .await
            .map_err(|e| PeerError::Refused {
                node,
                message: e.to_string(),
            })
    }
}

/// A node's executor as its peers reach it, recording each scan request's columns, number of
/// filters and rows, and each plan fragment (as received) with the rows it answered.
#[derive(Debug)]
pub struct Recorded {
    pub node: Executor,
    /// Refuse the next fragment as an owner that no longer owns its shards would, after the
    /// catalog has moved on (a database created).
    pub refuse_next: std::sync::atomic::AtomicBool,
    meta: Arc<MetaService>,
    pub scans: Mutex<Vec<(Vec<String>, usize, usize)>>,
    pub fragments: Mutex<Vec<(String, usize)>>,
}

fn replay(
    schema: datafusion::arrow::datatypes::SchemaRef,
    batches: Vec<datafusion::arrow::array::RecordBatch>,
) -> SendableRecordBatchStream {
    Box::pin(RecordBatchStreamAdapter::new(
        schema,
        futures::stream::iter(batches.into_iter().map(Ok)),
    ))
}

#[async_trait::async_trait]
impl ShardSource for Recorded {
    fn node_id(&self) -> u64 {
        self.node.node_id()
    }

    async fn measurements(
        &self,
        database: &str,
        shards: &[u64],
    ) -> Result<std::collections::BTreeSet<String>, ExecError> {
        self.node.measurements(database, shards).await
    }

    async fn schema(
        &self,
        database: &str,
        shards: &[u64],
        m: &str,
    ) -> Result<Option<ingester::TableSchema>, ExecError> {
        self.node.schema(database, shards, m).await
    }

    async fn scan(&self, request: ScanRequest) -> Result<SendableRecordBatchStream, ExecError> {
        let columns = request
            .schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let filters = request.filters.len();
        let schema = request.schema.clone();
        let batches: Vec<_> = self.node.scan(request).await?.try_collect().await?;
        let rows = batches.iter().map(|b| b.num_rows()).sum();
        self.scans.lock().unwrap().push((columns, filters, rows));
        Ok(replay(schema, batches))
    }

    /// Runs `fragment` as a peer across the network would: encoded, decoded in this node's
    /// session, then run over its own shards.
    async fn fragment(&self, fragment: Fragment) -> Result<SendableRecordBatchStream, ExecError> {
        if self
            .refuse_next
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            self.meta.create_database("moved_on", None).await?;
            return Err(ExecError::ShardNotLocal {
                shard: fragment.shards[0],
                owners: vec![],
            });
        }
        let bytes = fragment.encode(0)?;
        let received = Fragment::decode(&bytes, &self.node.session().task_ctx())?;
        let plan = datafusion::physical_plan::displayable(received.fragment.plan.as_ref())
            .indent(false)
            .to_string();
        let schema = received.fragment.plan.schema();
        let report = received.fragment.report.clone();
        let batches: Vec<_> = self
            .node
            .fragment(received.fragment)
            .await?
            .try_collect()
            .await?;
        if let Some(ran) = report.get() {
            fragment.report.set(ran);
        }
        let rows = batches.iter().map(|b| b.num_rows()).sum();
        self.fragments.lock().unwrap().push((plan, rows));
        Ok(replay(schema, batches))
    }
}

pub struct Pair {
    pub meta: Arc<MetaService>,
    pub ingesters: Vec<Arc<Ingester>>,
    /// Each node's executor, reading the other's shards through `InProcess` and writing its
    /// points through the other's ingester.
    pub execs: Vec<Executor>,
    /// Node 0's executor without peers.
    pub alone: Executor,
    /// Each node as its peers reach it.
    pub served: Vec<Arc<Recorded>>,
    _dir: tempfile::TempDir,
}

impl Pair {
    /// Two data nodes and database `db`, whose shard groups have a shard on each.
    pub async fn with_database(db: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let meta = MetaService::open(MetaOptions::local(dir.path().join("meta")))
            .await
            .unwrap();
        let a = meta.identity().data_id.unwrap();
        let Outcome::NodeId(b) = meta
            .execute(Command::RegisterDataNode {
                id: None,
                http_addr: "b:8086".into(),
                tcp_addr: "b:8088".into(),
            })
            .await
            .unwrap()
        else {
            panic!("no node id")
        };
        meta.create_database(db, None).await.unwrap();
        let peers = Arc::new(InProcess::default());
        let writers = Arc::new(InProcessWriters::default());
        let mut ingesters = Vec::new();
        let mut execs = Vec::new();
        let mut served = Vec::new();
        for (i, id) in [a, b].into_iter().enumerate() {
            let cfg = IngesterConfig::with_dirs(
                dir.path().join(format!("data{i}")),
                dir.path().join(format!("wal{i}")),
            );
            let ing = Ingester::open(cfg, meta.clone(), id).await.unwrap();
            writers.0.lock().unwrap().insert(id, ing.clone());
            let writer = PointsWriter::with_ingester(meta.clone(), Some(ing.clone()))
                .with_peers(writers.clone(), None);
            let ex = Executor::new(meta.clone(), Some(ing.clone()))
                .with_writer(writer)
                .with_peers(peers.clone());
            let recorded = Arc::new(Recorded {
                node: ex.clone(),
                refuse_next: Default::default(),
                meta: meta.clone(),
                scans: Mutex::default(),
                fragments: Mutex::default(),
            });
            peers
                .0
                .lock()
                .unwrap()
                .insert(id, recorded.clone() as Arc<dyn ShardSource>);
            served.push(recorded);
            ingesters.push(ing);
            execs.push(ex);
        }
        let alone = Executor::new(meta.clone(), Some(ingesters[0].clone()));
        Self {
            meta,
            ingesters,
            execs,
            alone,
            served,
            _dir: dir,
        }
    }

    pub async fn persist(&self) {
        for i in &self.ingesters {
            i.persist().await.unwrap();
        }
    }
}

//! This node answering [`ScanRequest`]s for the shards it owns: the serving side of the
//! [`ShardSource`] seam, which a peer's querier reaches (in process in tests; over Arrow
//! Flight with the distributed-query work).
//!
//! ```text
//!  ScanRequest { database, measurement, shards, range, schema, filters }
//!    ├─ a shard this node does not own ─▶ ExecError::ShardNotLocal (never read as empty)
//!    └─ the local scan (crate::scan: files, buffers, merges, series indexes)
//!         ─▶ filters whose columns the shards have ─▶ the request's columns, in its order
//!            and types (nulls for columns the shards lack) ─▶ a stream of record batches
//! ```
//!
//! The files the scan reads stay pinned until the stream is dropped. Filters on columns these
//! shards do not have are left to the querier, which applies every filter again.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::common::ScalarValue;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::{cast, lit};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::col;
use futures::StreamExt;
use ingester::TableSchema;

use crate::executor::{ExecError, Executor};
use crate::fragment::Fragment;
use crate::shard_source::{LocalShards, ScanRequest, ShardSource, columns_of};

impl Executor {
    /// The plan of this node's scan of `request` (its own shards only), and the pins that keep
    /// the files it reads on disk until it has run.
    pub(crate) async fn scan_plan(
        &self,
        request: ScanRequest,
    ) -> Result<(Arc<dyn ExecutionPlan>, Vec<Arc<ingester::pins::Pinned>>), ExecError> {
        let shards = self.own_shards(&request.database, &request.shards)?;
        let mut sources = self
            .local_sources(&request.database, &shards, &request.measurement)
            .await?;
        // Only last values wanted: each shard's rows before its series' last ones are left out.
        if request.last_values {
            sources = sources.for_last_values();
        }
        let Some(frame) = self
            .frame_of(self.session(), &request.measurement, sources, request.range)
            .await?
        else {
            return Ok((Arc::new(EmptyExec::new(request.schema)), Vec::new()));
        };
        let pinned = frame.pinned;
        let mut df = frame.df.build()?;
        let have: BTreeSet<String> = df
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        for f in request.filters {
            if columns_of(&f).is_subset(&have) {
                df = df.filter(f)?;
            }
        }
        let columns = request
            .schema
            .fields()
            .iter()
            .map(|f| {
                let name = f.name().as_str();
                let e = match df.schema().field_with_unqualified_name(name) {
                    Ok(ours) if ours.data_type() == f.data_type() => col(name),
                    Ok(_) => cast(col(name), f.data_type().clone()),
                    Err(_) => lit(ScalarValue::try_from(f.data_type())?),
                };
                Ok(e.alias(name))
            })
            .collect::<Result<Vec<_>, ExecError>>()?;
        let df = df.select(columns)?;
        // Planned as a statement's scans are: each file's rows picked by its series index.
        let (state, logical) = df.into_parts();
        let task = Arc::new(datafusion::execution::TaskContext::from(&state));
        let plan = state.create_physical_plan(&logical).await?;
        let (plan, _) = self.indexes().attach(plan, &task).await?;
        Ok((plan, pinned))
    }

    /// This node's shards among `shards`, or the first it does not own as an error.
    fn own_shards(&self, database: &str, shards: &[u64]) -> Result<Vec<u64>, ExecError> {
        let node = self.ingester().map(|i| i.node_id());
        let cat = self.meta().catalog();
        if cat.database(database).is_none() {
            return Err(ExecError::DatabaseNotFound(database.to_string()));
        }
        let mut out = Vec::with_capacity(shards.len());
        for &id in shards {
            let owners = cat
                .find_shard(id)
                .filter(|p| p.database.name == database)
                .map(|p| p.shard.owners.clone())
                .unwrap_or_default();
            if !node.is_some_and(|n| owners.contains(&n)) {
                return Err(ExecError::ShardNotLocal { shard: id, owners });
            }
            out.push(id);
        }
        Ok(out)
    }
}

#[async_trait]
impl ShardSource for Executor {
    fn node_id(&self) -> u64 {
        match self.ingester() {
            Some(i) => i.node_id(),
            None => self.meta().identity().meta_id.unwrap_or_default(),
        }
    }

    async fn measurements(
        &self,
        database: &str,
        shards: &[u64],
    ) -> Result<BTreeSet<String>, ExecError> {
        let shards = self.own_shards(database, shards)?;
        Ok(match self.ingester() {
            Some(i) => i.measurements(&shards),
            None => BTreeSet::new(),
        })
    }

    async fn schema(
        &self,
        database: &str,
        shards: &[u64],
        m: &str,
    ) -> Result<Option<TableSchema>, ExecError> {
        let shards = self.own_shards(database, shards)?;
        Ok(self
            .ingester()
            .and_then(|i| LocalShards(Arc::clone(i)).schema(&shards, m)))
    }

    async fn scan(&self, request: ScanRequest) -> Result<SendableRecordBatchStream, ExecError> {
        let (plan, pinned) = self.scan_plan(request).await?;
        let stream = datafusion::physical_plan::execute_stream(plan, self.session().task_ctx())?;
        let schema = stream.schema();
        // The files stay pinned while the stream is read.
        let batches = stream.map(move |b| {
            let _ = &pinned;
            b
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }

    async fn fragment(&self, fragment: Fragment) -> Result<SendableRecordBatchStream, ExecError> {
        self.own_shards(&fragment.database, &fragment.shards)?;
        let mut scans = Vec::new();
        let mut pinned = Vec::new();
        for request in fragment.scans() {
            if request.database != fragment.database
                || request.shards.iter().any(|s| !fragment.shards.contains(s))
            {
                return Err(ExecError::Internal(
                    "a plan fragment scans shards it does not name".into(),
                ));
            }
            let (plan, pins) = self.scan_plan(request).await?;
            scans.push(plan);
            pinned.extend(pins);
        }
        // The fragment runs over this node's scans themselves (their partitions feed its
        // partial aggregate directly).
        let plan = fragment.bind(scans)?;
        let stream = datafusion::physical_plan::execute_stream(
            Arc::clone(&plan),
            self.session().task_ctx(),
        )?;
        let schema = stream.schema();
        let stream: SendableRecordBatchStream = Box::pin(RecordBatchStreamAdapter::new(
            schema,
            stream.map(move |b| {
                let _ = &pinned;
                b
            }),
        ));
        // Its metrics, for the querying node's EXPLAIN ANALYZE, once it has run.
        Ok(fragment.report.when_done(plan, stream))
    }
}

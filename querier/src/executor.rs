//! Runs parsed statements against the catalog (meta service) and the local shards.

use std::sync::Arc;

use catalog::{MetaError, MetaService, RetentionPolicySpec};
use ingester::Ingester;
use serde_json::Value;

use crate::influxql::{Statement, go_duration};
use crate::result::{AnswerStream, Item, Message, RowSeries, SeriesSink, StatementResult};
use tokio::sync::mpsc::Sender;
use tracing::Instrument;

/// How many items of an answer wait for its reader before the query waits too.
const ANSWER_ITEMS: usize = 4;

/// Where a query's answer goes: a stream's channel (a task of its own), or a list on the
/// caller's task (a whole answer, within a memory budget).
enum Target {
    Channel(Sender<Item>),
    Inline { items: Vec<Item>, max_bytes: usize },
}

impl Target {
    /// Sends an item; false when the reader has gone.
    async fn send(&mut self, item: Item) -> bool {
        match self {
            Target::Channel(tx) => tx.send(item).await.is_ok(),
            Target::Inline { items, .. } => {
                items.push(item);
                true
            }
        }
    }

    /// The sink statement `id` sends its series to.
    fn sink(&self, id: usize) -> SeriesSink {
        match self {
            Target::Channel(tx) => SeriesSink::channel(tx.clone(), id),
            Target::Inline { max_bytes, .. } => SeriesSink::list_within(*max_bytes),
        }
    }

    /// A finished statement's series, where its sink kept them.
    fn take_series(&mut self, id: usize, sink: SeriesSink) {
        if let Target::Inline { items, .. } = self {
            items.extend(sink.into_pieces().into_iter().map(|series| Item::Series {
                statement_id: id,
                series,
            }));
        }
    }
}
use crate::select;
use crate::shard_source::{LocalShards, Peers, ShardSet};
use catalog::DatabaseInfo;
use ingester::TableSchema;

/// What the request says beyond the statements.
#[derive(Debug, Clone, Default)]
pub struct QueryContext {
    /// The `db` parameter.
    pub database: Option<String>,
    /// The request came as GET: write statements run, with 1.x's deprecation warning.
    pub read_only: bool,
    /// The time `now()` means; the current time when absent.
    pub now: Option<i64>,
    /// Set while running `EXPLAIN` (`Some(true)` for `EXPLAIN ANALYZE`): the plan is returned
    /// instead of the rows.
    pub explain: Option<bool>,
    /// The authenticated caller when auth is on (`SHOW DATABASES` lists only what it may read
    /// or write); `None` when auth is off. Whether it may run the statements at all is checked
    /// before they run ([`crate::users::authorize_query`]).
    pub user: Option<Arc<catalog::UserInfo>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("database name required")]
    DatabaseRequired,
    #[error("database not found: {0}")]
    DatabaseNotFound(String),
    #[error("{0}")]
    Meta(#[from] MetaError),
    #[error("{0}")]
    Storage(#[from] ingester::StorageError),
    #[error("{0}")]
    Write(#[from] coordinator::WriteError),
    /// A query the planner refuses, with 1.x's text.
    #[error("{0}")]
    Query(String),
    #[error("{0}")]
    DataFusion(datafusion::error::DataFusionError),
    #[error("{0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    /// A shard the statement must read lives on other data nodes only, none of which this node
    /// can ask for it; never answered as if the shard were empty.
    #[error(
        "shard {shard} is owned by data node(s) {owners:?}, not by this node, and no owner can be asked for it; send the query to an owner (SHOW SHARDS, SHOW SERVERS)"
    )]
    ShardNotLocal { shard: u64, owners: Vec<u64> },
    /// A whole (non-chunked) answer would hold more than its budget in memory.
    #[error(
        "the answer is larger than [http] max-response-memory ({max_bytes} bytes held in memory): ask for it in chunks (chunked=true), or narrow the query"
    )]
    AnswerTooLarge { max_bytes: usize },
    /// The request ran longer than `[coordinator] query-timeout` (1.x's text).
    #[error("query-timeout limit exceeded")]
    QueryTimeout,
    /// `KILL QUERY` stopped the request (1.x's text).
    #[error("query interrupted")]
    Interrupted,
    /// The reader of the answer has gone (the client disconnected): the query stops.
    #[error("the query was cancelled")]
    Cancelled,
    /// Another data node could not answer for its shards.
    #[error("data node {node}: {message}")]
    Remote { node: u64, message: String },
    /// None of the owners of some shards answered a read of them: the query fails rather
    /// than answer without them.
    #[error(
        "shard(s) {shards:?} could not be read: none of their owners (data node(s) {owners:?}) answered ({errors})"
    )]
    NoOwnerAnswered {
        shards: Vec<u64>,
        owners: Vec<u64>,
        errors: String,
    },
    /// The statement needed more memory than its budget or the node's query pool allows
    /// (`[coordinator] query-memory-bytes`, `query-pool-bytes`), even after spilling what can
    /// spill ([`crate::memory`]).
    #[error("{0}")]
    OutOfMemory(String),
    /// A check of Fletch's own planning failed (a bug, never the query's fault).
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<datafusion::error::DataFusionError> for ExecError {
    /// Fletch's own errors raised inside a plan (a remote read, say) come out as themselves.
    fn from(e: datafusion::error::DataFusionError) -> Self {
        use datafusion::error::DataFusionError as D;
        if let Some(msg) = crate::memory::exhausted_message(&e) {
            return Self::OutOfMemory(msg.to_string());
        }
        // Limits raised inside a plan (the gap fill's buckets) read as 1.x writes them, without
        // DataFusion's `Execution error: ` before them.
        if let D::Execution(msg) = e.find_root()
            && msg.contains(" limit exceeded: (")
        {
            return Self::Query(msg.clone());
        }
        if let D::External(inner) = e.find_root()
            && let Some(ours) = inner.downcast_ref::<ExecError>()
        {
            match ours {
                Self::NoOwnerAnswered {
                    shards,
                    owners,
                    errors,
                } => {
                    return Self::NoOwnerAnswered {
                        shards: shards.clone(),
                        owners: owners.clone(),
                        errors: errors.clone(),
                    };
                }
                Self::Remote { node, message } => {
                    return Self::Remote {
                        node: *node,
                        message: message.clone(),
                    };
                }
                Self::ShardNotLocal { shard, owners } => {
                    return Self::ShardNotLocal {
                        shard: *shard,
                        owners: owners.clone(),
                    };
                }
                _ => {}
            }
        }
        Self::DataFusion(e)
    }
}

#[derive(Clone)]
pub struct Executor {
    meta: Arc<MetaService>,
    ingester: Option<Arc<Ingester>>,
    /// This node's own shards ([`crate::shard_source`]).
    local: Option<LocalShards>,
    /// Where other data nodes' shards are read.
    peers: Option<Arc<dyn Peers>>,
    /// One DataFusion session for every query (building one registers every function).
    session: Arc<datafusion::prelude::SessionContext>,
    /// The same session with one partition, for scans small enough that splitting them across
    /// cores costs more (repartitioning, merging, thread hand-offs) than it saves.
    small_session: Arc<datafusion::prelude::SessionContext>,
    /// Physical plans kept per query shape.
    plans: Arc<crate::plan_cache::PlanCache>,
    /// Where each series lies in the files queries read.
    indexes: Arc<crate::series_index::SeriesIndexes>,
    /// The tables of the file sets queries read.
    listings: Arc<crate::scan::Listings>,
    /// Files' rows from last-value bounds, for the queries of last values.
    last_rows: Arc<crate::last_rows::LastRows>,
    /// Counts of series per set of sources (`SHOW SERIES CARDINALITY`).
    series_counts: Arc<crate::series_runs::SeriesCounts>,
    /// Where `SELECT ... INTO` writes: the write coordinator, as `/write` does.
    writer: coordinator::PointsWriter,
    /// About how many rows one window of a selection ordered by time alone holds (its sort
    /// holds them, not the whole answer).
    window_rows: u64,
    /// What `SHOW STATS` reports.
    stats: Vec<Arc<dyn crate::stats::StatsSource>>,
    /// What `SHOW DIAGNOSTICS` reports.
    diagnostics: Vec<Arc<dyn crate::stats::DiagnosticsSource>>,
    /// The other nodes' running queries (`SHOW QUERIES`, `KILL QUERY ... ON`).
    cluster_queries: Option<Arc<dyn crate::queries::ClusterQueries>>,
    /// How long a request's statements may run in all (`[coordinator] query-timeout`).
    query_timeout: Option<std::time::Duration>,
    /// This data node's applier of the deletes recorded in the catalog.
    deletes: Option<Arc<coordinator::DeleteApplier>>,
    /// The requests running here (`SHOW QUERIES`, `KILL QUERY`, `max-concurrent-queries`).
    queries: Arc<crate::queries::Queries>,
    /// `[coordinator] max-select-buckets` (0: no limit but the gap fill's own guard).
    max_select_buckets: u64,
    /// `[coordinator] max-select-point` and `max-select-series` (0: no limit).
    max_select: (u64, u64),
    /// The pool of every query's memory on this node (`[coordinator] query-pool-bytes`).
    memory: Arc<crate::memory::Budget>,
    /// The runtime (that pool, the spill directory) queries run with.
    runtime: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
    /// Each query's own budget inside the pool (`[coordinator] query-memory-bytes`; 0: none
    /// but the pool).
    query_memory: usize,
    /// Where queries spill.
    spill: Option<Arc<crate::memory::SpillFiles>>,
}

/// A node of the cluster as `SHOW QUERIES` and `KILL QUERY ... ON` name it.
#[derive(Debug, Clone)]
pub(crate) struct ClusterNode {
    pub id: u64,
    pub tcp_addr: String,
    pub http_addr: String,
    /// This node.
    pub here: bool,
}

/// `session` with `runtime` (its memory pool and spill directory) instead of its own.
fn with_runtime(
    session: &datafusion::prelude::SessionContext,
    runtime: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
) -> datafusion::prelude::SessionContext {
    let mut state = datafusion::execution::SessionStateBuilder::new_from_existing(session.state())
        .with_runtime_env(Arc::clone(&runtime))
        .build();
    crate::memory::fit_to_budget(state.config_mut().options_mut(), &runtime);
    datafusion::prelude::SessionContext::new_with_state(state)
}

/// How long a read naming a database this node does not know waits for the catalog to catch
/// up with the leader's before it answers that the database is not found.
const CATALOG_CATCH_UP: std::time::Duration = std::time::Duration::from_secs(2);

/// Rows a window of a selection ordered by time alone holds, about.
pub const WINDOW_ROWS: u64 = 64 * 1024;

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("meta", &self.meta)
            .finish()
    }
}

impl Executor {
    pub fn new(meta: Arc<MetaService>, ingester: Option<Arc<Ingester>>) -> Self {
        Self {
            writer: coordinator::PointsWriter::with_ingester(meta.clone(), ingester.clone()),
            window_rows: WINDOW_ROWS,
            local: ingester.clone().map(LocalShards),
            peers: None,
            deletes: None,
            stats: Vec::new(),
            diagnostics: Vec::new(),
            cluster_queries: None,
            query_timeout: None,
            queries: Arc::default(),
            max_select_buckets: 0,
            max_select: (0, 0),
            memory: crate::memory::Budget::node(0),
            runtime: Arc::new(datafusion::execution::runtime_env::RuntimeEnv::default()),
            query_memory: 0,
            spill: None,
            meta,
            ingester,
            session: Arc::new(crate::scan::session(2)),
            small_session: Arc::new(crate::scan::session(1)),
            plans: Arc::default(),
            indexes: Arc::default(),
            listings: Arc::default(),
            last_rows: Arc::default(),
            series_counts: Arc::default(),
        }
    }

    /// The same executor, running selections ordered by time alone in windows of about `rows`
    /// rows (`u64::MAX`: never in windows).
    pub fn with_window_rows(mut self, rows: u64) -> Self {
        self.window_rows = rows;
        self
    }

    /// The same executor, failing a request's statement that is still running `timeout` after
    /// the request began (`query-timeout limit exceeded`; the statements after it are not
    /// executed). Zero: no limit.
    pub fn with_query_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.query_timeout = (!timeout.is_zero()).then_some(timeout);
        self
    }

    /// The same executor, refusing a request while `max_concurrent` are running (0: no limit)
    /// and logging those that ran past `log_after` (0: none), as 1.x's
    /// `[coordinator] max-concurrent-queries` and `log-queries-after`.
    pub fn with_query_limits(
        mut self,
        max_concurrent: usize,
        log_after: std::time::Duration,
    ) -> Self {
        self.queries = Arc::new(crate::queries::Queries::new(max_concurrent, log_after));
        self
    }

    /// The same executor, refusing a `GROUP BY time` statement whose time range spans more
    /// than `n` buckets (1.x's `[coordinator] max-select-buckets`; 0: no limit).
    pub fn with_max_select_buckets(mut self, n: u64) -> Self {
        self.max_select_buckets = n;
        self
    }

    /// The same executor, its queries holding at most `pool_bytes` of memory together and
    /// `query_bytes` each (0: no bound), spilling what can spill under `spill_dir` (`None`:
    /// the system's temporary directory). See [`crate::memory`].
    pub fn with_memory(
        mut self,
        pool_bytes: usize,
        query_bytes: usize,
        spill_dir: Option<std::path::PathBuf>,
    ) -> Result<Self, ExecError> {
        self.memory = crate::memory::Budget::node(pool_bytes);
        let (runtime, spill) = crate::memory::node_runtime(&self.memory, spill_dir)?;
        self.runtime = runtime;
        self.spill = Some(spill);
        self.query_memory = query_bytes;
        self.session = Arc::new(with_runtime(&self.session, Arc::clone(&self.runtime)));
        self.small_session = Arc::new(with_runtime(&self.small_session, Arc::clone(&self.runtime)));
        Ok(self)
    }

    /// Where this node's queries spill (`None` before [`Self::with_memory`]).
    pub fn spill(&self) -> Option<&Arc<crate::memory::SpillFiles>> {
        self.spill.as_ref()
    }

    /// The node's query memory pool.
    pub fn memory(&self) -> &Arc<crate::memory::Budget> {
        &self.memory
    }

    /// The runtime one query runs with: its own budget inside the node's pool when
    /// `query-memory-bytes` is set, else the node's.
    pub fn query_runtime(&self) -> Arc<datafusion::execution::runtime_env::RuntimeEnv> {
        match self.query_memory {
            0 => Arc::clone(&self.runtime),
            n => crate::memory::query_runtime(
                &self.runtime,
                crate::memory::Budget::query(&self.memory, n),
            ),
        }
    }

    /// This executor for one request: its sessions run with the request's own memory budget
    /// (the same executor when there is no per-query budget).
    fn for_request(&self) -> std::borrow::Cow<'_, Self> {
        if self.query_memory == 0 {
            return std::borrow::Cow::Borrowed(self);
        }
        let rt = self.query_runtime();
        let mut ex = self.clone();
        ex.session = Arc::new(with_runtime(&self.session, Arc::clone(&rt)));
        ex.small_session = Arc::new(with_runtime(&self.small_session, rt));
        std::borrow::Cow::Owned(ex)
    }

    /// The same executor, refusing a `SELECT` whose measurement has more than `points` rows
    /// or `series` series in its time range and tag conditions (1.x's `[coordinator]
    /// max-select-point` and `max-select-series`; 0: no limit).
    pub fn with_max_select(mut self, points: u64, series: u64) -> Self {
        self.max_select = (points, series);
        self
    }

    pub(crate) fn max_select(&self) -> (u64, u64) {
        self.max_select
    }

    /// `[coordinator] query-timeout` (`None`: no limit).
    pub fn query_timeout(&self) -> Option<std::time::Duration> {
        self.query_timeout
    }

    pub(crate) fn max_select_buckets(&self) -> u64 {
        self.max_select_buckets
    }

    /// The requests running on this node.
    pub fn queries(&self) -> &Arc<crate::queries::Queries> {
        &self.queries
    }

    /// The same executor, reporting `source`'s counters in `SHOW STATS`.
    pub fn with_stats(mut self, source: Arc<dyn crate::stats::StatsSource>) -> Self {
        self.stats.push(source);
        self
    }

    pub(crate) fn stats_sources(&self) -> &[Arc<dyn crate::stats::StatsSource>] {
        &self.stats
    }

    /// The same executor, listing and killing other nodes' queries through `remote`.
    pub fn with_cluster_queries(mut self, remote: Arc<dyn crate::queries::ClusterQueries>) -> Self {
        self.cluster_queries = Some(remote);
        self
    }

    pub(crate) fn cluster_queries(&self) -> Option<&Arc<dyn crate::queries::ClusterQueries>> {
        self.cluster_queries.as_ref()
    }

    /// The cluster's nodes (data and meta, one entry per internal address), by id: a node
    /// that is both is listed under its data node id.
    pub(crate) fn cluster_nodes(&self) -> Vec<ClusterNode> {
        let me = self.meta.identity();
        let cat = self.meta.catalog();
        let mut nodes: Vec<ClusterNode> = Vec::new();
        let data = cat
            .data_nodes
            .values()
            .map(|n| (n, me.data_id == Some(n.id)));
        let meta = cat
            .meta_nodes
            .values()
            .map(|n| (n, me.meta_id == Some(n.id)));
        for (n, here) in data.chain(meta) {
            if nodes.iter().any(|m| m.tcp_addr == n.tcp_addr) {
                continue;
            }
            nodes.push(ClusterNode {
                id: n.id,
                tcp_addr: n.tcp_addr.clone(),
                http_addr: n.http_addr.clone(),
                here,
            });
        }
        nodes.sort_by_key(|n| n.id);
        nodes
    }

    /// The same executor, reporting `source`'s modules in `SHOW DIAGNOSTICS`.
    pub fn with_diagnostics(mut self, source: Arc<dyn crate::stats::DiagnosticsSource>) -> Self {
        self.diagnostics.push(source);
        self
    }

    pub(crate) fn diagnostics_sources(&self) -> &[Arc<dyn crate::stats::DiagnosticsSource>] {
        &self.diagnostics
    }

    /// The same executor, writing `SELECT ... INTO` through `writer`.
    pub fn with_writer(mut self, writer: coordinator::PointsWriter) -> Self {
        self.writer = writer;
        self
    }

    /// The same executor, applying deletes through this data node's `applier` (else a
    /// `DELETE` sent here applies to its own shards directly).
    pub fn with_deletes(mut self, applier: Arc<coordinator::DeleteApplier>) -> Self {
        self.deletes = Some(applier);
        self
    }

    pub(crate) fn deletes(&self) -> Option<&Arc<coordinator::DeleteApplier>> {
        self.deletes.as_ref()
    }

    /// The same executor, reading shards this node does not own from `peers`.
    pub fn with_peers(mut self, peers: Arc<dyn Peers>) -> Self {
        self.peers = Some(peers);
        self
    }

    pub(crate) fn window_rows(&self) -> u64 {
        self.window_rows
    }

    /// The write coordinator `SELECT ... INTO` writes through.
    pub fn writer(&self) -> &coordinator::PointsWriter {
        &self.writer
    }

    /// Physical plans kept per query shape.
    pub fn plans(&self) -> &crate::plan_cache::PlanCache {
        &self.plans
    }

    /// Where each series lies in the files queries read.
    pub fn indexes(&self) -> &crate::series_index::SeriesIndexes {
        &self.indexes
    }

    /// The tables of the file sets queries read.
    pub fn listings(&self) -> &crate::scan::Listings {
        &self.listings
    }

    /// Files' rows from last-value bounds, kept for the queries of last values.
    pub fn last_rows(&self) -> &crate::last_rows::LastRows {
        &self.last_rows
    }

    pub(crate) fn series_counts(&self) -> &crate::series_runs::SeriesCounts {
        &self.series_counts
    }

    pub(crate) fn small_session(&self) -> &datafusion::prelude::SessionContext {
        &self.small_session
    }

    pub fn session(&self) -> &datafusion::prelude::SessionContext {
        &self.session
    }

    /// Runs statements in order, each statement's answer streamed as it is produced; after the
    /// first failure the rest are `not executed`, as 1.x. The query runs on its own task and
    /// stops when the stream is dropped.
    pub fn run(&self, statements: Vec<Statement>, ctx: QueryContext) -> AnswerStream {
        let (tx, rx) = tokio::sync::mpsc::channel(ANSWER_ITEMS);
        let ex = self.clone();
        let gone = tx.clone();
        tokio::spawn(
            async move {
                // A reader that goes away (a client that disconnects) stops the query at once,
                // not only at its next answer.
                let mut target = Target::Channel(tx);
                tokio::select! {
                    _ = gone.closed() => {}
                    _ = ex.run_all(&statements, &ctx, &mut target) => {}
                }
            }
            .instrument(tracing::Span::current()),
        );
        rx
    }

    /// Runs statements in order and answers each statement's whole answer, holding at most
    /// `max_bytes` of Arrow data (0: no limit; past it, the statement that crossed it answers
    /// [`ExecError::AnswerTooLarge`]). On the caller's task: nothing is handed between tasks,
    /// which a whole answer does not need.
    pub async fn collect(
        &self,
        statements: &[Statement],
        ctx: &QueryContext,
        max_bytes: usize,
    ) -> Vec<StatementResult> {
        let mut target = Target::Inline {
            items: Vec::new(),
            max_bytes,
        };
        self.run_all(statements, ctx, &mut target).await;
        let Target::Inline { items, .. } = target else {
            return Vec::new();
        };
        match crate::result::collect_items(items) {
            Ok(results) => results,
            Err(e) => vec![StatementResult::error(0, e.to_string())],
        }
    }

    /// [`Self::collect`] without a memory budget.
    pub async fn execute(
        &self,
        statements: &[Statement],
        ctx: &QueryContext,
    ) -> Vec<StatementResult> {
        self.collect(statements, ctx, 0).await
    }

    async fn run_all(&self, statements: &[Statement], ctx: &QueryContext, target: &mut Target) {
        self.for_request()
            .run_request(statements, ctx, target)
            .await
    }

    async fn run_request(&self, statements: &[Statement], ctx: &QueryContext, target: &mut Target) {
        // The request is a query of this node's until it is done (SHOW QUERIES, KILL QUERY);
        // past max-concurrent-queries it is refused whole, as 1.x refuses it.
        let text = statements
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(";\n");
        let attached = match self
            .queries
            .attach(text, ctx.database.clone().unwrap_or_default())
        {
            Ok(a) => a,
            Err(e) => {
                let _ = target
                    .send(Item::End {
                        statement_id: 0,
                        error: Some(e.to_string()),
                    })
                    .await;
                return;
            }
        };
        let mut failed = false;
        // `[coordinator] query-timeout` bounds the whole request, remote reads included.
        let deadline = self.query_timeout.map(|d| tokio::time::Instant::now() + d);
        for (id, stmt) in statements.iter().enumerate() {
            if failed {
                let end = Item::End {
                    statement_id: id,
                    error: Some("not executed".into()),
                };
                if !target.send(end).await {
                    return;
                }
                continue;
            }
            let mut deprecated = Vec::new();
            if ctx.read_only && stmt.is_write() {
                let text = match stmt {
                    Statement::Select(s) => self.qualified(s, ctx).to_string(),
                    Statement::CreateContinuousQuery(cq) => self.qualified_cq(cq).to_string(),
                    other => other.to_string(),
                };
                deprecated.push(Message {
                    level: "warning".into(),
                    text: format!("deprecated use of '{text}' in a read only context, please use a POST request instead"),
                });
            }
            let streams = matches!(stmt, Statement::Select(_) | Statement::Explain { .. });
            let messages = |mut own: Vec<Message>| {
                own.extend(deprecated.iter().cloned());
                Item::Messages {
                    statement_id: id,
                    messages: own,
                }
            };
            if streams && !deprecated.is_empty() && !target.send(messages(Vec::new())).await {
                return;
            }
            let mut sink = target.sink(id);
            let mut own = Vec::new();
            let run = async {
                match deadline {
                    // Past the deadline already: the statement does not start.
                    Some(at) if tokio::time::Instant::now() >= at => Err(ExecError::QueryTimeout),
                    Some(at) => {
                        match tokio::time::timeout_at(
                            at,
                            self.execute_caught_up(stmt, ctx, &mut own, &mut sink),
                        )
                        .await
                        {
                            Ok(r) => r,
                            Err(_) => Err(ExecError::QueryTimeout),
                        }
                    }
                    None => self.execute_caught_up(stmt, ctx, &mut own, &mut sink).await,
                }
            };
            let result = tokio::select! {
                r = run => r,
                () = attached.killed() => Err(ExecError::Interrupted),
            };
            let error = match result {
                Ok(rows) => {
                    if !streams
                        && (!own.is_empty() || !deprecated.is_empty())
                        && !target.send(messages(own)).await
                    {
                        return;
                    }
                    let mut error = None;
                    for r in rows {
                        let sent = match r.into_series() {
                            Ok(series) => sink.send(series).await,
                            Err(e) => Err(e),
                        };
                        match sent {
                            Ok(_) => {}
                            Err(ExecError::Cancelled) => return,
                            Err(e) => {
                                error = Some(e.to_string());
                                break;
                            }
                        }
                    }
                    error
                }
                Err(ExecError::Cancelled) => return,
                Err(e) => {
                    if !streams
                        && !deprecated.is_empty()
                        && !target.send(messages(Vec::new())).await
                    {
                        return;
                    }
                    Some(e.to_string())
                }
            };
            if error.is_none() {
                target.take_series(id, sink);
            }
            failed = error.is_some();
            if !target
                .send(Item::End {
                    statement_id: id,
                    error,
                })
                .await
            {
                return;
            }
        }
    }

    /// The statement with database and retention policy filled in, as 1.x prints it.
    fn qualified(
        &self,
        s: &crate::influxql::SelectStatement,
        ctx: &QueryContext,
    ) -> crate::influxql::SelectStatement {
        let cat = self.meta.catalog();
        let fill = |m: &mut crate::influxql::Measurement| {
            if m.database.is_none() {
                m.database = ctx.database.clone();
            }
            if m.retention_policy.is_none() {
                m.retention_policy = m
                    .database
                    .as_deref()
                    .and_then(|d| cat.database(d))
                    .and_then(|d| d.default_rp.clone());
            }
        };
        let mut out = s.clone();
        if let Some(into) = &mut out.into {
            fill(into);
        }
        for src in &mut out.sources {
            if let crate::influxql::Source::Measurement(m) = src {
                fill(m);
            }
        }
        out
    }

    /// The meta service whose catalog this executor answers from.
    pub fn meta_service(&self) -> &Arc<MetaService> {
        &self.meta
    }

    pub(crate) fn meta(&self) -> &Arc<MetaService> {
        &self.meta
    }

    pub(crate) fn ingester(&self) -> Option<&Arc<Ingester>> {
        self.ingester.as_ref()
    }

    /// The shards of `db`.`rp` (every policy when empty) overlapping `range`, and what reads
    /// them; fails on a shard no source here reads ([`ShardSet::resolve`]).
    pub(crate) fn shard_set(
        &self,
        dbi: &DatabaseInfo,
        rp: &str,
        range: select::TimeRange,
    ) -> Result<ShardSet<'_>, ExecError> {
        ShardSet::resolve(self.local.as_ref(), self.peers.as_ref(), dbi, rp, range)
    }

    /// The union of a measurement's schemas over the shards of `db` (without reading data).
    pub(crate) async fn load_schema(
        &self,
        db: &str,
        name: &str,
    ) -> Result<Option<TableSchema>, ExecError> {
        let set = {
            let cat = self.meta.catalog();
            let dbi = cat
                .database(db)
                .ok_or_else(|| ExecError::DatabaseNotFound(db.to_string()))?;
            self.shard_set(dbi, "", select::TimeRange::ALL)?
        };
        let mut schema = set.local.and_then(|l| l.schema(&set.shards, name));
        for r in &set.remote {
            if let Some(t) = r.first(|s| s.schema(db, &r.shards, name)).await? {
                schema.get_or_insert_with(TableSchema::default).merge(&t);
            }
        }
        Ok(schema)
    }

    /// Measurements of `db` (in the shards of `rp`, or all policies when empty) named `name` or
    /// matching `regex`, sorted.
    pub async fn measurements_of(
        &self,
        db: &str,
        rp: &str,
        name: Option<&str>,
        regex: Option<&str>,
    ) -> Result<Vec<String>, ExecError> {
        self.measurements_at(db, rp, name, regex, select::TimeRange::ALL, true)
            .await
    }

    /// [`Self::measurements_of`] with data in shard groups overlapping `range` (what a
    /// `SELECT` reads: it then needs no shard outside its time range, whose owners may be
    /// down). A name read from other nodes' shards is not asked about first: the scan's schema
    /// request tells whether they have it (one round trip less per statement).
    pub async fn measurements_in(
        &self,
        db: &str,
        rp: &str,
        name: Option<&str>,
        regex: Option<&str>,
        range: select::TimeRange,
    ) -> Result<Vec<String>, ExecError> {
        self.measurements_at(db, rp, name, regex, range, false)
            .await
    }

    /// The measurements named `name` or matching `regex` in the shards of `range`; with
    /// `confirm`, a name is listed only if some shard has it.
    async fn measurements_at(
        &self,
        db: &str,
        rp: &str,
        name: Option<&str>,
        regex: Option<&str>,
        range: select::TimeRange,
        confirm: bool,
    ) -> Result<Vec<String>, ExecError> {
        let set = {
            let cat = self.meta.catalog();
            let dbi = cat
                .database(db)
                .ok_or_else(|| ExecError::DatabaseNotFound(db.to_string()))?;
            if !rp.is_empty() && dbi.rp(rp).is_none() {
                return Err(ExecError::Query(format!(
                    "retention policy not found: {rp}"
                )));
            }
            self.shard_set(dbi, rp, range)?
        };
        if let (Some(n), None, false, false) = (name, regex, set.remote.is_empty(), confirm) {
            return Ok(vec![n.to_string()]);
        }
        let mut all = match set.local {
            Some(local) => local.measurements(&set.shards),
            None => Default::default(),
        };
        for r in &set.remote {
            all.extend(r.first(|s| s.measurements(db, &r.shards)).await?);
        }
        Ok(match (name, regex) {
            (_, Some(re)) => {
                let re = regex::Regex::new(re).map_err(|e| ExecError::Query(e.to_string()))?;
                all.into_iter().filter(|m| re.is_match(m)).collect()
            }
            (Some(n), None) => all.into_iter().filter(|m| m == n).collect(),
            (None, None) => vec![],
        })
    }

    fn database<'a>(
        &self,
        on: &'a Option<String>,
        ctx: &'a QueryContext,
    ) -> Result<&'a str, ExecError> {
        on.as_deref()
            .or(ctx.database.as_deref())
            .filter(|d| !d.is_empty())
            .ok_or(ExecError::DatabaseRequired)
    }

    /// Runs one statement: a `SELECT` or `EXPLAIN` sends its series to `out` as they come;
    /// any other answers its (small) series whole. Warnings for the user go to `messages`.
    /// [`Self::execute_one`]; a read that names a database or retention policy this node's
    /// catalog lacks runs again once the catalog has caught up with the leader's (it may have
    /// been created through another node a moment ago), and so does a read whose shards no
    /// owner answered for, when the catalog has changed since it was planned.
    async fn execute_caught_up(
        &self,
        stmt: &Statement,
        ctx: &QueryContext,
        messages: &mut Vec<Message>,
        out: &mut SeriesSink,
    ) -> Result<Vec<RowSeries>, ExecError> {
        let planned = self.meta.applied_index();
        let result = self.execute_one(stmt, ctx, messages, out).await;
        let retry = match &result {
            Err(ExecError::DatabaseNotFound(_)) => true,
            Err(ExecError::Query(text)) => text.starts_with("retention policy not found"),
            // The owners did not answer or refused: if the catalog has moved on (a shard moved,
            // an owner replaced), planned again with the newer one, as long as nothing of the
            // answer has gone out yet.
            Err(ExecError::NoOwnerAnswered { .. }) => out.is_untouched(),
            _ => false,
        };
        if !retry || stmt.is_write() {
            return result;
        }
        if self.meta.catch_up(CATALOG_CATCH_UP).await && self.meta.applied_index() > planned {
            tracing::debug!("the catalog moved on while the statement ran; planning it again");
            return self.execute_one(stmt, ctx, messages, out).await;
        }
        result
    }

    async fn execute_one(
        &self,
        stmt: &Statement,
        ctx: &QueryContext,
        messages: &mut Vec<Message>,
        out: &mut SeriesSink,
    ) -> Result<Vec<RowSeries>, ExecError> {
        match stmt {
            Statement::ShowMetaStatus => Ok(self.show_meta_status().await?),
            Statement::ShowStats { module } => Ok(self.show_stats(module.as_deref())),
            Statement::ShowDiagnostics { module } => Ok(self.show_diagnostics(module.as_deref())),
            Statement::DropMetaServer { id } => {
                self.meta
                    .drop_server(catalog::rpc::ServerKind::Meta, *id, false)
                    .await?;
                Ok(vec![])
            }
            Statement::DropDataServer { id, force } => {
                let warnings = self
                    .meta
                    .drop_server(catalog::rpc::ServerKind::Data, *id, *force)
                    .await?;
                messages.extend(warnings.into_iter().map(|text| Message {
                    level: "warning".into(),
                    text,
                }));
                Ok(vec![])
            }
            Statement::CreateDatabase { name, rp } => {
                let spec = rp.as_ref().map(|c| RetentionPolicySpec {
                    name: c
                        .name
                        .clone()
                        .unwrap_or_else(|| catalog::model::DEFAULT_RP.to_string()),
                    duration: c.duration,
                    shard_group_duration: c.shard_duration,
                    replica_n: c.replication,
                });
                self.meta.create_database(name, spec).await?;
                Ok(vec![])
            }
            Statement::DropDatabase { name } => {
                self.meta.drop_database(name).await?;
                if let Some(ing) = &self.ingester {
                    ing.drop_removed_shards().await?;
                }
                Ok(vec![])
            }
            Statement::ShowDatabases => {
                let cat = self.meta.catalog();
                Ok(vec![RowSeries {
                    name: Some("databases".into()),
                    columns: vec!["name".into()],
                    values: cat
                        .databases_in_order()
                        .iter()
                        .filter(|d| crate::users::may_see_database(ctx.user.as_ref(), &d.name))
                        .map(|d| vec![Value::from(d.name.as_str())])
                        .collect(),
                    ..Default::default()
                }])
            }
            Statement::ShowRetentionPolicies { database } => {
                let db = self.database(database, ctx)?;
                let cat = self.meta.catalog();
                let dbi = cat
                    .database(db)
                    .ok_or_else(|| ExecError::DatabaseNotFound(db.to_string()))?;
                let columns = [
                    "name",
                    "duration",
                    "shardGroupDuration",
                    "replicaN",
                    "default",
                ];
                Ok(vec![RowSeries {
                    columns: columns.iter().map(|c| c.to_string()).collect(),
                    values: {
                        let mut rps: Vec<_> = dbi.retention_policies.values().collect();
                        rps.sort_by_key(|rp| rp.seq);
                        rps
                    }
                    .into_iter()
                    .map(|rp| {
                        vec![
                            Value::from(rp.name.as_str()),
                            Value::from(go_duration(rp.duration)),
                            Value::from(go_duration(rp.shard_group_duration)),
                            Value::from(rp.replica_n),
                            Value::from(dbi.default_rp.as_deref() == Some(rp.name.as_str())),
                        ]
                    })
                    .collect(),
                    ..Default::default()
                }])
            }
            Statement::Select(select) => {
                let db = ctx.database.as_deref().unwrap_or("");
                crate::select::execute(self, select, db, ctx, out).await?;
                Ok(vec![])
            }
            Statement::Explain { analyze, select } => {
                let db = ctx.database.as_deref().unwrap_or("");
                let ctx = QueryContext {
                    explain: Some(*analyze),
                    ..ctx.clone()
                };
                crate::select::execute(self, select, db, &ctx, out).await?;
                Ok(vec![])
            }
            Statement::ShowMeasurements {
                database,
                with,
                condition,
                limit,
                offset,
            } => {
                let db = self.database(database, ctx)?;
                self.show_measurements(db, with.as_ref(), condition.as_ref(), *limit, *offset)
                    .await
            }
            Statement::ShowTagKeys(flt) => {
                let db = self.database(&flt.database, ctx)?;
                self.show_tag_keys(db, flt).await
            }
            Statement::ShowTagValues { filter, key } => {
                let db = self.database(&filter.database, ctx)?;
                self.show_tag_values(db, filter, key).await
            }
            Statement::ShowFieldKeys(flt) => {
                let db = self.database(&flt.database, ctx)?;
                self.show_field_keys(db, flt).await
            }
            Statement::ShowSeries(flt) => {
                let db = self.database(&flt.database, ctx)?;
                self.show_series(db, flt).await
            }
            Statement::ShowCardinality { exact, inner } => {
                let database = match inner.as_ref() {
                    Statement::ShowMeasurements { database, .. } => database,
                    Statement::ShowTagKeys(f)
                    | Statement::ShowFieldKeys(f)
                    | Statement::ShowSeries(f)
                    | Statement::ShowTagValues { filter: f, .. } => &f.database,
                    _ => &None,
                };
                let db = self.database(database, ctx)?;
                self.show_cardinality(db, *exact, inner).await
            }
            Statement::ShowShards => Ok(self.show_shards()),
            Statement::ShowServers => Ok(self.show_servers()),
            Statement::CreateRetentionPolicy {
                name,
                database,
                options,
            } => {
                self.create_retention_policy(name, database, options)
                    .await?;
                Ok(vec![])
            }
            Statement::AlterRetentionPolicy {
                name,
                database,
                options,
            } => {
                self.alter_retention_policy(name, database, options).await?;
                Ok(vec![])
            }
            Statement::DropRetentionPolicy { name, database } => {
                self.drop_retention_policy(name, database).await?;
                Ok(vec![])
            }
            Statement::DropMeasurement { name } => {
                let db = ctx.database.as_deref().unwrap_or("");
                let m = crate::influxql::Measurement {
                    name: Some(name.clone()),
                    ..Default::default()
                };
                self.delete(db, &[m], None, true).await?;
                Ok(vec![])
            }
            Statement::DropSeries { sources, condition } => {
                let db = ctx.database.as_deref().unwrap_or("");
                self.delete(db, sources, condition.as_ref(), false).await?;
                Ok(vec![])
            }
            Statement::Delete { sources, condition } => {
                let db = ctx.database.as_deref().unwrap_or("");
                self.delete(db, sources, condition.as_ref(), true).await?;
                Ok(vec![])
            }
            Statement::ShowShardGroups => Ok(self.show_shard_groups()),
            Statement::ShowQueries => Ok(self.show_queries().await),
            Statement::CreateUser {
                name,
                password,
                admin,
            } => {
                self.create_user(name, password, *admin).await?;
                Ok(vec![])
            }
            Statement::DropUser { name } => {
                self.drop_user(name).await?;
                Ok(vec![])
            }
            Statement::SetPassword { name, password } => {
                self.set_password(name, password).await?;
                Ok(vec![])
            }
            Statement::Grant {
                privilege,
                database,
                user,
            } => {
                self.change_privilege(true, *privilege, database.as_deref(), user)
                    .await?;
                Ok(vec![])
            }
            Statement::Revoke {
                privilege,
                database,
                user,
            } => {
                self.change_privilege(false, *privilege, database.as_deref(), user)
                    .await?;
                Ok(vec![])
            }
            Statement::ShowUsers => Ok(self.show_users()),
            Statement::ShowGrants { user } => self.show_grants(user),
            Statement::CreateContinuousQuery(cq) => {
                self.create_continuous_query(cq).await?;
                Ok(vec![])
            }
            Statement::DropContinuousQuery { name, database } => {
                self.drop_continuous_query(name, database).await?;
                Ok(vec![])
            }
            Statement::ShowContinuousQueries => Ok(self.show_continuous_queries(ctx)),
            Statement::CreateSubscription {
                name,
                database,
                retention_policy,
                mode,
                destinations,
            } => {
                self.create_subscription(name, database, retention_policy, *mode, destinations)
                    .await?;
                Ok(vec![])
            }
            Statement::DropSubscription {
                name,
                database,
                retention_policy,
            } => {
                self.drop_subscription(name, database, retention_policy)
                    .await?;
                Ok(vec![])
            }
            Statement::ShowSubscriptions => Ok(self.show_subscriptions()),
            Statement::DropShard { id } => {
                self.meta
                    .execute(catalog::Command::DropShard {
                        id: *id,
                        at: ingester::now_nanos(),
                    })
                    .await?;
                // This node's copy now; other owners drop theirs as they see the catalog.
                if let Some(ing) = &self.ingester {
                    ing.drop_removed_shards().await?;
                }
                Ok(vec![])
            }
            Statement::KillQuery { id, host } => {
                // `ON "host"`: the node with that internal (or HTTP) address, which may be
                // this one; without it, this node's query.
                let Some(h) = host else {
                    self.queries.kill(*id)?;
                    return Ok(vec![]);
                };
                let nodes = self.cluster_nodes();
                let Some(node) = nodes.iter().find(|n| n.tcp_addr == *h || n.http_addr == *h)
                else {
                    return Err(ExecError::Query(format!(
                        "KILL QUERY ON {h}: no node of the cluster has that address (SHOW QUERIES shows each query's tcp_host)"
                    )));
                };
                if node.here {
                    self.queries.kill(*id)?;
                    return Ok(vec![]);
                }
                let Some(remote) = self.cluster_queries() else {
                    return Err(ExecError::Query(format!(
                        "KILL QUERY ON {h}: this node cannot reach other nodes; send it to {h}"
                    )));
                };
                remote
                    .kill(&node.tcp_addr, *id)
                    .await
                    .map_err(ExecError::Query)?;
                Ok(vec![])
            }
        }
    }
}

//! Arrow Flight SQL, and InfluxDB 3's Flight tickets, on the HTTP API's port (8086).
//!
//! ```text
//!  client (ADBC Flight SQL driver, pyarrow.flight, influxdb3-python)
//!    ─ gRPC (HTTP/2, content-type application/grpc) on [http] bind-address ─▶ PublicFlight
//!        GetFlightInfo(CommandStatementQuery) ─▶ plan on DataFusion (querier::sql) ─▶ schema,
//!            ticket = the statement (database, SQL)
//!        DoGet(ticket) ─▶ run it ─▶ record batches as Flight data, streamed
//!        DoGet(IOx JSON ticket {"database", "sql_query", "query_type": "sql"}) ─▶ the same
//!        GetCatalogs / GetDbSchemas / GetTables / GetTableTypes ─▶ from the catalog
//!        GetSqlInfo ─▶ the server's name, version and SQL
//!        CreatePreparedStatement, DoPut(parameters), ClosePreparedStatement
//!  the database: gRPC header `database` (also `bucket`, `bucket-name`, `iox-namespace-name`),
//!  else the catalog a query names (`db.iox.cpu`)
//! ```
//!
//! `FlightSqlService` (arrow-flight's) decodes the Flight SQL commands; [`PublicFlight`] is the
//! Flight service itself, which answers IOx's JSON tickets before it hands the rest over (a
//! JSON ticket is not a protobuf `Any`). Why not `datafusion-flight-sql-server`: the SQL side is
//! a session per call with the database's catalog (`querier::sql::session`), and the rest is a
//! few commands on arrow-flight's own trait, which this keeps in one file without another
//! dependency to keep in step with DataFusion.

use std::pin::Pin;
use std::sync::Arc;

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::metadata::{
    SqlInfoData, SqlInfoDataBuilder, XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder,
};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionBeginSavepointRequest, ActionBeginSavepointResult, ActionBeginTransactionRequest,
    ActionBeginTransactionResult, ActionClosePreparedStatementRequest,
    ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult,
    ActionEndSavepointRequest, ActionEndTransactionRequest, Any, CommandGetCatalogs,
    CommandGetDbSchemas, CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables,
    CommandGetXdbcTypeInfo, CommandPreparedStatementQuery, CommandPreparedStatementUpdate,
    CommandStatementIngest, CommandStatementQuery, CommandStatementSubstraitPlan,
    CommandStatementUpdate, DoPutPreparedStatementResult, ProstMessageExt, SqlInfo,
    TicketStatementQuery,
};
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightEndpoint, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaAsIpc, SchemaResult, Ticket,
};
use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::ipc::writer::IpcWriteOptions;
use datafusion::common::ScalarValue;
use datafusion::prelude::{DataFrame, SessionContext};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message;
use querier::Executor;

use crate::auth::{Auth, AuthError};
use crate::statement::{self, Access, Params, StatementError};
use serde::{Deserialize, Serialize};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};

type DataStream = Pin<Box<dyn Stream<Item = Result<FlightData, Status>> + Send + 'static>>;

/// The headers a database may come in, in the order they are looked at.
const DATABASE_HEADERS: &[&str] = &["database", "bucket", "bucket-name", "iox-namespace-name"];

/// A statement, as tickets and prepared statement handles carry it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Statement {
    /// From the call's headers; `None`: the query names its catalog.
    database: Option<String>,
    sql: String,
    /// Bound parameters, as an Arrow IPC stream of one row (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    params: Option<String>,
    /// The plan `GetFlightInfo` made and keeps for the `DoGet` of this ticket ([`Planned`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    planned: Option<u64>,
}

impl Statement {
    fn encode(&self) -> Bytes {
        serde_json::to_vec(self).unwrap_or_default().into()
    }

    fn decode(bytes: &[u8]) -> Result<Self, Status> {
        serde_json::from_slice(bytes)
            .map_err(|e| Status::invalid_argument(format!("not a statement handle of Fletch: {e}")))
    }
}

/// IOx's JSON ticket, which InfluxDB 3 clients send to `DoGet`.
#[derive(Debug, Deserialize)]
struct IoxTicket {
    database: String,
    sql_query: String,
    #[serde(default)]
    query_type: Option<String>,
}

/// The database a call names in its headers.
fn database_header(metadata: &MetadataMap) -> Option<String> {
    DATABASE_HEADERS.iter().find_map(|h| {
        metadata
            .get(*h)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    })
}

/// A statement's error as the gRPC status a client sees.
fn status_of(e: StatementError) -> Status {
    match e {
        StatementError::DatabaseNotFound(_) => Status::not_found(e.to_string()),
        StatementError::Invalid(m) => Status::invalid_argument(m),
        StatementError::Unsupported(m) => Status::unimplemented(m),
        StatementError::Failed(m) => Status::internal(m),
        StatementError::Forbidden(m) => Status::permission_denied(m),
    }
}

/// `sql` with JDBC/ADBC-style `?` placeholders numbered as DataFusion's `$1`, `$2`, ...
/// (outside quoted strings and identifiers).
fn numbered_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut quote: Option<char> = None;
    let mut n = 0;
    for c in sql.chars() {
        match (quote, c) {
            (None, '\'' | '"') => {
                quote = Some(c);
                out.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                out.push(c);
            }
            (None, '?') => {
                n += 1;
                out.push_str(&format!("${n}"));
            }
            _ => out.push(c),
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Result<Vec<u8>, Status> {
    (0..s.len())
        .step_by(2)
        .map(|i| {
            s.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
                .ok_or_else(|| Status::invalid_argument("malformed parameters in a handle"))
        })
        .collect()
}

/// Plans `GetFlightInfo` made, kept for the `DoGet` that follows (a client asks for a ticket
/// and reads it at once), so that a statement is parsed and planned once. Logical plans only:
/// the scans are planned, and their files pinned, when `DoGet` runs the statement. Bounded in
/// count and age; a ticket whose plan is gone (another node, a second read, a slow client) is
/// planned again.
#[derive(Default)]
struct Planned {
    kept: std::sync::Mutex<std::collections::VecDeque<Kept>>,
}

/// A kept plan: its key (random, so a ticket taken to another node finds nothing there), when
/// it was made, the statement it is the plan of (checked again on taking), and the plan.
struct Kept {
    key: u64,
    at: std::time::Instant,
    statement: (Option<String>, String),
    plan: (SessionContext, DataFrame),
}

impl Planned {
    const MAX: usize = 256;
    const AGE: std::time::Duration = std::time::Duration::from_secs(60);

    fn keep(&self, st: &Statement, ctx: SessionContext, df: DataFrame) -> u64 {
        let key = rand::random::<u64>();
        let now = std::time::Instant::now();
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        while kept
            .front()
            .is_some_and(|k| kept.len() >= Self::MAX || now.duration_since(k.at) > Self::AGE)
        {
            kept.pop_front();
        }
        kept.push_back(Kept {
            key,
            at: now,
            statement: (st.database.clone(), st.sql.clone()),
            plan: (ctx, df),
        });
        key
    }

    /// The plan kept for `st`, if it is still here.
    fn take(&self, st: &Statement) -> Option<(SessionContext, DataFrame)> {
        let key = st.planned?;
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let i = kept.iter().position(|k| k.key == key)?;
        let k = kept.remove(i)?;
        let same = k.statement.0 == st.database && k.statement.1 == st.sql && st.params.is_none();
        (same && k.at.elapsed() <= Self::AGE).then_some(k.plan)
    }
}

/// The Flight SQL service of one node.
#[derive(Clone)]
pub struct FlightSql {
    executor: Executor,
    planned: Arc<Planned>,
    auth: Arc<Auth>,
}

impl std::fmt::Debug for FlightSql {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlightSql").finish_non_exhaustive()
    }
}

impl FlightSql {
    pub fn new(executor: Executor, auth: Arc<Auth>) -> Self {
        Self {
            executor,
            planned: Arc::default(),
            auth,
        }
    }

    /// Who makes this call: what [`PublicFlight`] authenticated (nobody, when the call did
    /// not pass through it: then auth, if on, lets it read nothing).
    fn access<T>(&self, request: &Request<T>) -> Access {
        Access {
            auth: self.auth.clone(),
            caller: request
                .extensions()
                .get::<CallerOf>()
                .and_then(|c| c.0.clone()),
        }
    }

    /// A session for `database` (or every database, when the query names its own).
    async fn session(
        &self,
        access: &Access,
        database: Option<&str>,
        sql: &str,
    ) -> Result<SessionContext, Status> {
        statement::session(&self.executor, access, database, sql)
            .await
            .map_err(status_of)
    }

    /// The parameters bound to `st`.
    fn params(st: &Statement) -> Result<Params, Status> {
        Ok(match &st.params {
            Some(p) => Params::Positional(params_of(&unhex(p)?)?),
            None => Params::None,
        })
    }

    /// `st` planned: its session (keep it while the answer is read) and its frame.
    async fn plan(
        &self,
        access: &Access,
        st: &Statement,
    ) -> Result<(SessionContext, DataFrame), Status> {
        let sql = numbered_placeholders(&st.sql);
        statement::plan_sql(
            &self.executor,
            access,
            st.database.as_deref(),
            &sql,
            Self::params(st)?,
        )
        .await
        .map_err(status_of)
    }

    /// The answer to `st`, as Flight data.
    async fn run(&self, access: &Access, st: &Statement) -> Result<DataStream, Status> {
        if let Some((ctx, df)) = self.planned.take(st) {
            // Planned (and checked) for GetFlightInfo's caller: checked again for this one.
            if let Some(db) = &st.database {
                self.auth
                    .authorize_read(&access.caller, db, &st.sql)
                    .map_err(|e| Status::permission_denied(e.to_string()))?;
            }
            let answer =
                statement::execute(&self.executor, ctx, df, &st.sql, st.database.as_deref())
                    .await
                    .map_err(status_of)?;
            return Ok(Self::flight_data(answer));
        }
        let sql = numbered_placeholders(&st.sql);
        let answer = statement::run_sql(
            &self.executor,
            access,
            st.database.as_deref(),
            &sql,
            Self::params(st)?,
        )
        .await
        .map_err(status_of)?;
        Ok(Self::flight_data(answer))
    }

    /// An InfluxQL query's answer, as InfluxDB 3 sends it over Flight.
    async fn run_influxql(
        &self,
        access: &Access,
        database: &str,
        q: &str,
    ) -> Result<DataStream, Status> {
        let answer = statement::run_influxql(
            &self.executor,
            access,
            Some(database),
            q,
            &Default::default(),
        )
        .await
        .map_err(status_of)?;
        Ok(Self::flight_data(answer))
    }

    /// `answer` as Flight data; tags stay dictionaries, as the schema says.
    fn flight_data(answer: statement::Answer) -> DataStream {
        let batches = answer
            .batches
            .map_err(|e| arrow_flight::error::FlightError::Tonic(Box::new(status_of(e))));
        let data = FlightDataEncoderBuilder::new()
            .with_dictionary_handling(arrow_flight::encode::DictionaryHandling::Resend)
            .with_schema(answer.schema)
            .build(batches)
            .map_err(|e| match e {
                arrow_flight::error::FlightError::Tonic(s) => *s,
                e => Status::internal(e.to_string()),
            });
        Box::pin(data)
    }

    /// `batch` (metadata of the catalog) as Flight data.
    fn batch_stream(batch: RecordBatch) -> DataStream {
        let schema = batch.schema();
        let data = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(futures::stream::once(async move { Ok(batch) }))
            .map_err(|e| Status::internal(e.to_string()));
        Box::pin(data)
    }

    /// A `FlightInfo` whose one endpoint's ticket is `ticket`, for data of `schema`.
    fn info(
        schema: &Schema,
        ticket: Bytes,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        let info = FlightInfo::new()
            .try_with_schema(schema)
            .map_err(|e| Status::internal(e.to_string()))?
            .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket)))
            .with_descriptor(descriptor);
        Ok(Response::new(info))
    }

    /// The databases the caller may read, in creation order.
    fn databases(&self, access: &Access) -> Vec<String> {
        let readable = self.auth.readable_databases(&access.caller);
        self.executor
            .meta_service()
            .catalog()
            .databases_in_order()
            .into_iter()
            .map(|d| d.name.clone())
            .filter(|d| readable.as_ref().is_none_or(|r| r.contains(d)))
            .collect()
    }

    /// Every database's schemas and tables (with their IOx schemas when `schemas`).
    async fn tables(
        &self,
        access: &Access,
        catalog: Option<&str>,
    ) -> Result<Vec<(String, String, String, SchemaRef)>, Status> {
        let mut out = Vec::new();
        for db in self.databases(access) {
            if catalog.is_some_and(|c| c != db) {
                continue;
            }
            let ctx = self.session(access, Some(&db), "").await?;
            let Some(cat) = ctx.catalog(&db) else {
                continue;
            };
            for schema_name in cat.schema_names() {
                if schema_name == "information_schema" {
                    continue;
                }
                let Some(schema) = cat.schema(&schema_name) else {
                    continue;
                };
                for table in schema.table_names() {
                    let t = schema
                        .table(&table)
                        .await
                        .map_err(|e| status_of(e.into()))?;
                    if let Some(t) = t {
                        out.push((db.clone(), schema_name.clone(), table, t.schema()));
                    }
                }
            }
        }
        Ok(out)
    }
}

/// A row of parameters (Arrow IPC stream) as scalar values.
fn params_of(ipc: &[u8]) -> Result<Vec<ScalarValue>, Status> {
    let reader =
        datafusion::arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(ipc), None)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| Status::invalid_argument(e.to_string()))?;
        if batch.num_rows() == 0 {
            continue;
        }
        for c in batch.columns() {
            out.push(
                ScalarValue::try_from_array(c, 0)
                    .map_err(|e| Status::invalid_argument(e.to_string()))?,
            );
        }
        break;
    }
    Ok(out)
}

fn ipc_of(batches: &[RecordBatch]) -> Result<Vec<u8>, Status> {
    let Some(first) = batches.first() else {
        return Ok(Vec::new());
    };
    let mut w = datafusion::arrow::ipc::writer::StreamWriter::try_new(Vec::new(), &first.schema())
        .map_err(|e| Status::internal(e.to_string()))?;
    for b in batches {
        w.write(b).map_err(|e| Status::internal(e.to_string()))?;
    }
    w.finish().map_err(|e| Status::internal(e.to_string()))?;
    w.into_inner().map_err(|e| Status::internal(e.to_string()))
}

fn schema_bytes(schema: &Schema) -> Result<Bytes, Status> {
    let message: arrow_flight::IpcMessage = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e: datafusion::arrow::error::ArrowError| Status::internal(e.to_string()))?;
    Ok(message.0)
}

#[cfg(test)]
mod tests {
    use super::{Planned, Statement};

    #[tokio::test]
    async fn a_kept_plan_is_taken_once_and_only_by_its_statement() {
        let planned = Planned::default();
        let st = |sql: &str| Statement {
            database: Some("db".into()),
            sql: sql.into(),
            params: None,
            planned: None,
        };
        let ctx = datafusion::prelude::SessionContext::new();
        let df = ctx.sql("SELECT 1").await.unwrap();
        let mut one = st("SELECT 1");
        one.planned = Some(planned.keep(&one, ctx.clone(), df.clone()));
        // Another statement carrying the key (a forged or mixed-up ticket) gets nothing.
        let mut other = st("SELECT 2");
        other.planned = one.planned;
        assert!(planned.take(&other).is_none());
        let mut again = st("SELECT 1");
        again.planned = Some(planned.keep(&again, ctx.clone(), df.clone()));
        assert!(planned.take(&again).is_some());
        assert!(planned.take(&again).is_none(), "a plan is taken once");
        assert!(planned.take(&st("SELECT 1")).is_none(), "no key, no plan");
        // Bounded in count.
        for _ in 0..Planned::MAX + 10 {
            let mut s = st("SELECT 1");
            s.planned = Some(planned.keep(&s, ctx.clone(), df.clone()));
        }
        assert!(planned.kept.lock().unwrap().len() <= Planned::MAX);
    }

    #[test]
    fn question_marks_become_numbered_placeholders_outside_quotes() {
        assert_eq!(
            super::numbered_placeholders("SELECT '?', \"a?\" FROM t WHERE x > ? AND y = ?"),
            "SELECT '?', \"a?\" FROM t WHERE x > $1 AND y = $2"
        );
    }
}

#[tonic::async_trait]
impl FlightSqlService for FlightSql {
    type FlightService = FlightSql;

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let mut st = Statement {
            database: database_header(request.metadata()),
            sql: query.query,
            params: None,
            planned: None,
        };
        let (ctx, df) = self.plan(&self.access(&request), &st).await?;
        let schema = df.schema().as_arrow().clone();
        st.planned = Some(self.planned.keep(&st, ctx, df));
        let ticket = TicketStatementQuery {
            statement_handle: st.encode(),
        };
        Self::info(
            &schema,
            ticket.as_any().encode_to_vec().into(),
            request.into_inner(),
        )
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<DataStream>, Status> {
        let st = Statement::decode(&ticket.statement_handle)?;
        Ok(Response::new(self.run(&self.access(&request), &st).await?))
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let st = Statement::decode(&cmd.prepared_statement_handle)?;
        let (_ctx, df) = self.plan(&self.access(&request), &st).await?;
        Self::info(
            df.schema().as_arrow(),
            cmd.as_any().encode_to_vec().into(),
            request.into_inner(),
        )
    }

    async fn do_get_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<DataStream>, Status> {
        let st = Statement::decode(&cmd.prepared_statement_handle)?;
        Ok(Response::new(self.run(&self.access(&request), &st).await?))
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let st = Statement {
            database: database_header(request.metadata()),
            sql: query.query,
            params: None,
            planned: None,
        };
        let ctx = self
            .session(&self.access(&request), st.database.as_deref(), &st.sql)
            .await?;
        let plan = statement::logical_plan(&ctx, &numbered_placeholders(&st.sql))
            .await
            .map_err(status_of)?;
        let types = plan
            .get_parameter_types()
            .map_err(|e| status_of(e.into()))?;
        let mut names: Vec<&String> = types.keys().collect();
        names.sort_by_key(|n| {
            n.trim_start_matches('$')
                .parse::<usize>()
                .unwrap_or(usize::MAX)
        });
        let parameters = Schema::new(
            names
                .iter()
                .map(|n| {
                    let ty = types[*n]
                        .clone()
                        .unwrap_or(datafusion::arrow::datatypes::DataType::Null);
                    datafusion::arrow::datatypes::Field::new(n.as_str(), ty, true)
                })
                .collect::<Vec<_>>(),
        );
        // The answer's columns, when the plan knows them without parameters.
        let dataset = Schema::new(plan.schema().as_arrow().fields().clone());
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: st.encode(),
            dataset_schema: schema_bytes(&dataset)?,
            parameter_schema: schema_bytes(&parameters)?,
        })
    }

    async fn do_put_prepared_statement_query(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let mut st = Statement::decode(&cmd.prepared_statement_handle)?;
        let data = request
            .into_inner()
            .map_err(|s| arrow_flight::error::FlightError::Tonic(Box::new(s)));
        let batches: Vec<RecordBatch> =
            arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(data)
                .try_collect()
                .await
                .map_err(|e| Status::invalid_argument(e.to_string()))?;
        st.params = Some(hex(&ipc_of(&batches)?));
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(st.encode()),
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        _query: ActionClosePreparedStatementRequest,
        _request: Request<Action>,
    ) -> Result<(), Status> {
        // Handles are the statements themselves: nothing is held for them.
        Ok(())
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        Self::info(
            &schema,
            query.as_any().encode_to_vec().into(),
            request.into_inner(),
        )
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<DataStream>, Status> {
        let mut b = query.into_builder();
        for db in self.databases(&self.access(&request)) {
            b.append(db);
        }
        let batch = b.build().map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(Self::batch_stream(batch)))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        Self::info(
            &schema,
            query.as_any().encode_to_vec().into(),
            request.into_inner(),
        )
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<DataStream>, Status> {
        let catalog = query.catalog.clone();
        let mut b = query.into_builder();
        let access = self.access(&request);
        for db in self.databases(&access) {
            if catalog.as_deref().is_some_and(|c| c != db) {
                continue;
            }
            let ctx = self.session(&access, Some(&db), "").await?;
            if let Some(cat) = ctx.catalog(&db) {
                for s in cat.schema_names() {
                    b.append(&db, s);
                }
            }
        }
        let batch = b.build().map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(Self::batch_stream(batch)))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        Self::info(
            &schema,
            query.as_any().encode_to_vec().into(),
            request.into_inner(),
        )
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<DataStream>, Status> {
        let tables = self
            .tables(&self.access(&request), query.catalog.as_deref())
            .await?;
        let mut b = query.into_builder();
        for (db, schema, table, columns) in tables {
            b.append(&db, &schema, &table, "BASE TABLE", &columns)
                .map_err(|e| Status::internal(e.to_string()))?;
        }
        let batch = b.build().map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(Self::batch_stream(batch)))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Self::info(
            &table_types_schema(),
            query.as_any().encode_to_vec().into(),
            request.into_inner(),
        )
    }

    async fn do_get_table_types(
        &self,
        _query: CommandGetTableTypes,
        _request: Request<Ticket>,
    ) -> Result<Response<DataStream>, Status> {
        let batch = RecordBatch::try_new(
            Arc::new(table_types_schema()),
            vec![Arc::new(datafusion::arrow::array::StringArray::from(vec![
                "BASE TABLE",
                "VIEW",
            ]))],
        )
        .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(Self::batch_stream(batch)))
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder(sql_info()?).schema();
        Self::info(
            &schema,
            query.as_any().encode_to_vec().into(),
            request.into_inner(),
        )
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<DataStream>, Status> {
        let batch = query
            .into_builder(sql_info()?)
            .build()
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(Self::batch_stream(batch)))
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder(xdbc_types()?).schema();
        Self::info(
            &schema,
            query.as_any().encode_to_vec().into(),
            request.into_inner(),
        )
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<DataStream>, Status> {
        let batch = query
            .into_builder(xdbc_types()?)
            .build()
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(Self::batch_stream(batch)))
    }

    // What Fletch's Flight SQL does not do, said plainly (arrow-flight's defaults name only
    // the method).
    async fn get_flight_info_substrait_plan(
        &self,
        _query: CommandStatementSubstraitPlan,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Err(Status::unimplemented(NO_SUBSTRAIT))
    }

    async fn do_put_substrait_plan(
        &self,
        _query: CommandStatementSubstraitPlan,
        _request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        Err(Status::unimplemented(NO_SUBSTRAIT))
    }

    async fn do_put_statement_update(
        &self,
        _ticket: CommandStatementUpdate,
        _request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        Err(Status::unimplemented(READ_ONLY))
    }

    async fn do_put_statement_ingest(
        &self,
        _ticket: CommandStatementIngest,
        _request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        Err(Status::unimplemented(READ_ONLY))
    }

    async fn do_put_prepared_statement_update(
        &self,
        _query: CommandPreparedStatementUpdate,
        _request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        Err(Status::unimplemented(READ_ONLY))
    }

    async fn do_action_begin_transaction(
        &self,
        _query: ActionBeginTransactionRequest,
        _request: Request<Action>,
    ) -> Result<ActionBeginTransactionResult, Status> {
        Err(Status::unimplemented(NO_TRANSACTIONS))
    }

    async fn do_action_end_transaction(
        &self,
        _query: ActionEndTransactionRequest,
        _request: Request<Action>,
    ) -> Result<(), Status> {
        Err(Status::unimplemented(NO_TRANSACTIONS))
    }

    async fn do_action_begin_savepoint(
        &self,
        _query: ActionBeginSavepointRequest,
        _request: Request<Action>,
    ) -> Result<ActionBeginSavepointResult, Status> {
        Err(Status::unimplemented(NO_TRANSACTIONS))
    }

    async fn do_action_end_savepoint(
        &self,
        _query: ActionEndSavepointRequest,
        _request: Request<Action>,
    ) -> Result<(), Status> {
        Err(Status::unimplemented(NO_TRANSACTIONS))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

const READ_ONLY: &str = "Fletch's Flight SQL only reads: write points with line protocol \
     (/write, /api/v2/write or /api/v3/write_lp on the HTTP port)";
const NO_TRANSACTIONS: &str =
    "Fletch has no transactions: each write is durable when it is acknowledged";
const NO_SUBSTRAIT: &str = "Fletch's Flight SQL takes SQL text, not Substrait plans";

/// What `GetXdbcTypeInfo` answers: the SQL types Fletch's tables have.
fn xdbc_types() -> Result<&'static XdbcTypeInfoData, Status> {
    use arrow_flight::sql::{Nullable, Searchable, XdbcDataType, XdbcDatetimeSubcode};
    static TYPES: std::sync::OnceLock<Option<XdbcTypeInfoData>> = std::sync::OnceLock::new();
    let ty =
        |name: &str, data_type: XdbcDataType, size: i32, unsigned: Option<bool>| XdbcTypeInfo {
            type_name: name.to_string(),
            data_type,
            column_size: Some(size),
            literal_prefix: None,
            literal_suffix: None,
            create_params: None,
            nullable: Nullable::NullabilityNullable,
            case_sensitive: false,
            searchable: Searchable::Full,
            unsigned_attribute: unsigned,
            fixed_prec_scale: false,
            auto_increment: Some(false),
            local_type_name: Some(name.to_string()),
            minimum_scale: None,
            maximum_scale: None,
            sql_data_type: data_type,
            datetime_subcode: None,
            num_prec_radix: unsigned.map(|_| 10),
            interval_precision: None,
        };
    TYPES
        .get_or_init(|| {
            let mut b = XdbcTypeInfoDataBuilder::new();
            b.append(ty("BOOLEAN", XdbcDataType::XdbcBit, 1, None));
            b.append(ty("BIGINT", XdbcDataType::XdbcBigint, 19, Some(false)));
            b.append(ty(
                "BIGINT UNSIGNED",
                XdbcDataType::XdbcBigint,
                20,
                Some(true),
            ));
            b.append(ty("DOUBLE", XdbcDataType::XdbcDouble, 15, Some(false)));
            b.append(XdbcTypeInfo {
                literal_prefix: Some("'".into()),
                literal_suffix: Some("'".into()),
                case_sensitive: true,
                ..ty("VARCHAR", XdbcDataType::XdbcVarchar, i32::MAX, None)
            });
            b.append(XdbcTypeInfo {
                literal_prefix: Some("TIMESTAMP '".into()),
                literal_suffix: Some("'".into()),
                sql_data_type: XdbcDataType::XdbcDatetime,
                datetime_subcode: Some(XdbcDatetimeSubcode::XdbcSubcodeTimestamp),
                ..ty("TIMESTAMP", XdbcDataType::XdbcTimestamp, 29, None)
            });
            b.build().ok()
        })
        .as_ref()
        .ok_or_else(|| Status::internal("the server's SQL types could not be listed"))
}

/// What `GetSqlInfo` answers: the server, its version and its SQL.
fn sql_info() -> Result<&'static SqlInfoData, Status> {
    static INFO: std::sync::OnceLock<Option<SqlInfoData>> = std::sync::OnceLock::new();
    INFO.get_or_init(|| {
        let mut b = SqlInfoDataBuilder::new();
        b.append(SqlInfo::FlightSqlServerName, "Fletch");
        b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
        b.append(SqlInfo::FlightSqlServerArrowVersion, "59");
        b.append(SqlInfo::FlightSqlServerReadOnly, true);
        b.append(SqlInfo::FlightSqlServerSql, true);
        b.append(SqlInfo::FlightSqlServerSubstrait, false);
        b.append(SqlInfo::FlightSqlServerTransaction, 0i32);
        b.append(SqlInfo::FlightSqlServerCancel, false);
        b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
        b.build().ok()
    })
    .as_ref()
    .ok_or_else(|| Status::internal("the server's SQL info could not be built"))
}

fn table_types_schema() -> Schema {
    Schema::new(vec![datafusion::arrow::datatypes::Field::new(
        "table_type",
        datafusion::arrow::datatypes::DataType::Utf8,
        false,
    )])
}

/// The caller [`PublicFlight`] authenticated, handed to the Flight SQL handlers in the
/// request's extensions.
#[derive(Debug, Clone)]
struct CallerOf(crate::auth::Caller);

/// An authentication failure as the gRPC status a client sees.
fn auth_status(e: AuthError) -> Status {
    match e {
        AuthError::Unauthenticated(m) => Status::unauthenticated(m),
        AuthError::Forbidden(m) => Status::permission_denied(m),
        e @ AuthError::TooManyFailures(_) => Status::resource_exhausted(e.to_string()),
    }
}

/// The peer's address of a gRPC call: tonic's own listener records it, axum's (the HTTP
/// API's port) its connection info.
fn peer_ip<T>(request: &Request<T>) -> Option<std::net::IpAddr> {
    request
        .remote_addr()
        .map(|a| a.ip())
        .or_else(|| crate::http::client_ip(request.extensions()))
}

/// The Flight service on the HTTP API's port: IOx's JSON tickets first, then Flight SQL.
#[derive(Debug, Clone)]
pub struct PublicFlight {
    sql: FlightSql,
    auth: Arc<Auth>,
}

impl PublicFlight {
    pub fn new(executor: Executor, auth: Arc<Auth>) -> Self {
        Self {
            sql: FlightSql::new(executor, auth.clone()),
            auth,
        }
    }

    /// Authenticates a call (a bearer token from a handshake or a JWT, or Basic credentials, in
    /// the `authorization` header) and hands the caller on in the request's extensions.
    async fn admit<T>(&self, mut request: Request<T>) -> Result<Request<T>, Status> {
        if self.auth.checks_credentials() {
            let creds = match request
                .metadata()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
            {
                Some(h) => crate::auth::credentials(None, None, Some(h)),
                None => Err(AuthError::Unauthenticated(
                    "unable to parse authentication credentials".into(),
                )),
            };
            let caller = self
                .auth
                .caller(creds, peer_ip(&request))
                .await
                .map_err(auth_status)?;
            request.extensions_mut().insert(CallerOf(caller));
        }
        Ok(request)
    }

    pub fn server(self) -> arrow_flight::flight_service_server::FlightServiceServer<Self> {
        arrow_flight::flight_service_server::FlightServiceServer::new(self)
            .max_decoding_message_size(catalog::rpc::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(catalog::rpc::MAX_MESSAGE_BYTES)
    }
}

#[tonic::async_trait]
impl FlightService for PublicFlight {
    type HandshakeStream = BoxStream<'static, Result<HandshakeResponse, Status>>;
    type ListFlightsStream = BoxStream<'static, Result<FlightInfo, Status>>;
    type DoGetStream = DataStream;
    type DoPutStream = BoxStream<'static, Result<PutResult, Status>>;
    type DoActionStream = BoxStream<'static, Result<arrow_flight::Result, Status>>;
    type ListActionsStream = BoxStream<'static, Result<ActionType, Status>>;
    type DoExchangeStream = BoxStream<'static, Result<FlightData, Status>>;

    async fn handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        // Basic credentials (the `authorization` header, as arrow-flight's and ADBC's clients
        // send them) get a bearer token for the calls that follow. With auth on they must be a
        // user's; with it off any well-formed ones pass (1.x ignores credentials then), and
        // malformed ones do not.
        let header = request
            .metadata()
            .get("authorization")
            .map(|v| v.to_str().unwrap_or("").to_string());
        let creds = match header.as_deref() {
            Some(h) => Some(crate::auth::basic(h).ok_or_else(|| {
                Status::unauthenticated(
                    "a handshake takes Basic credentials: base64 of user:password",
                )
            })?),
            None => None,
        };
        let user = match (&creds, self.auth.checks_credentials()) {
            (Some(c), true) => {
                let caller = self
                    .auth
                    .caller(Ok(c.clone()), peer_ip(&request))
                    .await
                    .map_err(auth_status)?;
                caller.map(|u| u.name.clone())
            }
            (None, true) => {
                return Err(Status::unauthenticated(
                    "unable to parse authentication credentials",
                ));
            }
            (Some(crate::auth::Credentials::User { name, .. }), false) => Some(name.clone()),
            _ => None,
        };
        let token = match &user {
            Some(name) => self.auth.issue_token(name),
            None => format!("{:032x}", rand::random::<u128>()),
        };
        let answer = HandshakeResponse {
            protocol_version: 0,
            payload: Bytes::from(token.clone()),
        };
        let mut response = Response::new(futures::stream::once(async move { Ok(answer) }).boxed());
        if user.is_some() {
            let bearer = format!("Bearer {token}")
                .parse()
                .map_err(|_| Status::internal("a token that is not a header value"))?;
            response.metadata_mut().insert("authorization", bearer);
        }
        Ok(response)
    }

    async fn list_flights(
        &self,
        request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        let request = self.admit(request).await?;
        let r = FlightService::list_flights(&self.sql, request).await?;
        Ok(Response::new(r.into_inner().boxed()))
    }

    async fn get_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let request = self.admit(request).await?;
        FlightService::get_flight_info(&self.sql, request).await
    }

    async fn poll_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        let request = self.admit(request).await?;
        FlightService::poll_flight_info(&self.sql, request).await
    }

    async fn get_schema(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        let request = self.admit(request).await?;
        FlightService::get_schema(&self.sql, request).await
    }

    async fn do_get(&self, request: Request<Ticket>) -> Result<Response<DataStream>, Status> {
        let request = self.admit(request).await?;
        let access = self.sql.access(&request);
        let ticket = &request.get_ref().ticket;
        if ticket.first() == Some(&b'{') {
            let t: IoxTicket = serde_json::from_slice(ticket).map_err(|e| {
                Status::invalid_argument(format!("not a ticket of InfluxDB 3: {e}"))
            })?;
            return match t.query_type.as_deref().unwrap_or("sql") {
                "sql" => {
                    let st = Statement {
                        database: Some(t.database),
                        sql: t.sql_query,
                        params: None,
                        planned: None,
                    };
                    Ok(Response::new(self.sql.run(&access, &st).await?))
                }
                "influxql" => Ok(Response::new(
                    self.sql
                        .run_influxql(&access, &t.database, &t.sql_query)
                        .await?,
                )),
                other => Err(Status::invalid_argument(format!(
                    "unknown query_type {other}: sql or influxql"
                ))),
            };
        }
        if Any::decode(ticket.as_ref()).is_err() {
            return Err(Status::invalid_argument(
                "the ticket is neither a Flight SQL command nor an InfluxDB 3 JSON ticket",
            ));
        }
        FlightService::do_get(&self.sql, request).await
    }

    async fn do_put(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        let request = self.admit(request).await?;
        let r = FlightService::do_put(&self.sql, request).await?;
        Ok(Response::new(r.into_inner().boxed()))
    }

    async fn do_action(
        &self,
        request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        let request = self.admit(request).await?;
        let r = FlightService::do_action(&self.sql, request).await?;
        Ok(Response::new(r.into_inner().boxed()))
    }

    async fn list_actions(
        &self,
        request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        let r = FlightService::list_actions(&self.sql, request).await?;
        Ok(Response::new(r.into_inner().boxed()))
    }

    async fn do_exchange(
        &self,
        _request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        Err(Status::unimplemented(
            "DoExchange is not served: use Flight SQL (GetFlightInfo and DoGet)",
        ))
    }
}

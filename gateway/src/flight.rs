//! The internal Arrow Flight service on `[meta] bind-address` (port 8088): Raft messages and
//! the meta service's calls between nodes, as `DoAction` (see `catalog::rpc`), and points sent
//! to this node by another node's write coordinator (`data.write`, see `coordinator::peer`),
//! and other nodes' reads of this node's shards (`DoGet` of a scan ticket, `data.schema`,
//! `data.measurements`; see `crate::remote_shards`). This is the one place their errors
//! become gRPC statuses. The other Flight methods answer `Unimplemented`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaResult, Ticket,
};
use catalog::rpc::{MAX_MESSAGE_BYTES, action};
use catalog::{ActionError, MetaService};
use futures::stream::{self, BoxStream};
use futures::{StreamExt, TryStreamExt};

use crate::remote_shards::{Ask, ShardsRequest, decode_ticket, encode_stream};
use tonic::{Request, Response, Status, Streaming};

/// What a node's data role serves to other nodes, set once its ingester is open.
#[derive(Debug, Clone)]
pub struct DataRole {
    pub ingester: Option<Arc<ingester::Ingester>>,
    /// Applies the deletes recorded in the catalog to this node's shards.
    pub deletes: Option<Arc<coordinator::DeleteApplier>>,
    /// Answers other nodes' reads of this node's shards.
    pub executor: querier::Executor,
    /// How long a `data.write` waits for this node's catalog to catch up with the sender's.
    pub catalog_wait: Duration,
    /// Answers `fletchd ctl`.
    pub ctl: crate::ctl::Ctl,
}

/// The Flight service of one node.
#[derive(Debug, Clone)]
pub struct InternalFlight {
    meta: Arc<MetaService>,
    data: Arc<OnceLock<DataRole>>,
}

impl InternalFlight {
    /// The service; data calls answer `Unavailable` until `data` is set. With a credential
    /// (`[meta] internal-shared-secret`) every call without it is refused `UNAUTHENTICATED`.
    pub fn server(
        meta: Arc<MetaService>,
        data: Arc<OnceLock<DataRole>>,
        credential: Option<catalog::rpc::InternalCredential>,
    ) -> tonic::service::interceptor::InterceptedService<
        FlightServiceServer<Self>,
        catalog::rpc::CheckCredential,
    > {
        let server = FlightServiceServer::new(Self { meta, data })
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        tonic::service::interceptor::InterceptedService::new(
            server,
            catalog::rpc::CheckCredential(credential),
        )
    }

    async fn data_write(&self, body: &[u8]) -> Result<Vec<u8>, Status> {
        use coordinator::peer::ServeError;
        let Some(role) = self.data.get() else {
            return Err(Status::unavailable("this node is starting"));
        };
        let outcome = coordinator::peer::serve_write(
            &self.meta,
            role.ingester.as_ref(),
            body,
            role.catalog_wait,
        )
        .await
        .map_err(|e| match &e {
            ServeError::Short | ServeError::Malformed(_) => Status::invalid_argument(e.to_string()),
            ServeError::NoData | ServeError::NotOwner { .. } => {
                Status::failed_precondition(e.to_string())
            }
            ServeError::Behind(_) => Status::unavailable(e.to_string()),
            ServeError::Write(ingester::WriteError::BufferFull { .. }) => {
                Status::resource_exhausted(e.to_string())
            }
            ServeError::Write(ingester::WriteError::ShuttingDown) => {
                Status::unavailable(e.to_string())
            }
            ServeError::Write(_) => Status::internal(e.to_string()),
        })?;
        serde_json::to_vec(&outcome).map_err(|e| Status::internal(e.to_string()))
    }

    fn role(&self) -> Result<&DataRole, Status> {
        self.data
            .get()
            .ok_or_else(|| Status::unavailable("this node is starting"))
    }

    /// `data.measurements`, `data.schema` and `data.digest`: what this node's shards hold.
    async fn data_catalog(&self, kind: &str, body: &[u8]) -> Result<Vec<u8>, Status> {
        use querier::shard_source::ShardSource;
        let role = self.role()?;
        let req: ShardsRequest =
            serde_json::from_slice(body).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let ex = &role.executor;
        let json = match kind {
            action::DATA_DIGEST => {
                let shard = req.shards.first().copied().unwrap_or_default();
                let d = role
                    .ctl
                    .nodes
                    .local_digest(&req.database, shard)
                    .await
                    .map_err(exec_status)?;
                serde_json::to_vec(&d)
            }
            action::DATA_MEASUREMENTS => serde_json::to_vec(
                &ex.measurements(&req.database, &req.shards)
                    .await
                    .map_err(exec_status)?,
            ),
            _ => serde_json::to_vec(
                &ex.schema(&req.database, &req.shards, &req.measurement)
                    .await
                    .map_err(exec_status)?,
            ),
        };
        json.map_err(|e| Status::internal(e.to_string()))
    }
}

/// A read of this node's shards that failed, as a status.
fn exec_status(e: querier::ExecError) -> Status {
    use querier::ExecError as E;
    match &e {
        E::ShardNotLocal { .. } => Status::failed_precondition(e.to_string()),
        E::DatabaseNotFound(_) => Status::not_found(e.to_string()),
        _ => Status::internal(e.to_string()),
    }
}

fn status(e: ActionError) -> Status {
    match e {
        ActionError::Unknown(_) => Status::unimplemented(e.to_string()),
        ActionError::Malformed { .. } => Status::invalid_argument(e.to_string()),
        ActionError::Encode { .. } => Status::internal(e.to_string()),
    }
}

fn not_served(what: &str) -> Status {
    Status::unimplemented(format!(
        "{what} is not served on the internal port; this node answers DoAction and ListActions"
    ))
}

const ACTIONS: &[(&str, &str)] = &[
    (action::RAFT_APPEND, "Raft AppendEntries"),
    (action::RAFT_VOTE, "Raft RequestVote"),
    (action::RAFT_SNAPSHOT, "Raft InstallSnapshot"),
    (
        action::META_JOIN,
        "register a node and assign its ids (leader)",
    ),
    (
        action::META_ADD_MEMBER,
        "add a node to the Raft group (leader)",
    ),
    (action::META_EXECUTE, "run a catalog command (leader)"),
    (
        action::META_DROP_SERVER,
        "drop a meta or data node (leader)",
    ),
    (action::META_STATUS, "the leader's view of the Raft group"),
    (action::PING, "liveness; answers the node's Raft id"),
    (
        action::DATA_WRITE,
        "store points of shards this node owns (catalog index, then a WAL entry)",
    ),
    (
        action::DATA_MEASUREMENTS,
        "the measurements in some of this node's shards",
    ),
    (
        action::DATA_SCHEMA,
        "a measurement's schema in some of this node's shards",
    ),
    (
        action::DATA_DIGEST,
        "this node's digest of its copy of a shard (anti-entropy)",
    ),
    (action::QUERY_LIST, "the queries running on this node"),
    (action::QUERY_KILL, "stop a query running on this node"),
    (crate::ctl::action::SHOW, "fletchd ctl show"),
    (crate::ctl::action::COPY_SHARD, "fletchd ctl copy-shard"),
    (crate::ctl::action::REMOVE_SHARD, "fletchd ctl remove-shard"),
    (
        crate::ctl::action::TRUNCATE_SHARDS,
        "fletchd ctl truncate-shards",
    ),
    (crate::ctl::action::ENTROPY_SHOW, "fletchd ctl entropy show"),
    (
        crate::ctl::action::ENTROPY_REPAIR,
        "fletchd ctl entropy repair",
    ),
];

#[tonic::async_trait]
impl FlightService for InternalFlight {
    type HandshakeStream = BoxStream<'static, Result<HandshakeResponse, Status>>;
    type ListFlightsStream = BoxStream<'static, Result<FlightInfo, Status>>;
    type DoGetStream = BoxStream<'static, Result<FlightData, Status>>;
    type DoPutStream = BoxStream<'static, Result<PutResult, Status>>;
    type DoExchangeStream = BoxStream<'static, Result<FlightData, Status>>;
    type DoActionStream = BoxStream<'static, Result<arrow_flight::Result, Status>>;
    type ListActionsStream = BoxStream<'static, Result<ActionType, Status>>;

    async fn do_action(
        &self,
        request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        let action = request.into_inner();
        let body = match action.r#type.as_str() {
            action::DATA_WRITE => self.data_write(&action.body).await?,
            kind @ (action::DATA_MEASUREMENTS | action::DATA_SCHEMA | action::DATA_DIGEST) => {
                self.data_catalog(kind, &action.body).await?
            }
            action::QUERY_LIST => {
                let list: Vec<querier::queries::RemoteQuery> = self
                    .role()?
                    .executor
                    .queries()
                    .list()
                    .into_iter()
                    .map(Into::into)
                    .collect();
                serde_json::to_vec(&list).map_err(|e| Status::internal(e.to_string()))?
            }
            action::QUERY_KILL => {
                let id: u64 = serde_json::from_slice(&action.body)
                    .map_err(|e| Status::invalid_argument(e.to_string()))?;
                self.role()?
                    .executor
                    .queries()
                    .kill(id)
                    .map_err(|e| Status::not_found(e.to_string()))?;
                b"null".to_vec()
            }
            kind if kind.starts_with("ctl.") => {
                let answer = self.role()?.ctl.handle(kind, &action.body).await;
                serde_json::to_vec(&answer).map_err(|e| Status::internal(e.to_string()))?
            }
            _ => self
                .meta
                .handle_action(&action.r#type, &action.body)
                .await
                .map_err(status)?,
        };
        let result = arrow_flight::Result { body: body.into() };
        Ok(Response::new(Box::pin(stream::iter([Ok(result)]))))
    }

    async fn list_actions(
        &self,
        _request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        let list = ACTIONS.iter().map(|(t, d)| {
            Ok(ActionType {
                r#type: t.to_string(),
                description: d.to_string(),
            })
        });
        Ok(Response::new(Box::pin(stream::iter(list))))
    }

    async fn handshake(
        &self,
        _request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        Err(not_served("Handshake"))
    }

    async fn list_flights(
        &self,
        _request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        Err(not_served("ListFlights"))
    }

    async fn get_flight_info(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Err(not_served("GetFlightInfo"))
    }

    async fn poll_flight_info(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        Err(not_served("PollFlightInfo"))
    }

    async fn get_schema(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        Err(not_served("GetSchema"))
    }

    /// A scan of this node's shards (`crate::remote_shards`).
    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        use querier::shard_source::ShardSource;
        let role = self.role()?;
        let ticket = request.into_inner().ticket;
        let ask = decode_ticket(&ticket, &role.executor.session().task_ctx())
            .map_err(Status::invalid_argument)?;
        // The sender planned with its catalog: whether this node owns the shards is decided on
        // one at least as new, and the deletes recorded up to it are applied first.
        let index = match &ask {
            Ask::Scan(index, _) => *index,
            Ask::Fragment(received) => received.catalog_index,
        };
        self.meta
            .wait_applied(index, role.catalog_wait)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        if let Some(deletes) = &role.deletes
            && !deletes.wait(index, role.catalog_wait).await
        {
            tracing::warn!(
                index,
                "deletes recorded up to the reader's catalog are not all applied yet; answering anyway"
            );
        }
        let (stream, report) = match ask {
            Ask::Scan(_, scan) => (role.executor.scan(scan).await, None),
            Ask::Fragment(received) => {
                let report = received.fragment.report.clone();
                (
                    role.executor.fragment(received.fragment).await,
                    Some(report),
                )
            }
        };
        let data = encode_stream(stream.map_err(exec_status)?).map_err(|e| match e {
            arrow_flight::error::FlightError::Tonic(s) => *s,
            e => Status::internal(e.to_string()),
        });
        // A fragment's last message: how it ran here (for the reader's EXPLAIN ANALYZE).
        let trailer = stream::once(async move {
            report
                .and_then(|r| r.get())
                .map(|ran| Ok(FlightData::new().with_app_metadata(ran.into_bytes())))
        })
        .filter_map(futures::future::ready)
        .boxed();
        Ok(Response::new(Box::pin(data.chain(trailer))))
    }

    async fn do_put(
        &self,
        _request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        Err(not_served("DoPut"))
    }

    async fn do_exchange(
        &self,
        _request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        Err(not_served("DoExchange"))
    }
}

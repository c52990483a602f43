//! # gateway: the edge of a Fletch node
//!
//! The gateway owns everything a client or an operator touches: the InfluxDB 1.x HTTP API
//! (`/ping`, `/write`, `/query`), the meta HTTP API (`/status`, `/join`), the internal Arrow
//! Flight service on `[meta] bind-address` (Raft and the meta service's calls between nodes,
//! points sent to this node's shards, reads of its shards), the Flight client of other nodes'
//! shards ([`remote_shards`]), Arrow Flight SQL and InfluxDB 3's Flight tickets on the HTTP
//! API's port ([`flight_sql`]), the configuration, and the `fletchd` binary (the `fletch` shell
//! is the `shell` crate). It turns requests into calls on the other crates and their errors
//! into 1.x-shaped HTTP answers, in one place ([`http::ApiError`]).
//!
//! ```text
//!   fletchd (main.rs: flags only) ─▶ cli::main ─▶ config::Config::load (flags > env > TOML > defaults)
//!                                                  ▼
//!   server::run: bind listeners ─▶ MetaService::prepare (-join: register) ─▶ serve flight::InternalFlight
//!                ─▶ MetaService::start (first node / become a member / restart) ─▶ ingester::Ingester::open
//!                                                  ▼
//!   http::router ── /write ─▶ line_protocol::parse_body ─▶ coordinator::PointsWriter (every owner)
//!                               ─▶ 204 / 400 partial write / 404 / 500 timeout, partial write ...
//!                ── /query ─▶ querier::parse_query ─▶ Executor (other nodes' shards: remote_shards)
//!                               ─▶ JSON | CSV | chunked
//!                ── /ping  ─▶ 204 + X-Influxdb-Version
//!                ── gRPC (same port) ─▶ flight_sql::PublicFlight ─▶ querier::sql ─▶ Arrow batches
//!   SIGTERM/SIGINT ─▶ stop accepting ─▶ Ingester::shutdown (persist) ─▶ exit 0
//! ```
//!
//! What it must not touch: storage formats, the WAL, Raft internals, or query planning; it
//! only calls the public APIs of `catalog`, `ingester` and `querier`.

pub mod auth;
pub mod cli;
pub mod cluster_nodes;
pub mod cluster_queries;
pub mod config;
pub mod ctl;
pub mod diagnostics;
pub mod flight;
pub mod flight_sql;
pub mod format;
pub mod http;
pub mod metrics;
pub mod query_v3;
pub mod remote_shards;
pub mod server;
pub mod statement;
pub mod stats;
pub mod tls;
pub mod udp;

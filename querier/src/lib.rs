//! # querier: InfluxQL over the catalog and the shards
//!
//! The querier owns the query language: it parses InfluxQL, runs each statement against the
//! catalog (meta statements, DDL) or the shards' data, and shapes the answers as InfluxDB 1.x
//! does.
//!
//! ```text
//!   q text ──parse_query──▶ [Statement] ──Executor::execute──▶ [StatementResult] ──▶ gateway (JSON/CSV)
//!                               │                 │
//!                               │                 ├─ MetaService: databases, retention policies, DDL
//!                               │                 ├─ Ingester: measurements, tables (files + buffers)
//!                               │                 └─ peers' ShardSources: other nodes' shards
//!                               └─ errors with 1.x's text and position
//! ```
//!
//! Modules: [`select`] plans `SELECT` on DataFusion; [`plan`] (crate `influxql_plan`) holds the
//! plan pieces InfluxQL needs beyond SQL (gap filling, its aggregates, transformations and selectors as DataFusion
//! nodes and functions) and their `datafusion-proto` codec; [`scan`] turns a measurement's shards
//! (Parquet files with predicates pushed down, buffered batches) into one `DataFrame`, holding
//! the snapshots' pins on the files it reads until the statement has run, and keeps each file
//! set's table; `frame` builds the projections and sorts of plain columns directly;
//! [`shard_source`] decides who reads each shard a statement needs (this node's ingester, a
//! peer's [`shard_source::ShardSource`] through a DataFusion table that pushes columns and
//! filters into a scan request, or a clear error naming the owners: no shard is skipped
//! silently), and `shard_scan` answers such scan requests for this node's own shards;
//! [`fragment`] splits aggregates over other nodes' shards into partial aggregates run there
//! (plan fragments) and a final one here; [`sql`] shows a database's measurements as SQL
//! tables (for Flight SQL);
//! [`stats`] answers `SHOW STATS` from the services that register with the executor;
//! [`plan_cache`] keeps physical plans per query shape and binds a new query's values into
//! them; [`rescan`] lets a scan so rebuilt keep the planned scan's properties;
//! [`series_index`] turns a scan's tag and time conditions into the rows of each file to read,
//! from where each series lies in it, and [`dictionary_pages`] keeps those files' dictionary
//! pages in memory; [`last_rows`] keeps each file's rows from a last-value bound for the
//! queries of last values; [`show`] answers the `SHOW` statements; [`ddl`] runs retention policy
//! statements and deletes; [`subscriptions`] manages and lists subscriptions; [`executor`] dispatches statements and keeps the one DataFusion
//! session.
//!
//! What it must not touch: HTTP (the gateway turns results into responses), the write path, or
//! the files of a shard other than through the ingester's snapshots (and the files those
//! snapshots name, read-only).

pub mod continuous;
pub mod ddl;
pub mod dictionary_pages;
pub mod executor;
pub mod fragment;
mod frame;
pub mod last_rows;
pub mod memory;
pub mod memory_rows;
pub mod params;
/// The plan pieces live in their own crate (a data node runs fragments without the planner);
/// re-exported so `querier::plan` keeps working.
pub use influxql_plan as plan;
pub mod plan_cache;
pub mod queries;
pub mod rescan;
/// The language itself lives in its own crate; re-exported so `querier::influxql` keeps working.
pub use influxql;
pub mod result;
pub mod scan;
pub mod select;
pub mod series_index;
mod series_runs;
mod shard_scan;
pub mod shard_source;
pub mod show;
pub mod sql;
pub mod stats;
pub mod subscriptions;
pub mod users;

pub use executor::{ExecError, Executor, QueryContext};
pub use result::{AnswerStream, ChunkShape, Item, Message, Series, StatementResult};

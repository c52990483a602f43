//! Wires the roles of one `fletchd` process together: binds the listeners, opens the meta
//! service and the ingester, serves HTTP, and shuts everything down in order.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::serve::ListenerExt;
use catalog::{MetaOptions, MetaService};
use ingester::{Ingester, IngesterConfig};
use querier::Executor;
use tokio::net::TcpListener;
use tracing::Instrument;

use crate::cluster_nodes::ClusterNodes;
use crate::config::{Config, expand_home, parse_addr};
use crate::flight::{DataRole, InternalFlight};
use crate::http::{ApiState, meta_router, router};
use crate::remote_shards::FlightPeerShards;
use crate::stats::HintedStats;
use coordinator::hinted::{HintedConfig, HintedHandoff};
use std::sync::{Arc, OnceLock};
use tonic::transport::server::TcpIncoming;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr} ({key}): {source}")]
    Bind {
        key: &'static str,
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Address(String),
    #[error("meta service: {0}")]
    Meta(#[from] catalog::MetaError),
    #[error("storage: {0}")]
    Storage(#[from] ingester::StorageError),
    #[error("serving HTTP: {0}")]
    Serve(std::io::Error),
    #[error("{0}")]
    Hinted(#[from] coordinator::hinted::HintedError),
    #[error("{0}")]
    Subscriber(#[from] coordinator::subscriber::SubscriberError),
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("query memory ([coordinator] query-pool-bytes, spill directory): {0}")]
    QueryMemory(#[from] querier::ExecError),
}

/// A configured byte count as `usize` (saturating on 32-bit hosts).
fn bytes(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

async fn bind(key: &'static str, addr: &str) -> Result<TcpListener, ServerError> {
    let sa: SocketAddr = parse_addr(addr).map_err(ServerError::Address)?;
    TcpListener::bind(sa)
        .await
        .map_err(|source| ServerError::Bind {
            key,
            addr: addr.to_string(),
            source,
        })
}

/// The address peers and clients use for a bound socket: `[meta] advertise-address` with the
/// bound port when set, else the bound address (an unspecified IP becomes loopback, which only
/// suits one machine; the config docs say to set advertise-address).
fn advertised(bound: SocketAddr, host: &str) -> String {
    if !host.is_empty() {
        return format!("{host}:{}", bound.port());
    }
    if bound.ip().is_unspecified() {
        let loopback = match bound {
            SocketAddr::V4(_) => std::net::IpAddr::from([127, 0, 0, 1]),
            SocketAddr::V6(_) => std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        };
        tracing::warn!(%bound, "bound to all interfaces without [meta] advertise-address: advertising loopback");
        return SocketAddr::new(loopback, bound.port()).to_string();
    }
    bound.to_string()
}

/// Runs a node until `shutdown` resolves, then stops accepting, persists buffered data and
/// returns.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    // The certificate is read before anything binds: a node that cannot serve TLS as asked
    // does not start (never in clear text instead).
    let tls = match config.http.https_enabled {
        true => Some(crate::tls::server_config(
            "http",
            &config.http.https_certificate,
            &config.http.https_private_key,
        )?),
        false => None,
    };
    // `[meta] https-enabled`: the internal port and the meta HTTP API over TLS, other nodes
    // called over TLS and their certificates checked.
    let meta_tls = match config.meta.https_enabled {
        true => {
            let m = &config.meta;
            let id = crate::tls::identity("meta", &m.https_certificate, &m.https_private_key)?;
            let ca_pem = match m.https_ca_certificate.as_str() {
                "" => None,
                path => Some(crate::tls::ca_pem("meta", "https-ca-certificate", path)?),
            };
            let grpc = tonic::transport::ServerTlsConfig::new().identity(
                tonic::transport::Identity::from_pem(id.cert_pem, id.key_pem),
            );
            Some((id.config, grpc, catalog::rpc::ClientTls { ca_pem }))
        }
        false => None,
    };
    let client_tls = meta_tls.as_ref().map(|(_, _, c)| c.clone());
    let http = match config.http.enabled {
        true => Some(bind("[http] bind-address", &config.http.bind_address).await?),
        false => None,
    };
    let meta_http = match config.meta.enabled {
        true => Some(bind("[meta] http-bind-address", &config.meta.http_bind_address).await?),
        false => None,
    };
    let tcp = bind("[meta] bind-address", &config.meta.bind_address).await?;
    let flight_port = match config.flight.bind_address.as_str() {
        "" => None,
        a => Some(bind("[flight] bind-address", a).await?),
    };
    let host = config.meta.advertise_address.trim();
    let http_addr = match &http {
        Some(l) => advertised(l.local_addr().map_err(ServerError::Serve)?, host),
        None => config.http.bind_address.clone(),
    };
    let meta_http_addr = match &meta_http {
        Some(l) => Some(advertised(
            l.local_addr().map_err(ServerError::Serve)?,
            host,
        )),
        None => None,
    };
    let tcp_addr = advertised(tcp.local_addr().map_err(ServerError::Serve)?, host);

    let m = &config.meta;
    let internal = catalog::rpc::InternalCredential::from_secret(&m.internal_shared_secret);
    let meta = MetaService::prepare(MetaOptions {
        internal: internal.clone(),
        tls: client_tls.clone(),
        dir: expand_home(&m.dir),
        tcp_addr: tcp_addr.clone(),
        meta_http_addr: meta_http_addr.clone(),
        data_http_addr: config.data.enabled.then(|| http_addr.clone()),
        join: m.join_addresses(),
        voters: m.voters as usize,
        heartbeat: m.heartbeat_interval.0,
        election_timeout: m.election_timeout.0,
        commit_timeout: m.commit_timeout.0,
        promote_after: m.promote_after.0,
        snapshot_after_entries: m.snapshot_after_entries,
        startup_timeout: Duration::from_secs(60),
    })
    .await?;
    // Raft and the other nodes' calls are served before this node joins, so the leader can
    // replicate to it while it waits.
    let (flight_stop_tx, mut flight_stop) = tokio::sync::watch::channel(false);
    let data_role = Arc::new(OnceLock::new());
    let mut internal_server = tonic::transport::Server::builder();
    if let Some((_, grpc, _)) = &meta_tls {
        internal_server = internal_server
            .tls_config(grpc.clone())
            .map_err(|e| ServerError::Address(format!("[meta] https-certificate: {e}")))?;
    }
    let flight = tokio::spawn(
        internal_server
            .add_service(InternalFlight::server(
                meta.clone(),
                data_role.clone(),
                internal.clone(),
            ))
            .serve_with_incoming_shutdown(
                TcpIncoming::from(tcp).with_nodelay(Some(true)),
                async move {
                    let _ = flight_stop.wait_for(|s| *s).await;
                },
            ),
    );
    meta.start().await?;
    let node = meta.identity().clone();
    let span = tracing::info_span!("fletchd", meta_id = node.meta_id, data_id = node.data_id);
    // Nothing is served from a catalog older than the cluster's (bounded wait).
    meta.catch_up(config.meta.catch_up_timeout.0)
        .instrument(span.clone())
        .await;
    tracing::info!(parent: &span, %tcp_addr, "internal RPC (Raft, Arrow Flight) listening");

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let ingester = if config.data.enabled {
        let d = &config.data;
        let mut cfg = IngesterConfig::with_dirs(expand_home(&d.dir), expand_home(&d.wal_dir));
        cfg.cache_max_memory_size = d.cache_max_memory_size.0 as usize;
        cfg.cache_snapshot_memory_size = d.cache_snapshot_memory_size.0 as usize;
        cfg.cache_snapshot_write_cold_duration = d.cache_snapshot_write_cold_duration.0;
        cfg.compact_full_write_cold_duration = d.compact_full_write_cold_duration.0;
        cfg.compact_max_files = d.compact_max_files as usize;
        cfg.max_rows_per_file = d.max_rows_per_file as usize;
        let data_id = node.data_id.ok_or_else(|| {
            ServerError::Address("data node id missing after registration".into())
        })?;
        let ing = Ingester::open(cfg, meta.clone(), data_id)
            .instrument(span.clone())
            .await?;
        tokio::spawn(
            ing.clone()
                .run_maintenance(stop_rx.clone())
                .instrument(span.clone()),
        );
        Some(ing)
    } else {
        None
    };

    let write_timeout = config.coordinator.write_timeout.0;
    // A call to another owner outlives the write's own deadline, so that an owner that does
    // not answer makes the write answer `timeout` (its points are queued once the call fails).
    // One set of channels to the other nodes for the data plane's calls.
    let rpc = Arc::new(catalog::rpc::RpcClient::new(internal.clone()).with_tls(client_tls.clone()));
    let peers: Arc<dyn coordinator::peer::PeerWriter> = Arc::new(
        coordinator::peer::FlightPeers::new(meta.clone(), rpc.clone(), write_timeout * 2),
    );
    let peer_shards = Arc::new(
        FlightPeerShards::new(meta.clone(), rpc.clone(), write_timeout)
            .with_reads_per_node(config.coordinator.max_remote_reads_per_node),
    );
    let hinted = match config.hinted_handoff.enabled {
        true => {
            let hh = &config.hinted_handoff;
            let queues = HintedHandoff::open(HintedConfig {
                dir: expand_home(&hh.dir),
                max_size: hh.max_size.0,
                max_age: hh.max_age.0,
                retry_rate_limit: hh.retry_rate_limit,
                retry_interval: hh.retry_interval.0,
                retry_max_interval: hh.retry_max_interval.0,
                purge_interval: hh.purge_interval.0,
            })?;
            tokio::spawn(
                queues
                    .clone()
                    .run(peers.clone(), stop_rx.clone())
                    .instrument(span.clone()),
            );
            Some(queues)
        }
        false => None,
    };
    let subscriber = coordinator::Subscriber::start(config.subscriber.to_coordinator())?;
    let writer = coordinator::PointsWriter::with_ingester(meta.clone(), ingester.clone())
        .with_peers(peers.clone(), hinted)
        .with_timeout(write_timeout)
        .with_subscriber(subscriber);
    // Shards of other nodes are read over Flight from their owners.
    let mut executor = Executor::new(meta.clone(), ingester.clone())
        .with_writer(writer.clone())
        .with_query_timeout(config.coordinator.query_timeout.0)
        .with_query_limits(
            config.coordinator.max_concurrent_queries,
            config.coordinator.log_queries_after.0,
        )
        .with_max_select_buckets(config.coordinator.max_select_buckets)
        .with_max_select(
            config.coordinator.max_select_point,
            config.coordinator.max_select_series,
        )
        .with_peers(peer_shards.clone())
        .with_cluster_queries(Arc::new(crate::cluster_queries::RpcQueries::new(
            rpc.clone(),
            Duration::from_secs(5),
        )))
        .with_memory(
            bytes(config.coordinator.query_pool().unwrap_or(0)),
            bytes(config.coordinator.query_memory_bytes.0),
            ingester
                .as_ref()
                .map(|_| expand_home(&config.data.dir).join("spill")),
        )?;
    // Deletes recorded in the catalog, applied to this data node's shards (those recorded
    // while it was down first, before it serves).
    let deletes = match &ingester {
        Some(ing) => {
            let applier = coordinator::DeleteApplier::new(meta.clone(), ing.clone());
            if let Err(e) = applier.apply_pending().await {
                tracing::warn!(error = %e, "applying recorded deletes failed; will try again");
            }
            applier.clone().spawn();
            executor = executor.with_deletes(applier.clone());
            Some(applier)
        }
        None => None,
    };
    // SHOW STATS / /debug/vars: the HTTP API's counters; SHOW DIAGNOSTICS: this node's facts.
    let started = std::time::SystemTime::now();
    executor = executor
        .with_stats(Arc::new(crate::diagnostics::HttpdStats::new(
            http_addr.clone(),
        )))
        .with_diagnostics(Arc::new(crate::diagnostics::NodeDiagnostics::new(
            config.clone(),
            started,
        )));
    if let Some(queues) = writer.hinted() {
        executor = executor.with_stats(Arc::new(HintedStats::new(
            queues.clone(),
            expand_home(&config.hinted_handoff.dir),
        )));
    }
    // The cluster's data nodes as repairs and `fletchd ctl` reach them; anti-entropy (the
    // owners' copies of cold shards compared and repaired) runs where enabled on a data node.
    let nodes = Arc::new(ClusterNodes {
        meta: meta.clone(),
        ingester: ingester.clone(),
        executor: executor.clone(),
        peers: peer_shards,
        writer: peers.clone(),
        timeout: write_timeout * 6,
        digests: Default::default(),
    });
    let service = replicas::AntiEntropy::new(
        meta.clone(),
        nodes.clone(),
        config.anti_entropy.check_interval.0,
    );
    let entropy = match (&ingester, config.anti_entropy.enabled) {
        (Some(_), true) => {
            tokio::spawn(
                service
                    .clone()
                    .run(config.anti_entropy.check_interval.0, stop_rx.clone())
                    .instrument(span.clone()),
            );
            Some(service.clone())
        }
        _ => None,
    };
    let _ = data_role.set(DataRole {
        ingester: ingester.clone(),
        deletes,
        executor: executor.clone(),
        catalog_wait: write_timeout,
        ctl: crate::ctl::Ctl {
            meta: meta.clone(),
            nodes,
            entropy: service,
        },
    });

    // `[[udp]]` listeners: line protocol over UDP, written as any client's points.
    for u in config.udp.iter().filter(|u| u.enabled) {
        let sock = crate::udp::bind(u)
            .await
            .map_err(|source| ServerError::Bind {
                key: "[[udp]] bind-address",
                addr: u.bind_address.clone(),
                source,
            })?;
        tokio::spawn(
            crate::udp::serve(
                sock,
                u.clone(),
                meta.clone(),
                writer.clone(),
                stop_rx.clone(),
            )
            .instrument(span.clone()),
        );
    }

    // Continuous queries: every node checks, the meta leader runs them (claimed in the log).
    if config.continuous_queries.enabled {
        let runner = querier::continuous::Runner::new(
            executor.clone(),
            config.continuous_queries.log_enabled,
        );
        executor = executor.with_stats(runner.stats());
        tokio::spawn(
            Arc::new(runner)
                .run(config.continuous_queries.run_interval.0, stop_rx.clone())
                .instrument(span.clone()),
        );
    }
    if config.retention.enabled {
        tokio::spawn(
            coordinator::retention::run(
                meta.clone(),
                config.retention.check_interval.0,
                stop_rx.clone(),
            )
            .instrument(span.clone()),
        );
    }
    let auth = Arc::new(crate::auth::Auth::new(
        config.http.auth_enabled,
        config.http.shared_secret.clone(),
        config.http.max_failed_logins,
        meta.clone(),
    ));
    let state = ApiState {
        auth: auth.clone(),
        meta: meta.clone(),
        ingester: ingester.clone(),
        writer: writer.clone(),
        executor: executor.clone(),
        max_body_size: config.http.max_body_size,
        max_row_limit: config.http.max_row_limit,
        max_response_memory: usize::try_from(config.http.max_response_memory.0)
            .unwrap_or(usize::MAX),
        allow_unsigned: config.data.unsigned_integers,
        log_requests: config.http.log_enabled,
        started,
    };
    let _enter = span.enter();
    if http.is_some() {
        tracing::info!(%http_addr, "HTTP API listening");
    } else {
        tracing::info!("HTTP API disabled ([http] enabled = false)");
    }
    match &meta_http_addr {
        Some(a) => tracing::info!(meta_http_addr = %a, "meta HTTP API listening"),
        None => tracing::info!(
            "meta role disabled ([meta] enabled = false): following the catalog only"
        ),
    }
    drop(_enter);

    // `[flight] bind-address`: Flight and Flight SQL on a port of their own.
    let flight_server = flight_port.map(|listener| {
        let mut stop = stop_rx.clone();
        let _enter = span.enter();
        if let Ok(a) = listener.local_addr() {
            tracing::info!(flight_addr = %a, "Flight SQL listening");
        }
        drop(_enter);
        let service = crate::flight_sql::PublicFlight::new(executor.clone(), auth.clone()).server();
        if let Some(tls) = &tls {
            // gRPC over TLS: served as the API port serves it, by hyper behind rustls.
            let app = crate::http::with_flight(axum::Router::new(), service)
                .into_make_service_with_connect_info::<SocketAddr>();
            let tls = crate::tls::TlsListener::new(listener, tls.clone());
            return tokio::spawn(
                async move {
                    let listener = tls.map_err(ServerError::Serve)?.tap_io(|_| {});
                    axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = stop.wait_for(|s| *s).await;
                        })
                        .into_future()
                        .await
                        .map_err(ServerError::Serve)
                }
                .instrument(span.clone()),
            );
        }
        tokio::spawn(
            async move {
                tonic::transport::Server::builder()
                    .add_service(service)
                    .serve_with_incoming_shutdown(
                        TcpIncoming::from(listener).with_nodelay(Some(true)),
                        async move {
                            let _ = stop.wait_for(|s| *s).await;
                        },
                    )
                    .await
                    .map_err(|e| ServerError::Serve(std::io::Error::other(e)))
            }
            .instrument(span.clone()),
        )
    });
    let mut meta_stop = stop_rx.clone();
    let meta_server = meta_http.map(|listener| {
        let app = meta_router(
            meta.clone(),
            writer.hinted().cloned(),
            entropy.clone(),
            internal.clone(),
        );
        let stopped = async move {
            let _ = meta_stop.wait_for(|s| *s).await;
        };
        match &meta_tls {
            Some((tls, _, _)) => match crate::tls::TlsListener::new(listener, tls.clone()) {
                Ok(listener) => tokio::spawn(
                    axum::serve(listener, app)
                        .with_graceful_shutdown(stopped)
                        .into_future()
                        .instrument(span.clone()),
                ),
                Err(e) => tokio::spawn(async move { Err(e) }),
            },
            None => tokio::spawn(
                axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .into_future()
                    .instrument(span.clone()),
            ),
        }
    });
    let served = match http {
        Some(listener) => {
            // Flight SQL and InfluxDB 3's Flight tickets on the same port (gRPC over HTTP/2).
            let flight =
                crate::flight_sql::PublicFlight::new(executor.clone(), auth.clone()).server();
            // The peer's address goes with each request (failed logins are limited per client).
            let app = crate::http::with_flight(router(state), flight)
                .into_make_service_with_connect_info::<SocketAddr>();
            match tls {
                Some(tls) => {
                    // TLS sessions, set up off the accept loop (crate::tls); the generic
                    // `tap_io` is what gives axum the peer's address of such a listener.
                    let listener = crate::tls::TlsListener::new(listener, tls)
                        .map_err(ServerError::Serve)?
                        .tap_io(|_| {});
                    axum::serve(listener, app)
                        .with_graceful_shutdown(shutdown)
                        .into_future()
                        .instrument(span.clone())
                        .await
                }
                None => {
                    // Answers leave as soon as they are written (no Nagle delay behind a
                    // client's delayed ACK), as InfluxDB's Go server does by default.
                    let listener = listener.tap_io(|tcp| {
                        if let Err(e) = tcp.set_nodelay(true) {
                            tracing::debug!(error = %e, "TCP_NODELAY not set");
                        }
                    });
                    axum::serve(listener, app)
                        .with_graceful_shutdown(shutdown)
                        .into_future()
                        .instrument(span.clone())
                        .await
                }
            }
        }
        None => {
            shutdown.await;
            Ok(())
        }
    };

    // Stop accepting (done), stop background work, persist what is buffered.
    let _ = stop_tx.send(true);
    if let Some(m) = meta_server {
        let _ = m.await;
    }
    if let Some(f) = flight_server {
        let _ = f.await;
    }
    let _enter = span.enter();
    tracing::info!("shutting down: persisting buffered writes");
    drop(_enter);
    let persisted = match &ingester {
        Some(ing) => ing.shutdown().instrument(span.clone()).await,
        None => Ok(()),
    };
    meta.shutdown().await;
    let _ = flight_stop_tx.send(true);
    let _ = flight.await;
    served.map_err(ServerError::Serve)?;
    persisted?;
    let _enter = span.enter();
    tracing::info!("stopped");
    Ok(())
}

/// Installs the SIGTERM and SIGINT handlers at once, and resolves on either. Called before the
/// server starts (inside the runtime): a signal that arrives while it starts is then a request
/// to stop, not the default death of the process.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send {
    #[cfg(unix)]
    let handlers = {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(term), Ok(int)) => Some((term, int)),
            _ => {
                tracing::warn!("cannot install signal handlers; stop with Ctrl-C");
                None
            }
        }
    };
    async move {
        #[cfg(unix)]
        if let Some((mut term, mut int)) = handlers {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

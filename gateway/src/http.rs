//! The InfluxDB 1.x HTTP API: `/ping`, `/write` and `/query`, with 1.x's statuses, headers
//! and JSON error bodies. Errors of the lower layers are mapped to HTTP here, once.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use catalog::MetaService;
use coordinator::{Consistency, PointsWriter, WriteError};
use futures::StreamExt;
use ingester::{Ingester, now_nanos};
use line_protocol::{ParseOptions, Precision, parse_body};
use querier::{Executor, QueryContext};

use crate::format::{self, FormatOptions};

use serde::Serialize;

/// The InfluxDB API version Fletch answers as (clients read `X-Influxdb-Version`).
pub const INFLUXDB_VERSION: &str = "1.6.7";
pub const FLETCH_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct ApiState {
    pub meta: Arc<MetaService>,
    pub ingester: Option<Arc<Ingester>>,
    /// Routes `/write`'s points to their shards' owners.
    pub writer: PointsWriter,
    pub executor: Executor,
    pub max_body_size: u64,
    /// `[http] max-row-limit`: most rows of a non-chunked answer (0: no limit).
    pub max_row_limit: u64,
    /// `[http] max-response-memory`: most Arrow bytes a non-chunked answer holds (0: no limit).
    pub max_response_memory: usize,
    pub allow_unsigned: bool,
    pub log_requests: bool,
    /// `[http] auth-enabled`: who may read and write.
    pub auth: Arc<crate::auth::Auth>,
    /// When the node started (`/debug/vars`' `system`).
    pub started: std::time::SystemTime,
}

/// The address a request came from, when the server knows it (rate limits of failed logins).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(client_ip(&parts.extensions)))
    }
}

/// The peer's IP address from axum's connection info, if the server recorded it.
pub fn client_ip(extensions: &axum::http::Extensions) -> Option<std::net::IpAddr> {
    extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

impl From<crate::auth::AuthError> for ApiError {
    fn from(e: crate::auth::AuthError) -> Self {
        use crate::auth::AuthError as A;
        let status = match &e {
            A::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            A::Forbidden(_) => StatusCode::FORBIDDEN,
            A::TooManyFailures(_) => StatusCode::TOO_MANY_REQUESTS,
        };
        Self::new(status, e.to_string())
    }
}

impl ApiState {
    /// The caller of a request (1.x's `authenticate`): `None` while auth is off or no admin
    /// exists yet; 401 for missing or wrong credentials.
    pub async fn caller(
        &self,
        params: &HashMap<String, String>,
        headers: &HeaderMap,
        client: ClientAddr,
    ) -> Result<crate::auth::Caller, ApiError> {
        if !self.auth.checks_credentials() {
            return Ok(None);
        }
        let creds = crate::auth::credentials(
            params.get("u").map(String::as_str),
            params.get("p").map(String::as_str),
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok()),
        );
        Ok(self.auth.caller(creds, client.0).await?)
    }
}

/// An error answered as 1.x does: a status and `{"error": "..."}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Go's JSON encoder ends the body with a newline; clients print it as it is.
        let body = serde_json::json!({ "error": self.message }).to_string() + "\n";
        let mut resp = (self.status, body).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Ok(v) = HeaderValue::from_str(&self.message) {
            h.insert("X-Influxdb-Error", v);
        }
        resp
    }
}

impl ApiError {
    /// The error as 1.x answers a client that asked for CSV: a header `error` and the message
    /// as one quoted field.
    fn into_csv_response(self) -> Response {
        let body = format!("error\n{}\n", shell::csv_field(&self.message));
        let mut resp = (self.status, body).into_response();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv"));
        if let Ok(v) = HeaderValue::from_str(&self.message) {
            h.insert("X-Influxdb-Error", v);
        }
        resp
    }
}

/// Whether a request asks for CSV (`Accept: application/csv` or `text/csv`).
fn wants_csv(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/csv") || a.contains("text/csv"))
}

impl From<WriteError> for ApiError {
    fn from(e: WriteError) -> Self {
        use ingester::WriteError as Shard;
        let status = match &e {
            WriteError::DatabaseNotFound(_) => StatusCode::NOT_FOUND,
            WriteError::Shard(Shard::BufferFull { .. } | Shard::ShuttingDown) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            WriteError::Meta(catalog::MetaError::Catalog(
                catalog::CatalogError::DatabaseNotFound(_),
            )) => StatusCode::NOT_FOUND,
            WriteError::Meta(catalog::MetaError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            WriteError::RetentionPolicyNotFound(_)
            | WriteError::Shard(Shard::Wal(_))
            | WriteError::Meta(_)
            | WriteError::NoShards(_)
            | WriteError::NotOwner { .. }
            | WriteError::Timeout
            | WriteError::PartialWrite
            | WriteError::Failed(_)
            | WriteError::QueueNotEmpty
            | WriteError::QueueFull => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, e.to_string())
    }
}

static REQUEST_SEQ: AtomicU64 = AtomicU64::new(0);

/// Adds the headers every 1.x response carries.
async fn common_headers(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let method = req.method().clone();
    let uri = req.uri().clone();
    let log = req.extensions().get::<LogRequests>().is_some_and(|l| l.0);
    let started = std::time::Instant::now();
    let mut resp = next.run(req).await;
    if let Some(endpoint) = crate::metrics::endpoint(uri.path()) {
        crate::metrics::record(endpoint, resp.status().as_u16(), started.elapsed());
    }
    let seq = REQUEST_SEQ.fetch_add(1, Ordering::Relaxed);
    let id = format!("{:016x}-{:08x}", now_nanos() as u64, seq);
    let h = resp.headers_mut();
    h.insert(
        "X-Influxdb-Version",
        HeaderValue::from_static(INFLUXDB_VERSION),
    );
    h.insert("X-Influxdb-Build", HeaderValue::from_static("OSS"));
    h.insert("X-Fletch-Version", HeaderValue::from_static(FLETCH_VERSION));
    if let Ok(v) = HeaderValue::from_str(&id) {
        h.insert("Request-Id", v.clone());
        h.insert("X-Request-Id", v);
    }
    if log {
        let uri = crate::auth::redact_uri(&uri.to_string());
        tracing::info!(%method, %uri, status = resp.status().as_u16(), elapsed_us = started.elapsed().as_micros() as u64, "request");
    }
    resp
}

#[derive(Clone, Copy)]
struct LogRequests(bool);

/// 1.x's CORS, so that browser tools work: a request with an `Origin` gets it back as
/// `Access-Control-Allow-Origin` with 1.x's allowed methods and headers, and a preflight
/// (`OPTIONS`) is answered 200 at once, before any authentication, as 1.x answers it
/// (`/ping` has no preflight there: 405).
async fn cors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let mut resp = match req.method() == axum::http::Method::OPTIONS {
        true if req.uri().path() == "/ping" => {
            let mut r = (StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n").into_response();
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("HEAD, GET"));
            return r;
        }
        true => StatusCode::OK.into_response(),
        false => next.run(req).await,
    };
    if let Some(origin) = origin {
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("DELETE, GET, OPTIONS, POST, PUT"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(
                "Accept, Accept-Encoding, Authorization, Content-Length, Content-Type, X-CSRF-Token, X-HTTP-Method-Override",
            ),
        );
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("Date, X-InfluxDB-Version, X-InfluxDB-Build"),
        );
    }
    resp
}

pub fn router(state: ApiState) -> Router {
    // (`ClientAddr` reads the peer's address that `into_make_service_with_connect_info` adds.)
    let log = LogRequests(state.log_requests);
    Router::new()
        .route("/ping", any(ping))
        .route("/write", any(write))
        .route("/api/v2/write", any(write_v2))
        .route("/api/v3/write_lp", any(write_v3))
        .route("/query", any(query))
        .route("/metrics", get(metrics))
        .route("/debug/vars", get(debug_vars))
        .route("/api/v3/query_sql", any(crate::query_v3::query_sql))
        .route(
            "/api/v3/query_influxql",
            any(crate::query_v3::query_influxql),
        )
        // On the routes only: 1.x's 404 carries no CORS headers.
        .route_layer(axum::middleware::from_fn(cors))
        .fallback(|| async { (StatusCode::NOT_FOUND, "404 page not found\n") })
        .layer(axum::middleware::from_fn(common_headers))
        .layer(axum::middleware::from_fn(
            move |mut req: axum::extract::Request, next: axum::middleware::Next| async move {
                req.extensions_mut().insert(log);
                next.run(req).await
            },
        ))
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// The HTTP API and Flight (SQL) on one listener, as InfluxDB 3 serves them: a request whose
/// content type is gRPC's goes to `flight`, any other to `http`.
pub fn with_flight(
    http: Router,
    flight: arrow_flight::flight_service_server::FlightServiceServer<
        crate::flight_sql::PublicFlight,
    >,
) -> Router {
    use tower::ServiceExt;
    let grpc = tonic::service::Routes::new(flight)
        .prepare()
        .into_axum_router();
    Router::new().fallback(move |req: axum::extract::Request| {
        let (grpc, http) = (grpc.clone(), http.clone());
        async move {
            let is_grpc = req
                .headers()
                .get(header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
            let answer = if is_grpc {
                grpc.oneshot(req).await
            } else {
                http.oneshot(req).await
            };
            match answer {
                Ok(r) => r,
                Err(never) => match never {},
            }
        }
    })
}

fn method_not_allowed() -> Response {
    (StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n").into_response()
}

async fn ping(method: Method) -> Response {
    match method {
        Method::GET | Method::HEAD => StatusCode::NO_CONTENT.into_response(),
        _ => method_not_allowed(),
    }
}

/// Reads a request body up to `limit` bytes (0 = unlimited); 413 past it, as 1.x.
async fn read_limited(body: Body, limit: u64) -> Result<Vec<u8>, ApiError> {
    let too_large = || ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
    let mut out = Vec::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(e.to_string()))?;
        if limit > 0 && (out.len() + chunk.len()) as u64 > limit {
            return Err(too_large());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

fn gunzip(data: &[u8], limit: u64) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    let decoder = flate2::read::GzDecoder::new(data);
    let cap = if limit == 0 { u64::MAX } else { limit + 1 };
    decoder
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    if limit > 0 && out.len() as u64 > limit {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request Entity Too Large",
        ));
    }
    Ok(out)
}

/// `POST /api/v2/write?bucket=db[/rp]&precision=ns|us|ms|s`: InfluxDB 1.8's compatibility
/// endpoint, which Telegraf's `influxdb_v2` output and the v2 and v3 client libraries use; a
/// 1.x write of database `db` (policy `rp`), answered as `/write` answers.
async fn write_v2(
    state: State<ApiState>,
    method: Method,
    client: ClientAddr,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let params = url_params(raw_query)?;
    let bucket = params
        .get("bucket")
        .filter(|b| !b.is_empty())
        .ok_or_else(|| ApiError::bad_request("bucket is required"))?;
    let (db, rp) = bucket.split_once('/').unwrap_or((bucket.as_str(), ""));
    let mut v1 = vec![("db", db.to_string())];
    if !rp.is_empty() {
        v1.push(("rp", rp.to_string()));
    }
    if let Some(p) = params.get("precision") {
        v1.push(("precision", p.clone()));
    }
    write_as_v1(state, method, client, &v1, headers, body).await
}

/// `/write` with 1.x parameters `v1` (what the v2 and v3 write endpoints translate theirs to).
async fn write_as_v1(
    state: State<ApiState>,
    method: Method,
    client: ClientAddr,
    v1: &[(&str, String)],
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let raw = serde_urlencoded::to_string(v1).map_err(|e| ApiError::bad_request(e.to_string()))?;
    write(state, method, client, RawQuery(Some(raw)), headers, body).await
}

/// `POST /api/v3/write_lp?db=db&precision=nanosecond|microsecond|millisecond|second|auto`:
/// InfluxDB 3's line protocol write (`auto`: nanoseconds), answered as `/write` answers.
async fn write_v3(
    state: State<ApiState>,
    method: Method,
    client: ClientAddr,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let params = url_params(raw_query)?;
    let mut v1 = vec![("db", params.get("db").cloned().unwrap_or_default())];
    let precision = match params.get("precision").map(String::as_str) {
        None | Some("auto" | "nanosecond" | "ns") => "n",
        Some("microsecond" | "us") => "u",
        Some("millisecond" | "ms") => "ms",
        Some("second" | "s") => "s",
        Some(other) => {
            return Err(ApiError::bad_request(format!("invalid precision {other}")));
        }
    };
    v1.push(("precision", precision.to_string()));
    write_as_v1(state, method, client, &v1, headers, body).await
}

/// How long a write naming a database or retention policy this node does not know waits for
/// the catalog to catch up with the leader's.
const CATALOG_CATCH_UP: std::time::Duration = std::time::Duration::from_secs(2);

async fn write(
    State(st): State<ApiState>,
    method: Method,
    client: ClientAddr,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if method != Method::POST {
        return Ok(method_not_allowed());
    }
    let params = url_params(raw_query)?;
    // As 1.x: who is asking is settled before anything else is looked at.
    let caller = st.caller(&params, &headers, client).await?;
    let db = params.get("db").map(String::as_str).unwrap_or("");
    if db.is_empty() {
        return Err(ApiError::bad_request("database is required"));
    }
    let consistency = match params.get("consistency").filter(|l| !l.is_empty()) {
        Some(level) => Consistency::parse(level)
            .ok_or_else(|| ApiError::bad_request("invalid consistency level"))?,
        None => Consistency::One,
    };
    // As 1.x: an unknown database is reported before the body is read. One created through
    // another node a moment ago may not have reached this node's catalog yet: it catches up
    // with the leader's first.
    let known = |st: &ApiState| {
        let cat = st.meta.catalog();
        cat.database(db).is_some_and(|d| {
            params
                .get("rp")
                .filter(|rp| !rp.is_empty())
                .is_none_or(|rp| d.rp(rp).is_some())
        })
    };
    if !known(&st) {
        st.meta.catch_up(CATALOG_CATCH_UP).await;
        if st.meta.catalog().database(db).is_none() {
            return Err(WriteError::DatabaseNotFound(db.to_string()).into());
        }
    }
    st.auth.authorize_write(&caller, db)?;
    let raw = read_limited(body, st.max_body_size).await?;
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let data = if gzip {
        gunzip(&raw, st.max_body_size)?
    } else {
        raw
    };

    let now = now_nanos();
    let opts = ParseOptions {
        precision: Precision::from_param(params.get("precision").map(String::as_str).unwrap_or("")),
        default_time: now,
        allow_unsigned: st.allow_unsigned,
    };
    let parsed = parse_body(&data, &opts);
    let parse_error = parsed.error_text();
    if parsed.points.is_empty() {
        if let Some(e) = parse_error {
            return Err(ApiError::bad_request(e));
        }
    }
    let rp = params.get("rp").map(String::as_str).unwrap_or("");
    let points = parsed.points.len() as u64;
    let outcome = st
        .writer
        .write_with(db, rp, parsed.points, now, consistency)
        .await?;
    crate::metrics::points_written(points.saturating_sub(outcome.dropped as u64));
    if outcome.dropped > 0 {
        let reason = outcome.reason.unwrap_or_default();
        return Err(ApiError::bad_request(format!(
            "partial write: {reason} dropped={}",
            outcome.dropped
        )));
    }
    if let Some(e) = parse_error {
        return Err(ApiError::bad_request(format!(
            "partial write: {e} dropped=0"
        )));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The URL's query parameters (the first value of a repeated key wins, as Go's `Get`).
pub(crate) fn url_params(raw: Option<String>) -> Result<HashMap<String, String>, ApiError> {
    let pairs: Vec<(String, String)> = match raw {
        Some(q) => serde_urlencoded::from_str(&q)
            .map_err(|e| ApiError::bad_request(format!("invalid query string: {e}")))?,
        None => Vec::new(),
    };
    let mut out = HashMap::new();
    for (k, v) in pairs {
        out.entry(k).or_insert(v);
    }
    Ok(out)
}

/// `q`, `db`, ... from the URL and, for POST, from a form body (URL values first, as Go's
/// `FormValue`).
fn query_params(
    uri_params: HashMap<String, String>,
    headers: &HeaderMap,
    body: &Bytes,
) -> HashMap<String, String> {
    let mut params = uri_params;
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if form || (!body.is_empty() && headers.get(header::CONTENT_TYPE).is_none()) {
        for (k, v) in form_urlencoded_pairs(body) {
            params.entry(k).or_insert(v);
        }
    }
    params
}

fn form_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

fn json_response(value: &impl Serialize, pretty: bool) -> Response {
    let body = if pretty {
        let mut buf = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
        match value.serialize(&mut ser) {
            Ok(()) => String::from_utf8_lossy(&buf).into_owned(),
            Err(e) => serde_json::json!({ "error": e.to_string() }).to_string(),
        }
    } else {
        serde_json::to_string(value)
            .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }).to_string())
    };
    let mut resp = (StatusCode::OK, body + "\n").into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

async fn query(
    state: State<ApiState>,
    method: Method,
    client: ClientAddr,
    raw_query: RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let csv = wants_csv(&headers);
    match query_answer(state, method, client, raw_query, headers, body).await {
        Ok(r) => r,
        Err(e) if csv => e.into_csv_response(),
        Err(e) => e.into_response(),
    }
}

async fn query_answer(
    State(st): State<ApiState>,
    method: Method,
    client: ClientAddr,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if method != Method::GET && method != Method::POST {
        return Ok(method_not_allowed());
    }
    let params = query_params(url_params(raw_query)?, &headers, &body);
    let caller = st.caller(&params, &headers, client).await?;
    let pretty = params.get("pretty").is_some_and(|v| v == "true");
    let q = params.get("q").map(String::as_str).unwrap_or("");
    if q.is_empty() {
        return Err(ApiError::bad_request("missing required parameter \"q\""));
    }
    let mut statements = querier::influxql::parse_query(q)
        .map_err(|e| ApiError::bad_request(format!("error parsing query: {e}")))?;
    let bound = match params.get("params").filter(|p| !p.is_empty()) {
        Some(p) => match serde_json::from_str::<serde_json::Value>(p) {
            Ok(serde_json::Value::Object(m)) => m,
            Ok(_) => {
                return Err(ApiError::bad_request(
                    "error parsing query parameters: params must be a JSON object",
                ));
            }
            Err(e) => {
                return Err(ApiError::bad_request(format!(
                    "error parsing query parameters: {e}"
                )));
            }
        },
        None => serde_json::Map::new(),
    };
    querier::params::bind(&mut statements, &bound)
        .map_err(|e| ApiError::bad_request(format!("error parsing query: {e}")))?;
    let db = params.get("db").map(String::as_str).unwrap_or("");
    st.auth.authorize_query(&caller, &statements, db)?;
    if statements.is_empty() {
        return Ok(body_response(format::empty_json(), "application/json"));
    }
    let wants_csv = wants_csv(&headers);
    // CSV carries times as integers: nanoseconds unless `epoch` says otherwise (1.x).
    let opts = FormatOptions {
        epoch: params
            .get("epoch")
            .filter(|e| !e.is_empty())
            .cloned()
            .or_else(|| wants_csv.then(|| "ns".to_string())),
    };
    let ctx = QueryContext {
        database: params.get("db").filter(|d| !d.is_empty()).cloned(),
        read_only: method == Method::GET,
        now: None,
        explain: None,
        user: caller,
    };
    if !wants_csv && params.get("chunked").is_some_and(|v| v == "true") {
        let size = params
            .get("chunk_size")
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(10_000);
        // Lines leave as the query produces rows; a slow reader holds the query back.
        let shapes = statements.iter().map(querier::ChunkShape::of).collect();
        let answer = st.executor.run(statements, ctx);
        let body = format::Chunker::new(answer, size, opts)
            .with_shapes(shapes)
            .into_stream();
        let mut resp = Response::new(Body::from_stream(body));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return Ok(resp);
    }
    // A whole answer runs on this task, its Arrow data within [http] max-response-memory.
    let results = st
        .executor
        .collect(&statements, &ctx, st.max_response_memory)
        .await;
    if wants_csv {
        return Ok(body_response(
            format::csv(&results, &opts).into_bytes(),
            "text/csv",
        ));
    }
    Ok(body_response(
        format::json(&results, st.max_row_limit, pretty, &opts),
        "application/json",
    ))
}

/// With auth on, only admins see the node's counters (`path` names the endpoint refused).
async fn admin_only(
    st: &ApiState,
    client: ClientAddr,
    raw_query: Option<String>,
    headers: &HeaderMap,
    path: &str,
) -> Result<(), ApiError> {
    let params = url_params(raw_query)?;
    let caller = st.caller(&params, headers, client).await?;
    if st.auth.enabled() && !caller.as_ref().is_some_and(|u| u.admin) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("error authorizing query: {path} requires admin privilege"),
        ));
    }
    Ok(())
}

/// `GET /debug/vars`: the `SHOW STATS` modules in 1.x's expvar JSON. With auth on, for admins
/// (1.x serves it to anyone).
async fn debug_vars(
    State(st): State<ApiState>,
    client: ClientAddr,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    admin_only(&st, client, raw_query, &headers, "/debug/vars").await?;
    let body = crate::diagnostics::debug_vars(&st.executor.stats(), st.started);
    Ok(body_response(
        body.into_bytes(),
        "application/json; charset=utf-8",
    ))
}

/// `GET /metrics`: Prometheus' text format (docs/operations.md). With auth on, for admins.
async fn metrics(
    State(st): State<ApiState>,
    client: ClientAddr,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    admin_only(&st, client, raw_query, &headers, "/metrics").await?;
    let m = st.meta.metrics();
    let gauges = crate::metrics::Gauges {
        buffer_bytes: st.ingester.as_ref().map(|i| i.buffered_bytes() as u64),
        queries_running: st.executor.queries().list().len() as u64,
        slow_queries: st.executor.queries().slow_queries(),
        queries: {
            let (started, finished, ns) = st.executor.queries().totals();
            (started, finished, ns as f64 / 1e9)
        },
        query_memory: (
            st.executor.memory().used() as u64,
            st.executor.memory().limit() as u64,
        ),
        spill: st
            .executor
            .spill()
            .map_or((0, 0), |s| (s.created(), s.bytes())),
        hinted_handoff: st
            .writer
            .hinted()
            .map(|h| {
                h.stats()
                    .into_iter()
                    .map(|q| (q.node, q.bytes, q.frames))
                    .collect()
            })
            .unwrap_or_default(),
        raft_term: m.current_term,
        raft_leader: m.current_leader,
        raft_applied_index: m.last_applied.map(|l| l.index),
        raft_last_log_index: m.last_log_index,
        node_id: m.id,
    };
    let mut resp = (StatusCode::OK, crate::metrics::render(&gauges)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    Ok(resp)
}

fn body_response(body: Vec<u8>, content_type: &'static str) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// The meta node's HTTP API: `/ping` and `/status` (Raft state for operators).
pub fn meta_router(
    meta: Arc<MetaService>,
    hinted: Option<Arc<coordinator::hinted::HintedHandoff>>,
    entropy: Option<Arc<replicas::AntiEntropy>>,
    internal: Option<catalog::rpc::InternalCredential>,
) -> Router {
    // With `[meta] internal-shared-secret`, `/status` and `/join` answer only the cluster's
    // nodes (and operators who hold the credential); `/ping` stays open.
    let check = move |req: axum::extract::Request, next: axum::middleware::Next| {
        let internal = internal.clone();
        async move {
            let presented = req
                .headers()
                .get(catalog::rpc::INTERNAL_AUTH_HEADER)
                .map(|v| v.as_bytes());
            match &internal {
                Some(c) if req.uri().path() == "/join" && !c.accepts(presented) => {
                    // In the join protocol's own shape: the joining node stops and says why.
                    let refused: catalog::rpc::Remote<()> =
                        Err(catalog::rpc::RemoteError::Refused(
                            catalog::rpc::REFUSED_WITHOUT_SECRET.to_string(),
                        ));
                    let mut resp = json_response(&refused, false);
                    *resp.status_mut() = StatusCode::UNAUTHORIZED;
                    resp
                }
                Some(c) if req.uri().path() != "/ping" && !c.accepts(presented) => ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    catalog::rpc::REFUSED_WITHOUT_SECRET,
                )
                .into_response(),
                _ => next.run(req).await,
            }
        }
    };
    let status_meta = meta.clone();
    Router::new()
        .route("/ping", get(|| async { StatusCode::NO_CONTENT }))
        .route(
            "/status",
            get(move || {
                let meta = status_meta.clone();
                let hinted = hinted.clone();
                let entropy = entropy.clone();
                async move {
                    let mut status = meta_status(&meta);
                    // This node's queues for other data nodes, one entry per destination.
                    status["hinted_handoff"] = match hinted {
                        Some(h) => serde_json::to_value(h.stats()).unwrap_or_default(),
                        None => serde_json::Value::Null,
                    };
                    // Deletes recorded in the catalog that some data node has still to apply,
                    // and how far each data node has applied them.
                    {
                        let cat = meta.catalog();
                        status["deletes_pending"] = cat.deletes.len().into();
                        status["deletes_applied"] =
                            serde_json::to_value(&cat.delete_acks).unwrap_or_default();
                    }
                    // The last anti-entropy check of each shard this node checks.
                    status["anti_entropy"] = match entropy {
                        Some(e) => serde_json::to_value(e.checks()).unwrap_or_default(),
                        None => serde_json::Value::Null,
                    };
                    json_response(&status, false)
                }
            }),
        )
        .route(
            "/join",
            axum::routing::post(move |body: Bytes| {
                let meta = meta.clone();
                async move { join(&meta, &body).await }
            }),
        )
        .layer(axum::middleware::from_fn(check))
        .layer(axum::middleware::from_fn(common_headers))
}

/// `GET /status` on the meta HTTP API: this member's view of the Raft group.
fn meta_status(meta: &MetaService) -> serde_json::Value {
    let m = meta.metrics();
    let membership = m.membership_config.membership();
    let voters: Vec<u64> = membership.voter_ids().collect();
    let learners: Vec<u64> = membership.learner_ids().collect();
    let catalog = meta.catalog();
    let (standbys, followers): (Vec<u64>, Vec<u64>) = learners
        .iter()
        .partition(|id| catalog.meta_nodes.contains_key(id));
    let leader_addr = m
        .current_leader
        .and_then(|l| membership.get_node(&l))
        .map(|n| n.addr.clone());
    let identity = meta.identity();
    serde_json::json!({
        "node_id": m.id,
        "meta_id": identity.meta_id,
        "data_id": identity.data_id,
        "state": format!("{:?}", m.state),
        "leader": m.current_leader,
        "leader_addr": leader_addr,
        "term": m.current_term,
        "voters": voters,
        "learners": learners,
        "standbys": standbys,
        "followers": followers,
        "applied_index": m.last_applied.map(|l| l.index),
        "last_log_index": m.last_log_index,
        "millis_since_quorum_ack": m.millis_since_quorum_ack,
    })
}

/// `POST /join` on the meta HTTP API: what `-join` calls. Answers the catalog's reply as JSON.
async fn join(meta: &MetaService, body: &[u8]) -> Response {
    use catalog::rpc::{JoinRequest, RemoteError};
    let req: JoinRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("malformed join request: {e}"),
            )
            .into_response();
        }
    };
    let answer = meta.join(req).await.map_err(RemoteError::from);
    let status = match &answer {
        Ok(_) => StatusCode::OK,
        Err(RemoteError::Unavailable(_) | RemoteError::NotLeader) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        Err(RemoteError::Refused(_) | RemoteError::Catalog(_)) => StatusCode::CONFLICT,
        Err(RemoteError::Other(_)) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let mut resp = json_response(&answer, false);
    *resp.status_mut() = status;
    resp
}

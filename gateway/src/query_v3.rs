//! InfluxDB 3's HTTP query API: `GET|POST /api/v3/query_sql` and `/api/v3/query_influxql`.
//!
//! ```text
//!  GET  ?db=..&q=..&format=json|jsonl|csv|pretty|parquet&params={"name": value}
//!  POST {"db": .., "q": .., "format": .., "params": {..}}   (application/json)
//!    ─▶ statement::run_sql | run_influxql (the engine Flight SQL uses) ─▶ record batches
//!    ─▶ json: [{"col": value, ...}, ...]   jsonl: one object a line   csv: a header, then rows
//!       pretty: an ASCII table   parquet: one Parquet file
//! ```
//!
//! Rows leave as batches arrive (all formats but `pretty`, which needs every row to size its
//! columns). An error before the first batch is a JSON `{"error": ...}` with its status (404
//! for an unknown database, 400 for a statement that cannot be planned); one after the first
//! bytes have left aborts the body, so a partial answer never looks complete.

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use futures::StreamExt;
use serde::Deserialize;

use crate::http::{ApiError, ApiState};
use crate::statement::{self, Answer, Params, StatementError};

/// The answer's format (`format`, else the `Accept` header, else JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    JsonLines,
    Csv,
    Pretty,
    Parquet,
}

impl Format {
    fn parse(name: &str) -> Result<Self, ApiError> {
        Ok(match name {
            "json" => Self::Json,
            "jsonl" => Self::JsonLines,
            "csv" => Self::Csv,
            "pretty" => Self::Pretty,
            "parquet" => Self::Parquet,
            other => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("invalid format {other:?}: json, jsonl, csv, pretty or parquet"),
                ));
            }
        })
    }

    fn from_accept(headers: &HeaderMap) -> Self {
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if accept.contains("application/jsonl") || accept.contains("application/x-ndjson") {
            Self::JsonLines
        } else if accept.contains("text/csv") {
            Self::Csv
        } else if accept.contains("application/vnd.apache.parquet") {
            Self::Parquet
        } else if accept.contains("text/plain") {
            Self::Pretty
        } else {
            Self::Json
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::JsonLines => "application/jsonl",
            Self::Csv => "text/csv",
            Self::Pretty => "text/plain; charset=utf-8",
            Self::Parquet => "application/vnd.apache.parquet",
        }
    }
}

/// A request's parameters, from the URL (GET) or a JSON body (POST).
#[derive(Debug, Default, Deserialize)]
struct Request {
    #[serde(default)]
    db: Option<String>,
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    params: Option<serde_json::Map<String, serde_json::Value>>,
}

impl Request {
    fn read(raw_query: Option<String>, method: &Method, body: &Bytes) -> Result<Self, ApiError> {
        let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, m);
        let mut r = Self::default();
        if method == Method::POST && !body.is_empty() {
            r = serde_json::from_slice(body)
                .map_err(|e| bad(format!("the request body is not a query as JSON: {e}")))?;
        }
        // URL parameters fill in what the body did not give.
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(raw_query.as_deref().unwrap_or(""))
                .map_err(|e| bad(format!("invalid query string: {e}")))?;
        for (k, v) in pairs {
            match k.as_str() {
                "db" if r.db.is_none() => r.db = Some(v),
                "q" if r.q.is_none() => r.q = Some(v),
                "format" if r.format.is_none() => r.format = Some(v),
                "params" if r.params.is_none() => {
                    r.params = Some(
                        serde_json::from_str(&v)
                            .map_err(|e| bad(format!("params must be a JSON object: {e}")))?,
                    )
                }
                _ => {}
            }
        }
        Ok(r)
    }
}

fn api_error(e: StatementError) -> ApiError {
    let status = match &e {
        StatementError::DatabaseNotFound(_) => StatusCode::NOT_FOUND,
        StatementError::Invalid(_) | StatementError::Unsupported(_) => StatusCode::BAD_REQUEST,
        StatementError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
        StatementError::Forbidden(_) => StatusCode::FORBIDDEN,
    };
    ApiError::new(status, e.to_string())
}

/// `/api/v3/query_sql`.
pub async fn query_sql(
    state: State<ApiState>,
    method: Method,
    client: crate::http::ClientAddr,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    answer(
        state,
        method,
        client,
        raw_query,
        headers,
        body,
        Language::Sql,
    )
    .await
}

/// `/api/v3/query_influxql`.
pub async fn query_influxql(
    state: State<ApiState>,
    method: Method,
    client: crate::http::ClientAddr,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    answer(
        state,
        method,
        client,
        raw_query,
        headers,
        body,
        Language::InfluxQl,
    )
    .await
}

#[derive(Debug, Clone, Copy)]
enum Language {
    Sql,
    InfluxQl,
}

async fn answer(
    State(st): State<ApiState>,
    method: Method,
    client: crate::http::ClientAddr,
    raw_query: Option<String>,
    headers: HeaderMap,
    body: Bytes,
    language: Language,
) -> Result<Response, ApiError> {
    if method != Method::GET && method != Method::POST {
        return Ok((StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n").into_response());
    }
    // Credentials as `/query` takes them (`u`/`p` in the URL, or the Authorization header).
    let url = crate::http::url_params(raw_query.clone())?;
    let access = crate::statement::Access {
        auth: st.auth.clone(),
        caller: st.caller(&url, &headers, client).await?,
    };
    let r = Request::read(raw_query, &method, &body)?;
    let format = match r.format.as_deref().filter(|f| !f.is_empty()) {
        Some(f) => Format::parse(f)?,
        None => Format::from_accept(&headers),
    };
    let q =
        r.q.filter(|q| !q.trim().is_empty())
            .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "missing query parameter q"))?;
    let db = r.db.filter(|d| !d.is_empty());
    let params = r.params.unwrap_or_default();
    let answer = match language {
        Language::Sql => {
            if db.is_none() {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "missing query parameter db",
                ));
            }
            let params = Params::from_json(&params).map_err(api_error)?;
            statement::run_sql(&st.executor, &access, db.as_deref(), &q, params).await
        }
        Language::InfluxQl => {
            statement::run_influxql(&st.executor, &access, db.as_deref(), &q, &params).await
        }
    }
    .map_err(api_error)?;
    respond(answer, format).await
}

/// The answer formatted as it streams; the first batch is awaited first, so that an error
/// before any row is answered with its status.
async fn respond(answer: Answer, format: Format) -> Result<Response, ApiError> {
    let Answer {
        schema,
        mut batches,
    } = answer;
    let first = match batches.next().await {
        Some(b) => Some(b.map_err(api_error)?),
        None => None,
    };
    let body = if format == Format::Pretty {
        let mut all: Vec<RecordBatch> = first.into_iter().collect();
        while let Some(b) = batches.next().await {
            all.push(b.map_err(api_error)?);
        }
        let table = datafusion::arrow::util::pretty::pretty_format_batches(&all)
            .map_err(|e| api_error(e.into()))?;
        Body::from(table.to_string())
    } else {
        let mut writer = Writer::new(format, &schema).map_err(|e| api_error(e.into()))?;
        // No rows: an empty batch still writes CSV's header.
        let first = first.unwrap_or_else(|| RecordBatch::new_empty(Arc::clone(&schema)));
        let head = writer.write(&first).map_err(|e| api_error(e.into()))?;
        let rest = futures::stream::unfold(
            (batches, Some(writer)),
            |(mut batches, writer)| async move {
                let mut writer = writer?;
                match batches.next().await {
                    Some(Ok(b)) => {
                        let out = writer.write(&b).map_err(std::io::Error::other);
                        let keep = out.is_ok().then_some(writer);
                        Some((out, (batches, keep)))
                    }
                    Some(Err(e)) => Some((Err(std::io::Error::other(e)), (batches, None))),
                    None => Some((
                        writer.finish().map_err(std::io::Error::other),
                        (batches, None),
                    )),
                }
            },
        );
        let body = futures::stream::once(async move { Ok::<_, std::io::Error>(head) })
            .chain(rest)
            .filter(|b| futures::future::ready(!matches!(b, Ok(b) if b.is_empty())));
        Body::from_stream(body)
    };
    let mut resp = Response::new(body);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    Ok(resp)
}

/// A buffer the format writers write into and the body drains after every batch.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Shared {
    fn take(&self) -> Bytes {
        match self.0.lock() {
            Ok(mut v) => Bytes::from(std::mem::take(&mut *v)),
            Err(_) => Bytes::new(),
        }
    }
}

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One format's writer over the whole answer.
enum Writer {
    Json(arrow_json::ArrayWriter<Shared>, Shared),
    JsonLines(arrow_json::LineDelimitedWriter<Shared>, Shared),
    Csv(arrow_csv::Writer<Shared>, Shared),
    Parquet(Box<datafusion::parquet::arrow::ArrowWriter<Shared>>, Shared),
}

impl Writer {
    fn new(format: Format, schema: &SchemaRef) -> Result<Self, ArrowError> {
        let buf = Shared::default();
        Ok(match format {
            Format::Json | Format::Pretty => {
                Self::Json(arrow_json::ArrayWriter::new(buf.clone()), buf)
            }
            Format::JsonLines => {
                Self::JsonLines(arrow_json::LineDelimitedWriter::new(buf.clone()), buf)
            }
            Format::Csv => Self::Csv(arrow_csv::Writer::new(buf.clone()), buf),
            Format::Parquet => Self::Parquet(
                Box::new(
                    datafusion::parquet::arrow::ArrowWriter::try_new(
                        buf.clone(),
                        Arc::clone(schema),
                        None,
                    )
                    .map_err(|e| ArrowError::ExternalError(Box::new(e)))?,
                ),
                buf,
            ),
        })
    }

    /// `batch` written; what is ready to send.
    fn write(&mut self, batch: &RecordBatch) -> Result<Bytes, ArrowError> {
        match self {
            Self::Json(w, buf) => {
                w.write(batch)?;
                Ok(buf.take())
            }
            Self::JsonLines(w, buf) => {
                w.write(batch)?;
                Ok(buf.take())
            }
            Self::Csv(w, buf) => {
                w.write(batch)?;
                Ok(buf.take())
            }
            Self::Parquet(w, buf) => {
                w.write(batch)
                    .map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
                Ok(buf.take())
            }
        }
    }

    /// The end of the answer (a JSON array's `]`, Parquet's footer).
    fn finish(self) -> Result<Bytes, ArrowError> {
        match self {
            Self::Json(mut w, buf) => {
                w.finish()?;
                let out = buf.take();
                // An empty answer is an empty array, as InfluxDB 3 answers it.
                Ok(if out.is_empty() {
                    Bytes::from_static(b"[]")
                } else {
                    out
                })
            }
            Self::JsonLines(mut w, buf) => {
                w.finish()?;
                Ok(buf.take())
            }
            Self::Csv(w, buf) => {
                drop(w);
                Ok(buf.take())
            }
            Self::Parquet(w, buf) => {
                w.close()
                    .map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
                Ok(buf.take())
            }
        }
    }
}

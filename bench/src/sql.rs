//! SQL over Arrow Flight SQL, as an ADBC or JDBC client sends it (`GetFlightInfo` with the
//! statement, then `DoGet` of each endpoint's ticket), and answers of both languages as rows
//! that compare: InfluxQL's series (their tags merged into each row, empty buckets dropped)
//! against SQL's record batches (nulls dropped, times as nanoseconds).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::DataType;
use arrow_flight::sql::client::FlightSqlServiceClient;
use futures::TryStreamExt;
use serde_json::Value;
use tonic::transport::Channel;

/// A Flight SQL connection to one server, its database set by the `database` header.
#[derive(Debug, Clone)]
pub struct SqlClient {
    client: FlightSqlServiceClient<Channel>,
}

impl SqlClient {
    /// `url`: the server's HTTP API (`http://host:8086`), where Fletch also serves gRPC.
    pub async fn connect(url: &str, db: &str) -> Result<Self, String> {
        let channel = tonic::transport::Endpoint::from_shared(url.to_string())
            .map_err(|e| format!("{url}: {e}"))?
            .tcp_nodelay(true)
            .connect()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let mut client = FlightSqlServiceClient::new(channel);
        client.set_header("database", db);
        Ok(Self { client })
    }

    /// `sql`'s answer and how long it took, every batch read.
    pub async fn run(&mut self, sql: &str) -> Result<(Duration, Vec<RecordBatch>), String> {
        let t0 = Instant::now();
        let mut batches = Vec::new();
        for mut stream in self.streams(sql).await? {
            while let Some(b) = stream.try_next().await.map_err(|e| e.to_string())? {
                batches.push(b);
            }
        }
        Ok((t0.elapsed(), batches))
    }

    /// `sql`'s rows: how long to the first batch and to the last, and how many rows, every
    /// batch read (for throughput: nothing is converted).
    pub async fn count(&mut self, sql: &str) -> Result<(Duration, Duration, u64), String> {
        let t0 = Instant::now();
        let (mut rows, mut first) = (0u64, None);
        for mut stream in self.streams(sql).await? {
            while let Some(b) = stream.try_next().await.map_err(|e| e.to_string())? {
                first.get_or_insert(t0.elapsed());
                rows += b.num_rows() as u64;
            }
        }
        Ok((first.unwrap_or_default(), t0.elapsed(), rows))
    }

    /// `GetFlightInfo` of `sql`, then a `DoGet` of each endpoint's ticket.
    async fn streams(
        &mut self,
        sql: &str,
    ) -> Result<Vec<arrow_flight::decode::FlightRecordBatchStream>, String> {
        let info = self
            .client
            .execute(sql.to_string(), None)
            .await
            .map_err(|e| e.to_string())?;
        let mut streams = Vec::new();
        for endpoint in info.endpoint {
            let ticket = endpoint.ticket.ok_or("an endpoint without a ticket")?;
            streams.push(
                self.client
                    .do_get(ticket)
                    .await
                    .map_err(|e| e.to_string())?,
            );
        }
        Ok(streams)
    }
}

/// A row: column name to value (absent: null).
pub type Row = BTreeMap<String, Value>;

/// SQL's batches as rows; timestamps as nanoseconds, tags (dictionaries) as strings.
pub fn sql_rows(batches: &[RecordBatch]) -> Result<Vec<Row>, String> {
    let mut out = Vec::new();
    for b in batches {
        let mut columns = Vec::with_capacity(b.num_columns());
        for c in b.columns() {
            columns.push(match c.data_type() {
                DataType::Timestamp(..) => {
                    arrow::compute::cast(c, &DataType::Int64).map_err(|e| e.to_string())?
                }
                _ => c.clone(),
            });
        }
        let b = RecordBatch::try_new(
            std::sync::Arc::new(arrow::datatypes::Schema::new(
                b.schema()
                    .fields()
                    .iter()
                    .zip(&columns)
                    .map(|(f, c)| {
                        arrow::datatypes::Field::new(f.name(), c.data_type().clone(), true)
                    })
                    .collect::<Vec<_>>(),
            )),
            columns,
        )
        .map_err(|e| e.to_string())?;
        let mut w = arrow_json::ArrayWriter::new(Vec::new());
        w.write(&b).map_err(|e| e.to_string())?;
        w.finish().map_err(|e| e.to_string())?;
        let rows: Vec<Row> = serde_json::from_slice(&w.into_inner()).map_err(|e| e.to_string())?;
        out.extend(rows);
    }
    Ok(out)
}

/// An InfluxQL answer (`/query` JSON with `epoch=ns`) as rows: each series' tags merged in,
/// nulls dropped, and rows without any value (empty `GROUP BY time` buckets) dropped.
pub fn influxql_rows(answer: &Value) -> Vec<Row> {
    let mut out = Vec::new();
    let series = answer["results"][0]["series"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for s in series {
        let columns: Vec<String> = s["columns"]
            .as_array()
            .map(|c| {
                c.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        for values in s["values"].as_array().into_iter().flatten() {
            let Some(values) = values.as_array() else {
                continue;
            };
            let mut row = Row::new();
            let mut any = false;
            for (c, v) in columns.iter().zip(values) {
                if v.is_null() {
                    continue;
                }
                any |= c != "time";
                row.insert(c.clone(), v.clone());
            }
            if !any {
                continue;
            }
            if let Some(tags) = s["tags"].as_object() {
                for (k, v) in tags {
                    if !v.as_str().unwrap_or("").is_empty() {
                        row.insert(k.clone(), v.clone());
                    }
                }
            }
            out.push(row);
        }
    }
    out
}

/// A sort key for a row, numbers rounded so that the same row sorts the same in both answers
/// (InfluxQL's JSON writes 87.0 as `87`, Arrow's as `87.0`). Time leads.
fn key(row: &Row) -> String {
    let time = row.get("time").map(|t| t.to_string()).unwrap_or_default();
    let rest = row
        .iter()
        .map(|(k, v)| match v {
            Value::Number(n) if k != "time" => format!("{k}={:.6e}", n.as_f64().unwrap_or(0.0)),
            v => format!("{k}={v}"),
        })
        .collect::<Vec<_>>()
        .join(",");
    format!("{time:0>20}|{rest}")
}

/// Whether SQL's rows hold the numbers InfluxQL's do (in any order; numbers within a relative
/// 1e-9). A SQL answer without `time` (a selector of several fields, whose time InfluxQL
/// reports as 0) is compared without it. `Err` says how they differ.
pub fn same_rows(sql: &[Row], influxql: &[Row]) -> Result<(), String> {
    let drop_time = sql.first().is_some_and(|r| !r.contains_key("time"));
    let mut a: Vec<Row> = sql.to_vec();
    let mut b: Vec<Row> = influxql
        .iter()
        .map(|r| {
            let mut r = r.clone();
            if drop_time {
                r.remove("time");
            }
            r
        })
        .collect();
    if a.len() != b.len() {
        return Err(format!("{} rows in SQL, {} in InfluxQL", a.len(), b.len()));
    }
    a.sort_by_key(key);
    b.sort_by_key(key);
    for (x, y) in a.iter().zip(&b) {
        let same = x.len() == y.len()
            && x.iter()
                .all(|(k, v)| y.get(k).is_some_and(|w| crate::query::same_answer(v, w)));
        if !same {
            return Err(format!("SQL row {x:?} differs from InfluxQL row {y:?}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_compare_across_the_languages() {
        let answer = serde_json::json!({"results": [{"series": [
            {"name": "cpu", "tags": {"hostname": "host_0"}, "columns": ["time", "mean"],
             "values": [[0, 1.5], [3600, null]]},
            {"name": "cpu", "tags": {"hostname": "host_1"}, "columns": ["time", "mean"],
             "values": [[0, 2.0]]}
        ]}]});
        let iql = influxql_rows(&answer);
        assert_eq!(iql.len(), 2, "the empty bucket is dropped");
        let row = |h: &str, m: f64| -> Row {
            serde_json::from_value(serde_json::json!({"time": 0, "hostname": h, "mean": m}))
                .unwrap()
        };
        assert!(same_rows(&[row("host_1", 2.0), row("host_0", 1.5)], &iql).is_ok());
        assert!(same_rows(&[row("host_1", 2.0), row("host_0", 1.6)], &iql).is_err());
        assert!(same_rows(&[row("host_1", 2.0)], &iql).is_err());
    }
}

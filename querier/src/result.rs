//! A statement's answer as Arrow: what the querier produces and the gateway formats.
//!
//! ```text
//!  Executor::run ─▶ AnswerStream: Item::Messages? Item::Series* Item::End, per statement
//!     Series = 1.x's series shape (name, tags, column names) over a RecordBatch, a piece of a
//!              series at a time: consecutive items with the same name and tags are one series
//!  gateway::format ─▶ JSON | chunked JSON | CSV (times per `epoch`, cells as 1.x prints them)
//! ```
//!
//! A `time` column is `Timestamp(Nanosecond, tz)`, the zone being the statement's `tz()` (the
//! formatter writes RFC3339 with that zone's offset, or an integer in the `epoch` unit). Tag
//! values selected as columns come as plain `Utf8`, never dictionaries. Answers built from the
//! catalog (`SHOW DATABASES`, ...) are small: [`Series::from_rows`] types their columns from
//! JSON values, refusing a column that mixes kinds.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, ListBuilder, RecordBatch,
    RecordBatchOptions, StringBuilder, UInt64Builder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::executor::ExecError;

/// Rows of one series of an answer, in order: 1.x's name, tags and column names over one
/// Arrow column per name.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: Option<String>,
    pub tags: Option<BTreeMap<String, String>>,
    pub columns: Vec<String>,
    /// One column per entry of `columns`, in that order.
    pub batch: RecordBatch,
}

impl Series {
    /// A series of `columns` over `batch` (whose fields are renamed after `columns`; names may
    /// repeat in an answer, so the batch's own names are not used).
    pub fn new(
        name: Option<String>,
        tags: Option<BTreeMap<String, String>>,
        columns: Vec<String>,
        batch: RecordBatch,
    ) -> Self {
        Self {
            name,
            tags,
            columns,
            batch,
        }
    }

    /// A series built from rows of JSON values (answers made from the catalog). Each column
    /// takes the kind of its values: integers, floats, booleans or strings; a column of nulls
    /// only is text. A column that mixes kinds is a bug of its statement, refused.
    pub fn from_rows(
        name: Option<String>,
        tags: Option<BTreeMap<String, String>>,
        columns: Vec<String>,
        rows: Vec<Vec<Value>>,
    ) -> Result<Self, ExecError> {
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns.len());
        let mut fields = Vec::with_capacity(columns.len());
        for (c, col) in columns.iter().enumerate() {
            let cells: Vec<&Value> = rows
                .iter()
                .map(|r| r.get(c).unwrap_or(&Value::Null))
                .collect();
            let array = column_of(&cells).ok_or_else(|| {
                ExecError::Internal(format!("column {col} of {name:?} mixes kinds of values"))
            })?;
            fields.push(Field::new(col, array.data_type().clone(), true));
            arrays.push(array);
        }
        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new_with_options(
            schema,
            arrays,
            &RecordBatchOptions::new().with_row_count(Some(rows.len())),
        )?;
        Ok(Self::new(name, tags, columns, batch))
    }

    pub fn num_rows(&self) -> usize {
        self.batch.num_rows()
    }

    /// The bytes of Arrow data this piece spans (a slice counts its own rows only).
    pub fn memory_size(&self) -> usize {
        self.batch
            .columns()
            .iter()
            .map(|a| {
                a.to_data()
                    .get_slice_memory_size()
                    .unwrap_or_else(|_| a.get_array_memory_size())
            })
            .sum()
    }

    /// Whether `other` continues this series (same name and tags).
    pub fn same_series(&self, other: &Series) -> bool {
        self.name == other.name && self.tags == other.tags
    }
}

/// One column from JSON cells of one kind.
fn column_of(cells: &[&Value]) -> Option<ArrayRef> {
    let present = || cells.iter().filter(|v| !v.is_null());
    let all = |f: fn(&Value) -> bool| present().all(|v| f(v));
    Some(if present().next().is_none() || all(Value::is_string) {
        let mut b = StringBuilder::new();
        cells.iter().for_each(|v| b.append_option(v.as_str()));
        Arc::new(b.finish())
    } else if all(Value::is_boolean) {
        let mut b = BooleanBuilder::new();
        cells.iter().for_each(|v| b.append_option(v.as_bool()));
        Arc::new(b.finish())
    } else if all(Value::is_i64) {
        let mut b = Int64Builder::new();
        cells.iter().for_each(|v| b.append_option(v.as_i64()));
        Arc::new(b.finish())
    } else if all(Value::is_u64) {
        let mut b = UInt64Builder::new();
        cells.iter().for_each(|v| b.append_option(v.as_u64()));
        Arc::new(b.finish())
    } else if all(Value::is_number) {
        let mut b = Float64Builder::new();
        cells.iter().for_each(|v| b.append_option(v.as_f64()));
        Arc::new(b.finish())
    } else if all(|v| v.as_array().is_some_and(|a| a.iter().all(Value::is_string))) {
        // Lists of strings (`SHOW SUBSCRIPTIONS`' destinations).
        let mut b = ListBuilder::new(StringBuilder::new());
        for v in cells {
            match v.as_array() {
                Some(items) => {
                    items
                        .iter()
                        .for_each(|i| b.values().append_option(i.as_str()));
                    b.append(true);
                }
                None => b.append(false),
            }
        }
        Arc::new(b.finish())
    } else {
        return None;
    })
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Message {
    pub level: String,
    pub text: String,
}

/// What a query's answer streams, statement by statement, in order.
#[derive(Debug)]
pub enum Item {
    /// Statement `statement_id`'s messages, before its series.
    Messages {
        statement_id: usize,
        messages: Vec<Message>,
    },
    /// Rows of one series of statement `statement_id`; a series may come in several items in
    /// a row (the same name and tags).
    Series { statement_id: usize, series: Series },
    /// Statement `statement_id` is done, or failed with `error` (1.x's text).
    End {
        statement_id: usize,
        error: Option<String>,
    },
}

/// How 1.x cuts a statement's answer into the lines of a chunked response. It depends on the
/// statement: 1.x answers some through its `SELECT` emitter and others all at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkShape {
    /// At most `chunk_size` rows a line, one series a line, `partial` marks (`SELECT`, and
    /// the statements 1.x runs as one: `SHOW SERIES`, `SHOW FIELD KEYS`, exact cardinalities).
    Rows,
    /// A line per series, whole, without `partial` marks (`SHOW TAG KEYS`, `SHOW TAG VALUES`).
    SeriesApart,
    /// The whole statement in one line (every other statement).
    Whole,
}

impl ChunkShape {
    pub fn of(stmt: &crate::influxql::Statement) -> Self {
        use crate::influxql::Statement as S;
        match stmt {
            S::Select(_) | S::ShowSeries(_) | S::ShowFieldKeys(_) => Self::Rows,
            S::ShowTagKeys(_) | S::ShowTagValues { .. } => Self::SeriesApart,
            S::ShowCardinality { exact, inner } => {
                if crate::show::is_estimate(*exact, inner) {
                    Self::Whole
                } else {
                    Self::Rows
                }
            }
            _ => Self::Whole,
        }
    }
}

/// The answer of a query as it is produced (a chunked answer): a bounded channel, so a slow reader holds the
/// statement back instead of the server buffering its answer. Dropping it stops the query.
pub type AnswerStream = mpsc::Receiver<Item>;

/// One statement's whole answer (a collected [`AnswerStream`]).
#[derive(Debug, Clone, Default)]
pub struct StatementResult {
    pub statement_id: usize,
    /// The series, each whole (pieces of one series merged).
    pub series: Vec<Series>,
    pub messages: Vec<Message>,
    pub error: Option<String>,
}

impl StatementResult {
    pub fn error(statement_id: usize, error: impl Into<String>) -> Self {
        Self {
            statement_id,
            error: Some(error.into()),
            ..Default::default()
        }
    }
}

/// Reads a whole answer's items: each statement's series with their pieces merged, messages,
/// error.
pub fn collect_items(
    items: impl IntoIterator<Item = Item>,
) -> Result<Vec<StatementResult>, ExecError> {
    let mut out: Vec<StatementResult> = Vec::new();
    let mut pieces: Vec<Series> = Vec::new();
    let result_of = |out: &mut Vec<StatementResult>, id: usize| -> usize {
        if out.last().is_none_or(|r| r.statement_id != id) {
            out.push(StatementResult {
                statement_id: id,
                ..Default::default()
            });
        }
        out.len() - 1
    };
    for item in items {
        match item {
            Item::Messages {
                statement_id,
                messages,
            } => {
                let i = result_of(&mut out, statement_id);
                out[i].messages.extend(messages);
            }
            Item::Series {
                statement_id,
                series,
            } => {
                result_of(&mut out, statement_id);
                pieces.push(series);
            }
            Item::End {
                statement_id,
                error,
            } => {
                let i = result_of(&mut out, statement_id);
                let series = merge_runs(std::mem::take(&mut pieces))?;
                match error {
                    // 1.x answers a failed statement with its error alone.
                    Some(e) => out[i].error = Some(e),
                    None => out[i].series = series,
                }
            }
        }
    }
    Ok(out)
}

/// Consecutive pieces of the same series merged: each series whole.
fn merge_runs(pieces: Vec<Series>) -> Result<Vec<Series>, ExecError> {
    let mut out = Vec::new();
    let mut run: Vec<Series> = Vec::new();
    for p in pieces {
        if run.last().is_some_and(|r| !r.same_series(&p)) {
            out.push(merge(std::mem::take(&mut run))?);
        }
        run.push(p);
    }
    if !run.is_empty() {
        out.push(merge(run)?);
    }
    Ok(out)
}

/// Pieces of one series as one.
pub fn merge(mut pieces: Vec<Series>) -> Result<Series, ExecError> {
    if pieces.len() == 1 {
        return Ok(pieces.remove(0));
    }
    let Some(first) = pieces.first() else {
        return Err(ExecError::Internal("a series of no pieces".into()));
    };
    let schema = first.batch.schema();
    let batches: Vec<&RecordBatch> = pieces.iter().map(|p| &p.batch).collect();
    let batch = datafusion::arrow::compute::concat_batches(&schema, batches)?;
    let first = pieces.swap_remove(0);
    Ok(Series { batch, ..first })
}

/// The Arrow type of a series' `time` column in statement time zone `tz`.
pub fn time_type(tz: Option<&str>) -> DataType {
    DataType::Timestamp(
        datafusion::arrow::datatypes::TimeUnit::Nanosecond,
        tz.map(Arc::from),
    )
}

/// Where a statement sends its series pieces: the answer's channel, or a list (subqueries,
/// `INTO`, a whole answer; within a budget of bytes). It applies SOFFSET and SLIMIT, which
/// count series over the whole statement.
pub(crate) struct SeriesSink {
    target: Target,
    statement_id: usize,
    skip: usize,
    take: usize,
    /// Series started so far, and the name and tags of the last one.
    seen: usize,
    /// Rows sent so far.
    rows: u64,
    /// A list's budget of Arrow bytes (0: none), and what it holds.
    max_bytes: usize,
    held: usize,
    last: Option<(Option<String>, Option<BTreeMap<String, String>>)>,
}

enum Target {
    Channel(mpsc::Sender<Item>),
    List(Vec<Series>),
}

impl SeriesSink {
    pub(crate) fn channel(tx: mpsc::Sender<Item>, statement_id: usize) -> Self {
        Self::new(Target::Channel(tx), statement_id)
    }

    pub(crate) fn list() -> Self {
        Self::list_within(0)
    }

    /// A list that holds at most `max_bytes` of Arrow data (0: no limit): past it, sending
    /// fails with [`ExecError::AnswerTooLarge`].
    pub(crate) fn list_within(max_bytes: usize) -> Self {
        let mut sink = Self::new(Target::List(Vec::new()), 0);
        sink.max_bytes = max_bytes;
        sink
    }

    fn new(target: Target, statement_id: usize) -> Self {
        Self {
            target,
            statement_id,
            skip: 0,
            take: usize::MAX,
            seen: 0,
            rows: 0,
            max_bytes: 0,
            held: 0,
            last: None,
        }
    }

    /// Whether nothing has been sent yet.
    pub(crate) fn is_untouched(&self) -> bool {
        self.seen == 0
    }

    /// SOFFSET and SLIMIT of the statement.
    pub(crate) fn limit_series(&mut self, skip: usize, take: usize) {
        self.skip = skip;
        self.take = take;
    }

    /// Sends a piece of a series; answers whether more series are wanted (false once SLIMIT
    /// series were sent). Fails when the reader of the answer has gone.
    pub(crate) async fn send(&mut self, series: Series) -> Result<bool, ExecError> {
        let continues = self
            .last
            .as_ref()
            .is_some_and(|(n, t)| *n == series.name && *t == series.tags);
        if !continues {
            self.seen += 1;
            self.last = Some((series.name.clone(), series.tags.clone()));
        }
        let index = self.seen - 1;
        if index >= self.skip.saturating_add(self.take) {
            return Ok(false);
        }
        if index < self.skip {
            return Ok(true);
        }
        self.rows += series.num_rows() as u64;
        match &mut self.target {
            Target::List(list) => {
                if self.max_bytes > 0 {
                    self.held = self.held.saturating_add(series.memory_size());
                    if self.held > self.max_bytes {
                        return Err(ExecError::AnswerTooLarge {
                            max_bytes: self.max_bytes,
                        });
                    }
                }
                list.push(series)
            }
            Target::Channel(tx) => tx
                .send(Item::Series {
                    statement_id: self.statement_id,
                    series,
                })
                .await
                .map_err(|_| ExecError::Cancelled)?,
        }
        Ok(true)
    }

    /// Rows sent so far (of the series SOFFSET and SLIMIT let through).
    pub(crate) fn rows_sent(&self) -> u64 {
        self.rows
    }

    /// A list sink's pieces, as sent.
    pub(crate) fn into_pieces(self) -> Vec<Series> {
        match self.target {
            Target::List(pieces) => pieces,
            Target::Channel(_) => Vec::new(),
        }
    }

    /// A list sink's series, each whole (pieces merged).
    pub(crate) fn into_series(self) -> Result<Vec<Series>, ExecError> {
        merge_runs(self.into_pieces())
    }
}

/// A small answer built from the catalog, as rows of JSON values; made a [`Series`] with
/// [`Series::from_rows`] when it is sent.
#[derive(Debug, Clone, Default)]
pub(crate) struct RowSeries {
    pub name: Option<String>,
    pub tags: Option<BTreeMap<String, String>>,
    pub columns: Vec<String>,
    pub values: Vec<Vec<Value>>,
}

impl RowSeries {
    pub(crate) fn into_series(self) -> Result<Series, ExecError> {
        Series::from_rows(self.name, self.tags, self.columns, self.values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(name: &str, tag: &str, rows: i64) -> Series {
        let batch = RecordBatch::try_from_iter(vec![(
            "v",
            Arc::new(datafusion::arrow::array::Int64Array::from_iter_values(
                0..rows,
            )) as ArrayRef,
        )])
        .unwrap();
        Series::new(
            Some(name.into()),
            Some([("h".to_string(), tag.to_string())].into()),
            vec!["v".into()],
            batch,
        )
    }

    #[test]
    fn collect_merges_pieces_and_an_error_replaces_the_series() {
        let items = vec![
            Item::Series {
                statement_id: 0,
                series: piece("m", "a", 2),
            },
            Item::Series {
                statement_id: 0,
                series: piece("m", "a", 3),
            },
            Item::Series {
                statement_id: 0,
                series: piece("m", "b", 1),
            },
            Item::End {
                statement_id: 0,
                error: None,
            },
            Item::Series {
                statement_id: 1,
                series: piece("m", "a", 1),
            },
            Item::End {
                statement_id: 1,
                error: Some("boom".into()),
            },
        ];
        let out = collect_items(items).unwrap();
        let rows: Vec<usize> = out[0].series.iter().map(Series::num_rows).collect();
        assert_eq!(rows, [5, 1]);
        assert!(out[1].series.is_empty());
        assert_eq!(out[1].error.as_deref(), Some("boom"));
    }

    #[tokio::test]
    async fn slimit_and_soffset_count_series_not_pieces() {
        let mut sink = SeriesSink::list();
        sink.limit_series(1, 1);
        assert!(sink.send(piece("m", "a", 2)).await.unwrap());
        assert!(sink.send(piece("m", "a", 2)).await.unwrap());
        assert!(sink.send(piece("m", "b", 2)).await.unwrap());
        assert!(sink.send(piece("m", "b", 3)).await.unwrap());
        assert!(!sink.send(piece("m", "c", 1)).await.unwrap(), "past SLIMIT");
        assert_eq!(sink.rows_sent(), 5);
        let series = sink.into_series().unwrap();
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].tags.as_ref().unwrap()["h"], "b");
        assert_eq!(series[0].num_rows(), 5);
    }

    #[test]
    fn rows_of_json_take_the_kind_of_their_values() {
        use serde_json::json;
        let s = Series::from_rows(
            None,
            None,
            vec!["i".into(), "f".into(), "s".into(), "b".into(), "n".into()],
            vec![
                vec![json!(1), json!(1.5), json!("x"), json!(true), Value::Null],
                vec![Value::Null, json!(2), json!("y"), json!(false), Value::Null],
            ],
        )
        .unwrap();
        let types: Vec<DataType> = s
            .batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        assert_eq!(
            types,
            [
                DataType::Int64,
                DataType::Float64,
                DataType::Utf8,
                DataType::Boolean,
                DataType::Utf8
            ]
        );
        let mixed = Series::from_rows(
            None,
            None,
            vec!["x".into()],
            vec![vec![json!(1)], vec![json!("a")]],
        );
        assert!(mixed.is_err());
    }
}

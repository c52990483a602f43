//! Answers as InfluxDB 1.x bodies: the querier's Arrow series formatted at the edge, as JSON
//! (whole), chunked JSON (streamed as the query produces rows) or CSV.
//!
//! ```text
//!  AnswerStream ─┬─ collect ─▶ 10000-value `partial` marks, max-row-limit ─▶ JSON | CSV
//!                └─ Chunker: at most chunk_size values a line, one series a line ─▶ chunked JSON
//! ```
//!
//! Cells are printed as 1.x prints them: integral floats without a fraction, times as RFC3339
//! (in the statement's `tz()` zone, with its offset) or as integers in the `epoch` unit,
//! booleans and strings as JSON has them. A series' first column is its time when it is a
//! timestamp.

use std::collections::VecDeque;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{
    DataType, Float64Type, Int64Type, TimeUnit, TimestampNanosecondType, UInt64Type,
};
use bytes::Bytes;
use querier::{AnswerStream, ChunkShape, Item, Message, Series, StatementResult};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::Value;

/// How cells are printed.
#[derive(Debug, Clone, Default)]
pub struct FormatOptions {
    /// The `epoch` parameter: times as integers in this unit instead of RFC3339.
    pub epoch: Option<String>,
}

/// How one series' time column prints.
#[derive(Debug, Clone, Copy)]
enum TimeFormat {
    /// Integers: nanoseconds divided by this.
    Epoch(i64),
    Rfc3339,
    Zoned(chrono_tz::Tz),
}

impl TimeFormat {
    fn of(series: &Series, opts: &FormatOptions) -> Option<Self> {
        let tz = match series.batch.schema().fields().first()?.data_type() {
            DataType::Timestamp(TimeUnit::Nanosecond, tz) => tz.clone(),
            _ => return None,
        };
        let div = match opts.epoch.as_deref() {
            Some("ns") | Some("n") => 1,
            Some("u") | Some("µ") | Some("us") => 1_000,
            Some("ms") => 1_000_000,
            Some("s") => 1_000_000_000,
            Some("m") => 60_000_000_000,
            Some("h") => 3_600_000_000_000,
            _ => 0,
        };
        Some(if div > 0 {
            TimeFormat::Epoch(div)
        } else {
            match tz.and_then(|z| z.parse::<chrono_tz::Tz>().ok()) {
                Some(zone) => TimeFormat::Zoned(zone),
                None => TimeFormat::Rfc3339,
            }
        })
    }

    fn value(self, t: i64) -> Value {
        match self {
            TimeFormat::Epoch(div) => Value::from(t.div_euclid(div)),
            TimeFormat::Rfc3339 => Value::from(rfc3339_utc(t)),
            TimeFormat::Zoned(zone) => Value::from(rfc3339_in(t, zone)),
        }
    }
}

/// Row `r` of column `c` of `series`, as 1.x prints it.
fn cell(series: &Series, time: Option<TimeFormat>, c: usize, r: usize) -> Value {
    let a = series.batch.column(c);
    match (c, time) {
        (0, Some(f)) if !a.is_null(r) => {
            f.value(a.as_primitive::<TimestampNanosecondType>().value(r))
        }
        _ => json_cell(a, r),
    }
}

/// A float as 1.x prints it: integral values without a fraction.
fn json_number(f: f64) -> Value {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 {
        Value::from(f as i64)
    } else {
        serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

fn json_cell(a: &ArrayRef, r: usize) -> Value {
    // A column of nulls only (a field of another measurement in `SELECT *`) has no null
    // buffer: its cells are null all the same.
    if a.is_null(r) || a.data_type() == &DataType::Null {
        return Value::Null;
    }
    match a.data_type() {
        DataType::Float64 => json_number(a.as_primitive::<Float64Type>().value(r)),
        DataType::Int64 => Value::from(a.as_primitive::<Int64Type>().value(r)),
        DataType::UInt64 => Value::from(a.as_primitive::<UInt64Type>().value(r)),
        DataType::Boolean => Value::from(a.as_boolean().value(r)),
        DataType::Utf8 => Value::from(a.as_string::<i32>().value(r)),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            Value::from(a.as_primitive::<TimestampNanosecondType>().value(r))
        }
        DataType::List(_) => {
            let items = a.as_list::<i32>().value(r);
            Value::Array((0..items.len()).map(|i| json_cell(&items, i)).collect())
        }
        DataType::Struct(fields) => {
            let st = a.as_struct();
            Value::Object(
                fields
                    .iter()
                    .enumerate()
                    .map(|(i, f)| (f.name().clone(), json_cell(st.column(i), r)))
                    .collect(),
            )
        }
        // Anything else as text, one cell at a time.
        _ => arrow::util::display::array_value_to_string(a, r)
            .map(Value::from)
            .unwrap_or(Value::Null),
    }
}

/// `t` as RFC3339 in UTC with as many fraction digits as needed (none for a whole second), as
/// 1.x prints times. Written digit by digit: a result of raw points formats one per row, and
/// chrono's `format` parses its pattern and allocates on every call. Every `i64` of
/// nanoseconds falls in the years 1677-2262, so the year has four digits.
pub fn rfc3339_utc(t: i64) -> String {
    let dt = chrono::DateTime::from_timestamp_nanos(t);
    let mut out = rfc3339_local(&dt, t);
    out.push('Z');
    out
}

/// RFC3339 in a time zone, with the zone's offset (`tz('Europe/Oslo')`).
fn rfc3339_in(t: i64, tz: chrono_tz::Tz) -> String {
    use chrono::Offset;
    let dt = chrono::DateTime::from_timestamp_nanos(t).with_timezone(&tz);
    let mut out = rfc3339_local(&dt, t);
    // `+HH:MM` as chrono's `%:z` writes it (a historical offset's seconds rounded to the
    // nearest minute).
    let offset = dt.offset().fix().local_minus_utc();
    out.push(if offset < 0 { '-' } else { '+' });
    let minutes = (offset.unsigned_abs() + 30) / 60;
    push_digits(&mut out, minutes / 60, 2);
    out.push(':');
    push_digits(&mut out, minutes % 60, 2);
    out
}

/// The date and time of `dt` (whose instant is `t`) without a zone: `YYYY-MM-DDTHH:MM:SS`
/// and the fraction of a second, its trailing zeros dropped.
fn rfc3339_local<Tz: chrono::TimeZone>(dt: &chrono::DateTime<Tz>, t: i64) -> String {
    use chrono::{Datelike, Timelike};
    let mut out = String::with_capacity(36);
    let year = dt.year();
    if year < 0 {
        out.push('-');
    }
    push_digits(&mut out, year.unsigned_abs(), 4);
    out.push('-');
    push_digits(&mut out, dt.month(), 2);
    out.push('-');
    push_digits(&mut out, dt.day(), 2);
    out.push('T');
    push_digits(&mut out, dt.hour(), 2);
    out.push(':');
    push_digits(&mut out, dt.minute(), 2);
    out.push(':');
    push_digits(&mut out, dt.second(), 2);
    let mut nanos = t.rem_euclid(1_000_000_000) as u32;
    if nanos > 0 {
        let mut width = 9;
        while nanos % 10 == 0 {
            nanos /= 10;
            width -= 1;
        }
        out.push('.');
        push_digits(&mut out, nanos, width);
    }
    out
}

/// `n` in decimal, zero-padded to `width` digits.
fn push_digits(out: &mut String, mut n: u32, width: usize) {
    let mut buf = [b'0'; 10];
    let mut i = width;
    while i > 0 {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend(buf[..width].iter().map(|b| char::from(*b)));
}

/// Rows `from..to` of some pieces of one series, serialized as `values`.
struct Values<'a> {
    pieces: &'a [Series],
    opts: &'a FormatOptions,
}

impl Serialize for Values<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let rows = self.pieces.iter().map(Series::num_rows).sum();
        let mut seq = s.serialize_seq(Some(rows))?;
        for p in self.pieces {
            let time = TimeFormat::of(p, self.opts);
            let ncols = p.batch.num_columns();
            for r in 0..p.num_rows() {
                let row: Vec<Value> = (0..ncols).map(|c| cell(p, time, c, r)).collect();
                seq.serialize_element(&row)?;
            }
        }
        seq.end()
    }
}

/// One series (its pieces) as 1.x's JSON object.
struct SeriesJson<'a> {
    pieces: &'a [Series],
    partial: bool,
    opts: &'a FormatOptions,
}

impl Serialize for SeriesJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Some(first) = self.pieces.first() else {
            return s.serialize_none();
        };
        let rows: usize = self.pieces.iter().map(Series::num_rows).sum();
        let mut m = s.serialize_map(None)?;
        if let Some(name) = &first.name {
            m.serialize_entry("name", name)?;
        }
        if let Some(tags) = &first.tags {
            m.serialize_entry("tags", tags)?;
        }
        m.serialize_entry("columns", &first.columns)?;
        if rows > 0 {
            m.serialize_entry(
                "values",
                &Values {
                    pieces: self.pieces,
                    opts: self.opts,
                },
            )?;
        }
        if self.partial {
            m.serialize_entry("partial", &true)?;
        }
        m.end()
    }
}

/// One statement's result as 1.x's JSON object.
struct ResultJson<'a> {
    statement_id: usize,
    /// Each series whole (one piece) with its `partial` mark.
    series: Vec<SeriesJson<'a>>,
    messages: &'a [Message],
    error: Option<&'a str>,
    partial: bool,
}

impl Serialize for ResultJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("statement_id", &self.statement_id)?;
        if !self.series.is_empty() {
            m.serialize_entry("series", &self.series)?;
        }
        if !self.messages.is_empty() {
            m.serialize_entry("messages", self.messages)?;
        }
        if let Some(e) = self.error {
            m.serialize_entry("error", e)?;
        }
        if self.partial {
            m.serialize_entry("partial", &true)?;
        }
        m.end()
    }
}

/// `{"results": [...]}`.
struct Body<'a>(Vec<ResultJson<'a>>);

impl Serialize for Body<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("results", &self.0)?;
        m.end()
    }
}

fn to_json(value: &impl Serialize, pretty: bool) -> Vec<u8> {
    let mut buf = Vec::new();
    let written = if pretty {
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
        value.serialize(&mut ser)
    } else {
        serde_json::to_writer(&mut buf, value)
    };
    if let Err(e) = written {
        buf = serde_json::json!({ "error": e.to_string() })
            .to_string()
            .into_bytes();
    }
    buf.push(b'\n');
    buf
}

/// A whole (non-chunked) answer as 1.x's JSON body: a series of more than 10000 values is
/// marked `partial` even when sent whole (1.x does), and past `max_rows` (0: no limit) the
/// answer is cut as `[http] max-row-limit` cuts it.
pub fn json(
    results: &[StatementResult],
    max_rows: u64,
    pretty: bool,
    opts: &FormatOptions,
) -> Vec<u8> {
    let limit = usize::try_from(max_rows).ok().filter(|l| *l > 0);
    let mut rows = 0usize;
    // The series cut at the limit, sliced (zero-copy) and kept for the body to borrow.
    let mut cut: Vec<Series> = Vec::new();
    let mut plan: Vec<(usize, Vec<(usize, bool, bool)>)> = Vec::new();
    'results: for (i, r) in results.iter().enumerate() {
        let mut series = Vec::new();
        for (j, s) in r.series.iter().enumerate() {
            let n = s.num_rows();
            match limit {
                Some(limit) if rows + n >= limit => {
                    let keep = limit - rows;
                    let truncated = keep < n;
                    if truncated {
                        cut.push(Series {
                            batch: s.batch.slice(0, keep),
                            ..s.clone()
                        });
                    }
                    series.push((j, truncated, truncated || keep > 10_000));
                    plan.push((i, series));
                    break 'results;
                }
                _ => {
                    rows += n;
                    series.push((j, false, n > 10_000));
                }
            }
        }
        plan.push((i, series));
    }
    let mut cut = cut.iter();
    let body = Body(
        plan.into_iter()
            .map(|(i, series)| {
                let r = &results[i];
                ResultJson {
                    statement_id: r.statement_id,
                    series: series
                        .into_iter()
                        .map(|(j, truncated, partial)| SeriesJson {
                            pieces: if truncated {
                                cut.next().map(std::slice::from_ref).unwrap_or_default()
                            } else {
                                std::slice::from_ref(&r.series[j])
                            },
                            partial,
                            opts,
                        })
                        .collect(),
                    messages: &r.messages,
                    error: r.error.as_deref(),
                    partial: false,
                }
            })
            .collect(),
    );
    to_json(&body, pretty)
}

/// An answer of no statements: `{}`.
pub fn empty_json() -> Vec<u8> {
    b"{}\n".to_vec()
}

/// A tag key or value as a series key writes it: `,`, `=` and spaces backslash-escaped.
fn escape_tag(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains([',', '=', ' ']) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, ',' | '=' | ' ') {
            out.push('\\');
        }
        out.push(c);
    }
    std::borrow::Cow::Owned(out)
}

/// 1.x's CSV: `name,tags,<columns>` then one line per row; a statement's error prints nothing.
pub fn csv(results: &[StatementResult], opts: &FormatOptions) -> String {
    use shell::csv_field;
    let mut out = String::new();
    let mut last_header: Option<String> = None;
    for r in results {
        for s in &r.series {
            let header_line = format!(
                "name,tags,{}",
                s.columns
                    .iter()
                    .map(|c| csv_field(c))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            if last_header.as_deref() != Some(header_line.as_str()) {
                if last_header.is_some() {
                    out.push('\n');
                }
                out.push_str(&header_line);
                out.push('\n');
                last_header = Some(header_line);
            }
            let tags = s
                .tags
                .as_ref()
                .map(|t| {
                    // Escaped as in a series key (1.x: `t=x\ y`).
                    t.iter()
                        .map(|(k, v)| format!("{}={}", escape_tag(k), escape_tag(v)))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            let name = csv_field(s.name.as_deref().unwrap_or(""));
            let tags = csv_field(&tags);
            let time = TimeFormat::of(s, opts);
            for row in 0..s.num_rows() {
                let cells: Vec<String> = (0..s.batch.num_columns())
                    .map(|c| match cell(s, time, c, row) {
                        Value::String(s) => csv_field(&s),
                        Value::Null => String::new(),
                        // 1.x writes a value it has no CSV form for (the list of `SHOW
                        // SUBSCRIPTIONS`' destinations) as the column's name.
                        Value::Array(_) | Value::Object(_) => csv_field(&s.columns[c]),
                        other => other.to_string(),
                    })
                    .collect();
                out.push_str(&format!("{name},{tags},{}\n", cells.join(",")));
            }
        }
    }
    out
}

/// A chunked answer, cut as 1.x cuts it: at most `size` values a line, one series a line;
/// `partial` on a series that goes on in the next line and on every line of a statement but
/// its last; a statement's messages on its first line. Lines are made as the query produces
/// rows, one line ahead (its marks depend on what follows).
pub struct Chunker {
    answer: AnswerStream,
    size: usize,
    opts: FormatOptions,
    /// Pieces of the current series not yet in a line, and their rows.
    buf: VecDeque<Series>,
    buf_rows: usize,
    /// Statement of the current series / the last item.
    statement: usize,
    /// Messages for the statement's first line.
    messages: Vec<Message>,
    /// Whether the current statement has a line out (or held) yet.
    started: bool,
    /// The last line made, held until what follows decides its marks.
    held: Option<Line>,
    out: VecDeque<Bytes>,
    done: bool,
    /// How each statement is cut (by statement id; [`ChunkShape::Rows`] past the end).
    shapes: Vec<ChunkShape>,
}

/// A line not yet written: one piece list of one series.
struct Line {
    statement_id: usize,
    pieces: Vec<Series>,
    series_partial: bool,
    messages: Vec<Message>,
}

impl Chunker {
    pub fn new(answer: AnswerStream, size: usize, opts: FormatOptions) -> Self {
        Self {
            answer,
            size: size.max(1),
            opts,
            buf: VecDeque::new(),
            buf_rows: 0,
            statement: 0,
            messages: Vec::new(),
            started: false,
            held: None,
            out: VecDeque::new(),
            done: false,
            shapes: Vec::new(),
        }
    }

    /// Cuts statement `i` as `shapes[i]` says (1.x cuts statements differently by kind).
    pub fn with_shapes(mut self, shapes: Vec<ChunkShape>) -> Self {
        self.shapes = shapes;
        self
    }

    fn shape(&self, statement_id: usize) -> ChunkShape {
        self.shapes
            .get(statement_id)
            .copied()
            .unwrap_or(ChunkShape::Rows)
    }

    /// The body as a stream of lines.
    pub fn into_stream(
        self,
    ) -> impl futures::Stream<Item = Result<Bytes, std::convert::Infallible>> + Send {
        futures::stream::unfold(self, |mut c| async move {
            loop {
                if let Some(line) = c.out.pop_front() {
                    return Some((Ok(line), c));
                }
                if c.done {
                    return None;
                }
                match c.answer.recv().await {
                    Some(item) => c.take(item),
                    None => c.done = true,
                }
            }
        })
    }

    fn take(&mut self, item: Item) {
        match item {
            Item::Messages {
                statement_id,
                messages,
            } => {
                self.statement = statement_id;
                self.messages.extend(messages);
            }
            Item::Series {
                statement_id,
                series,
            } => {
                self.statement = statement_id;
                let shape = self.shape(statement_id);
                if shape != ChunkShape::Rows {
                    // Held until the series (SeriesApart) or the statement (Whole) ends.
                    if shape == ChunkShape::SeriesApart
                        && self.buf.front().is_some_and(|b| !b.same_series(&series))
                    {
                        self.write_buffered();
                    }
                    self.buf_rows += series.num_rows();
                    self.buf.push_back(series);
                    return;
                }
                if self.buf.front().is_some_and(|b| !b.same_series(&series)) {
                    self.cut_all();
                }
                self.buf_rows += series.num_rows();
                self.buf.push_back(series);
                // A full line is known to have more of its series after it only once a row
                // past it has come.
                while self.buf_rows > self.size {
                    self.cut(self.size, true);
                }
            }
            Item::End {
                statement_id,
                error,
            } if self.shape(statement_id) != ChunkShape::Rows => {
                // 1.x answers a failed statement of these kinds with its error alone.
                match error {
                    Some(e) => {
                        self.buf.clear();
                        self.buf_rows = 0;
                        self.write_result(statement_id, Some(&e));
                    }
                    None if self.buf.is_empty() && !self.started => {
                        self.write_result(statement_id, None)
                    }
                    None => self.write_buffered(),
                }
                self.started = false;
                self.messages.clear();
            }
            Item::End {
                statement_id,
                error,
            } => {
                self.cut_all();
                match error {
                    Some(e) => {
                        // Lines already out stay; the error ends the statement.
                        self.release(true);
                        self.write_result(statement_id, Some(&e));
                    }
                    None if !self.started => self.write_result(statement_id, None),
                    None => self.release(false),
                }
                self.started = false;
                self.messages.clear();
            }
        }
    }

    /// The rest of the current series as lines, the last one closing the series.
    fn cut_all(&mut self) {
        while self.buf_rows > self.size {
            self.cut(self.size, true);
        }
        if !self.buf.is_empty() {
            self.cut(self.buf_rows, false);
        }
    }

    /// A line of the next `n` buffered rows; `series_partial` when more of it follows.
    fn cut(&mut self, n: usize, series_partial: bool) {
        let mut pieces = Vec::new();
        let mut left = n;
        // Pieces without rows go along (a series without rows is a line of its own: its
        // name and columns).
        while let Some(front) = self.buf.pop_front() {
            let rows = front.num_rows();
            if rows <= left {
                left -= rows;
                pieces.push(front);
            } else if left == 0 {
                self.buf.push_front(front);
                break;
            } else {
                pieces.push(Series {
                    batch: front.batch.slice(0, left),
                    ..front.clone()
                });
                self.buf.push_front(Series {
                    batch: front.batch.slice(left, rows - left),
                    ..front
                });
                left = 0;
            }
        }
        self.buf_rows -= n - left;
        // The line before this one is not its statement's last.
        self.release(true);
        self.held = Some(Line {
            statement_id: self.statement,
            pieces,
            series_partial,
            messages: if self.started {
                Vec::new()
            } else {
                std::mem::take(&mut self.messages)
            },
        });
        self.started = true;
    }

    /// Writes the held line; `more` when its statement has more lines after it.
    fn release(&mut self, more: bool) {
        let Some(line) = self.held.take() else {
            return;
        };
        let series = [(line.pieces.as_slice(), line.series_partial)];
        self.push_line(line.statement_id, &series, &line.messages, more);
    }

    /// The buffered series, each whole, as one line without `partial` marks.
    fn write_buffered(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let pieces: Vec<Series> = self.buf.drain(..).collect();
        self.buf_rows = 0;
        let mut runs: Vec<(&[Series], bool)> = Vec::new();
        let mut start = 0;
        for i in 1..=pieces.len() {
            if i == pieces.len() || !pieces[i].same_series(&pieces[start]) {
                runs.push((&pieces[start..i], false));
                start = i;
            }
        }
        let messages = if self.started {
            Vec::new()
        } else {
            std::mem::take(&mut self.messages)
        };
        self.push_line(self.statement, &runs, &messages, false);
        self.started = true;
    }

    /// One line of statement `statement_id`: each series (its pieces and `partial` mark), its
    /// messages, and whether the statement goes on after it.
    fn push_line(
        &mut self,
        statement_id: usize,
        series: &[(&[Series], bool)],
        messages: &[Message],
        more: bool,
    ) {
        let json = ResultJson {
            statement_id,
            series: series
                .iter()
                .map(|&(pieces, partial)| SeriesJson {
                    pieces,
                    partial,
                    opts: &self.opts,
                })
                .collect(),
            messages,
            error: None,
            partial: more,
        };
        let bytes = to_json(&Body(vec![json]), false);
        self.out.push_back(Bytes::from(bytes));
    }

    /// A line of statement `statement_id` without series: its messages, or its error.
    fn write_result(&mut self, statement_id: usize, error: Option<&str>) {
        let messages = std::mem::take(&mut self.messages);
        let line = ResultJson {
            statement_id,
            series: Vec::new(),
            messages: &messages,
            error,
            partial: false,
        };
        let bytes = to_json(&Body(vec![line]), false);
        self.out.push_back(Bytes::from(bytes));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_like_1x() {
        assert_eq!(rfc3339_utc(77), "1970-01-01T00:00:00.000000077Z");
        assert_eq!(rfc3339_utc(60_000_000_000), "1970-01-01T00:01:00Z");
        assert_eq!(rfc3339_utc(1_000), "1970-01-01T00:00:00.000001Z");
        // The same text as chrono's own formatting, across the whole range of times.
        let chrono_text = |t: i64| {
            let dt = chrono::DateTime::from_timestamp_nanos(t);
            let nanos = t.rem_euclid(1_000_000_000);
            let mut s = dt.format("%Y-%m-%dT%H:%M:%S").to_string();
            if nanos > 0 {
                s.push('.');
                s.push_str(format!("{nanos:09}").trim_end_matches('0'));
            }
            s + "Z"
        };
        let mut t = i64::MIN;
        for step in 0..20_000u64 {
            assert_eq!(rfc3339_utc(t), chrono_text(t), "{t}");
            // Steps of uneven size (about 10^15 ns, plus digits that vary) reach the end.
            t = t.saturating_add(922_337_203_685_477 + (step * 7_919 % 1_000_003) as i64);
        }
        for t in [
            i64::MAX,
            -1,
            0,
            1,
            999_999_999,
            1_000_000_000,
            -1_000_000_001,
            1_451_606_400_120_000_000,
        ] {
            assert_eq!(rfc3339_utc(t), chrono_text(t), "{t}");
        }
        // In a zone: the same text as chrono's `%:z` formatting, historical offsets included.
        for zone in [
            chrono_tz::Europe::Oslo,
            chrono_tz::Asia::Kolkata,
            chrono_tz::America::New_York,
            chrono_tz::Europe::Amsterdam,
        ] {
            for t in [
                i64::MIN,
                -2_208_988_800_000_000_001,
                0,
                1_451_606_400_120_000_000,
                i64::MAX,
            ] {
                let dt = chrono::DateTime::from_timestamp_nanos(t).with_timezone(&zone);
                let mut expected = dt.format("%Y-%m-%dT%H:%M:%S").to_string();
                let nanos = t.rem_euclid(1_000_000_000);
                if nanos > 0 {
                    expected.push('.');
                    expected.push_str(format!("{nanos:09}").trim_end_matches('0'));
                }
                expected.push_str(&dt.format("%:z").to_string());
                assert_eq!(rfc3339_in(t, zone), expected, "{t} in {zone}");
            }
        }
        assert_eq!(TimeFormat::Epoch(1_000_000_000).value(60_000_000_000), 60);
    }
}

#[cfg(test)]
mod chunk_tests {
    use std::sync::Arc;

    use arrow::array::{Float64Array, RecordBatch, TimestampNanosecondArray};
    use futures::StreamExt;

    use super::*;

    fn piece(tag: &str, times: std::ops::Range<i64>) -> Series {
        let t: Vec<i64> = times.clone().collect();
        let v: Vec<f64> = times.map(|x| x as f64 + 0.5).collect();
        let batch = RecordBatch::try_from_iter(vec![
            (
                "time",
                Arc::new(TimestampNanosecondArray::from(t)) as ArrayRef,
            ),
            ("v", Arc::new(Float64Array::from(v)) as ArrayRef),
        ])
        .unwrap();
        Series::new(
            Some("m".into()),
            Some([("h".to_string(), tag.to_string())].into()),
            vec!["time".into(), "v".into()],
            batch,
        )
    }

    async fn lines(items: Vec<Item>, size: usize) -> Vec<Value> {
        let (tx, rx) = tokio::sync::mpsc::channel(items.len().max(1));
        for i in items {
            tx.send(i).await.unwrap();
        }
        drop(tx);
        let opts = FormatOptions {
            epoch: Some("ns".into()),
        };
        Chunker::new(rx, size, opts)
            .into_stream()
            .map(|l| serde_json::from_slice(&l.unwrap()).unwrap())
            .collect()
            .await
    }

    #[tokio::test]
    async fn chunks_cut_pieces_of_any_size_into_lines_of_chunk_size() {
        // Series a in pieces of 2, 5 and 1 rows; series b in one piece of 3; chunk size 3.
        let items = vec![
            Item::Messages {
                statement_id: 0,
                messages: vec![Message {
                    level: "warning".into(),
                    text: "w".into(),
                }],
            },
            Item::Series {
                statement_id: 0,
                series: piece("a", 0..2),
            },
            Item::Series {
                statement_id: 0,
                series: piece("a", 2..7),
            },
            Item::Series {
                statement_id: 0,
                series: piece("a", 7..8),
            },
            Item::Series {
                statement_id: 0,
                series: piece("b", 0..3),
            },
            Item::End {
                statement_id: 0,
                error: None,
            },
            Item::End {
                statement_id: 1,
                error: Some("not executed".into()),
            },
        ];
        let out = lines(items, 3).await;
        let shape: Vec<(Value, Vec<i64>, bool, bool, bool)> = out
            .iter()
            .map(|l| {
                let r = &l["results"][0];
                let s = &r["series"][0];
                let times = s["values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|row| row[0].as_i64().unwrap())
                    .collect();
                (
                    s["tags"]["h"].clone(),
                    times,
                    s["partial"] == true,
                    r["partial"] == true,
                    r["messages"].is_array(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                ("a".into(), vec![0, 1, 2], true, true, true),
                ("a".into(), vec![3, 4, 5], true, true, false),
                ("a".into(), vec![6, 7], false, true, false),
                ("b".into(), vec![0, 1, 2], false, false, false),
                (Value::Null, vec![], false, false, false),
            ]
        );
        assert_eq!(out[4]["results"][0]["error"], "not executed");
        assert_eq!(out[4]["results"][0]["statement_id"], 1);
        assert_eq!(out[0]["results"][0]["series"][0]["values"][0][1], 0.5);
    }

    #[tokio::test]
    async fn a_statement_without_series_is_one_line() {
        let out = lines(
            vec![Item::End {
                statement_id: 0,
                error: None,
            }],
            10,
        )
        .await;
        assert_eq!(
            out,
            vec![serde_json::json!({"results": [{"statement_id": 0}]})]
        );
    }

    /// A series of no rows (`SHOW CONTINUOUS QUERIES` of a database without any).
    fn bare(name: &str) -> Series {
        Series::from_rows(Some(name.into()), None, vec!["name".into()], vec![]).unwrap()
    }

    async fn shaped(items: Vec<Item>, size: usize, shapes: Vec<ChunkShape>) -> Vec<Value> {
        let (tx, rx) = tokio::sync::mpsc::channel(items.len().max(1));
        for i in items {
            tx.send(i).await.unwrap();
        }
        drop(tx);
        Chunker::new(rx, size, FormatOptions::default())
            .with_shapes(shapes)
            .into_stream()
            .map(|l| serde_json::from_slice(&l.unwrap()).unwrap())
            .collect()
            .await
    }

    #[tokio::test]
    async fn statements_are_cut_as_1x_cuts_their_kind() {
        let series = |id: usize, s: Series| Item::Series {
            statement_id: id,
            series: s,
        };
        let end = |id: usize, error: Option<&str>| Item::End {
            statement_id: id,
            error: error.map(String::from),
        };
        let items = vec![
            // Whole: every series in one line, series without rows too.
            series(0, bare("x")),
            series(0, piece("a", 0..3)),
            series(0, piece("a", 3..4)),
            series(0, bare("y")),
            end(0, None),
            // SeriesApart: a line per series, whole, no partial marks.
            series(1, piece("a", 0..3)),
            series(1, piece("b", 0..1)),
            end(1, None),
            // Rows: a series without rows is a line of its own.
            series(2, bare("z")),
            series(2, piece("a", 0..2)),
            end(2, None),
            // A failed statement of a kind answered at once: its error alone.
            series(3, piece("a", 0..1)),
            end(3, Some("boom")),
        ];
        use ChunkShape::*;
        let out = shaped(items, 2, vec![Whole, SeriesApart, Rows, Whole]).await;
        assert_eq!(out.len(), 6, "{out:#?}");
        let r0 = &out[0]["results"][0];
        assert_eq!(r0["series"].as_array().unwrap().len(), 3, "{r0}");
        assert_eq!(
            r0["series"][0],
            (serde_json::json!({"name": "x", "columns": ["name"]}))
        );
        assert_eq!(r0["series"][1]["values"].as_array().unwrap().len(), 4);
        assert_eq!(r0.get("partial"), None);
        for (line, tag, n) in [(1, "a", 3), (2, "b", 1)] {
            let r = &out[line]["results"][0];
            assert_eq!(r["statement_id"], 1);
            assert_eq!(r.get("partial"), None, "{r}");
            assert_eq!(r["series"][0]["tags"]["h"], tag);
            assert_eq!(r["series"][0]["values"].as_array().unwrap().len(), n);
            assert_eq!(r["series"][0].get("partial"), None);
        }
        assert_eq!(
            out[3]["results"][0],
            (serde_json::json!({"statement_id": 2, "series": [{"name": "z", "columns": ["name"]}], "partial": true}))
        );
        assert_eq!(
            out[4]["results"][0]["series"][0]["values"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(out[4]["results"][0].get("partial"), None);
        assert_eq!(
            out[5]["results"][0],
            (serde_json::json!({"statement_id": 3, "error": "boom"}))
        );
    }
}

//! # InfluxDB 1.x line protocol
//!
//! This crate owns one thing: turning the bytes of a `/write` body into points, exactly as
//! InfluxDB 1.x (`models/points.go`) does, and turning points back into canonical line protocol.
//!
//! ```text
//!   body bytes ──split_lines──▶ line ──parse_line──▶ Point { measurement, tags (sorted), fields, time }
//!                (quote-aware)          (1.x scanner,        └──▶ format_point ──▶ canonical line
//!                                        1.x error texts)
//! ```
//!
//! The scanner deliberately mirrors the 1.x state machine rather than a cleaner grammar, because
//! the 1.x behaviour *is* the specification: which inputs are rejected, with which message
//! (`missing fields`, `invalid boolean`, `bad timestamp`, ...), and which odd inputs are accepted
//! (an escaped backslash before a comma, a lone `t` as a boolean, `1.` as a float).
//!
//! What it must not do: know about databases, shards, schemas or time-of-day. The caller passes
//! the default timestamp and the precision; field-type conflicts and reserved names (`time`) are
//! the ingester's business, because they depend on what is already stored.
//!
//! Differences from 1.x, kept on purpose: a line that is not valid UTF-8 is rejected
//! (`invalid UTF-8`), because every name and string ends up in an Arrow UTF-8 column.

use std::borrow::Cow;
use std::fmt;

mod format;
mod scan;

pub use format::{
    escape_field_key, escape_measurement, escape_tag, format_point, format_point_into,
};
pub use scan::{parse_line, split_lines};

/// The smallest timestamp 1.x accepts, in nanoseconds (`models.MinNanoTime`).
pub const MIN_NANO_TIME: i64 = i64::MIN + 2;
/// The largest timestamp 1.x accepts, in nanoseconds (`models.MaxNanoTime`).
pub const MAX_NANO_TIME: i64 = i64::MAX - 1;
/// The longest series key (measurement, tags and one field key) 1.x accepts.
pub const MAX_KEY_LENGTH: usize = 65535;

/// The unit of the timestamps in a write, from the `precision` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    Nanoseconds,
    Microseconds,
    Milliseconds,
    Seconds,
    Minutes,
    Hours,
}

impl Precision {
    /// Reads the `precision` query parameter as 1.x does: anything it does not know is
    /// nanoseconds (a 1.x quirk that clients rely on, e.g. `precision=n`).
    pub fn from_param(s: &str) -> Self {
        match s {
            "u" | "µ" | "us" => Self::Microseconds,
            "ms" => Self::Milliseconds,
            "s" => Self::Seconds,
            "m" => Self::Minutes,
            "h" => Self::Hours,
            _ => Self::Nanoseconds,
        }
    }

    /// Nanoseconds per unit.
    pub fn multiplier(self) -> i64 {
        match self {
            Self::Nanoseconds => 1,
            Self::Microseconds => 1_000,
            Self::Milliseconds => 1_000_000,
            Self::Seconds => 1_000_000_000,
            Self::Minutes => 60_000_000_000,
            Self::Hours => 3_600_000_000_000,
        }
    }

    /// Truncates a nanosecond time to this precision (1.x `SetPrecision` for server times).
    pub fn truncate(self, nanos: i64) -> i64 {
        let m = self.multiplier();
        nanos - nanos.rem_euclid(m)
    }
}

/// How to parse a body.
#[derive(Debug, Clone, Copy)]
pub struct ParseOptions {
    pub precision: Precision,
    /// The time given to points without a timestamp, in nanoseconds.
    pub default_time: i64,
    /// Accept `123u` unsigned integers (1.x OSS rejects them with `invalid number`).
    pub allow_unsigned: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        Self {
            precision: Precision::Nanoseconds,
            default_time: 0,
            allow_unsigned: false,
        }
    }
}

/// A field value as line protocol types it.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue<'a> {
    Float(f64),
    Integer(i64),
    UInteger(u64),
    String(Cow<'a, str>),
    Boolean(bool),
}

impl FieldValue<'_> {
    /// The type's name as 1.x prints it in `field type conflict` errors.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Float(_) => "float",
            Self::Integer(_) => "integer",
            Self::UInteger(_) => "unsigned",
            Self::String(_) => "string",
            Self::Boolean(_) => "boolean",
        }
    }

    pub fn into_owned(self) -> FieldValue<'static> {
        match self {
            Self::Float(v) => FieldValue::Float(v),
            Self::Integer(v) => FieldValue::Integer(v),
            Self::UInteger(v) => FieldValue::UInteger(v),
            Self::String(s) => FieldValue::String(Cow::Owned(s.into_owned())),
            Self::Boolean(b) => FieldValue::Boolean(b),
        }
    }
}

/// One parsed point. Tags are sorted by key (the series key order) and field keys are unique
/// (for a key given twice, the later value wins, as in 1.x).
#[derive(Debug, Clone, PartialEq)]
pub struct Point<'a> {
    pub measurement: Cow<'a, str>,
    pub tags: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    pub fields: Vec<(Cow<'a, str>, FieldValue<'a>)>,
    /// Nanoseconds since the Unix epoch.
    pub time: i64,
}

impl Point<'_> {
    pub fn into_owned(self) -> Point<'static> {
        Point {
            measurement: Cow::Owned(self.measurement.into_owned()),
            tags: self
                .tags
                .into_iter()
                .map(|(k, v)| (Cow::Owned(k.into_owned()), Cow::Owned(v.into_owned())))
                .collect(),
            fields: self
                .fields
                .into_iter()
                .map(|(k, v)| (Cow::Owned(k.into_owned()), v.into_owned()))
                .collect(),
            time: self.time,
        }
    }

    /// Whether `other` has the same measurement, tag keys, and field keys with the same value
    /// types, in the same order: what a schema check or a shape table needs to know.
    pub fn same_shape(&self, other: &Point<'_>) -> bool {
        self.measurement == other.measurement
            && self.tags.len() == other.tags.len()
            && self.fields.len() == other.fields.len()
            && self
                .tags
                .iter()
                .zip(&other.tags)
                .all(|((a, _), (b, _))| a == b)
            && self
                .fields
                .iter()
                .zip(&other.fields)
                .all(|((a, u), (b, v))| {
                    a == b && std::mem::discriminant(u) == std::mem::discriminant(v)
                })
    }

    /// Looks a tag up by key.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }
}

/// Why a line was rejected; `Display` gives the 1.x text after `unable to parse '...': `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    #[error("missing measurement")]
    MissingMeasurement,
    #[error("missing fields")]
    MissingFields,
    #[error("missing tag key")]
    MissingTagKey,
    #[error("missing tag value")]
    MissingTagValue,
    #[error("invalid tag format")]
    InvalidTagFormat,
    #[error("duplicate tags")]
    DuplicateTags,
    #[error("missing field key")]
    MissingFieldKey,
    #[error("missing field value")]
    MissingFieldValue,
    #[error("invalid field format")]
    InvalidFieldFormat,
    #[error("unbalanced quotes")]
    UnbalancedQuotes,
    #[error("invalid number")]
    InvalidNumber,
    #[error("invalid float")]
    InvalidFloat,
    #[error("unable to parse integer {0}: strconv.ParseInt: parsing {0:?}: value out of range")]
    IntegerOutOfRange(String),
    #[error("unable to parse unsigned {0}: strconv.ParseUint: parsing {0:?}: value out of range")]
    UnsignedOutOfRange(String),
    #[error("invalid boolean")]
    InvalidBoolean,
    #[error("bad timestamp")]
    BadTimestamp,
    #[error("strconv.ParseInt: parsing {0:?}: {1}")]
    TimestampSyntax(String, &'static str),
    #[error("time outside range {MIN_NANO_TIME} - {MAX_NANO_TIME}")]
    TimeOutOfRange,
    #[error("point is invalid")]
    InvalidPoint,
    #[error("max key length exceeded: {0} > {MAX_KEY_LENGTH}")]
    MaxKeyLength(usize),
    #[error("invalid UTF-8")]
    InvalidUtf8,
}

/// A rejected line with the reason, printed as 1.x prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// The line, without leading whitespace and trailing newline (as 1.x quotes it).
    pub line: String,
    pub kind: ParseErrorKind,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unable to parse '{}': {}", self.line, self.kind)
    }
}

impl std::error::Error for LineError {}

/// The outcome of parsing a whole body: the good points, and the rejected lines.
#[derive(Debug, Default)]
pub struct ParsedBody<'a> {
    pub points: Vec<Point<'a>>,
    pub errors: Vec<LineError>,
}

impl ParsedBody<'_> {
    /// All rejections joined by newlines, as 1.x reports them.
    pub fn error_text(&self) -> Option<String> {
        if self.errors.is_empty() {
            return None;
        }
        Some(
            self.errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        )
    }
}

/// Parses a whole write body: blank lines and `#` comments are skipped, every other line is a
/// point or an error.
pub fn parse_body<'a>(buf: &'a [u8], opts: &ParseOptions) -> ParsedBody<'a> {
    let mut out = ParsedBody::default();
    for line in split_lines(buf) {
        match parse_line(line, opts) {
            Ok(Some(p)) => out.points.push(p),
            Ok(None) => {}
            Err(e) => out.errors.push(e),
        }
    }
    out
}

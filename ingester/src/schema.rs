//! Column kinds and types of a measurement's table, and how they appear in Arrow.
//!
//! A measurement is one table: a `Dictionary(Int32, Utf8)` column per tag key, one typed column
//! per field, and `time` as a nanosecond timestamp. Each Arrow field carries its role in the
//! metadata key [`COLUMN_KIND`], so that a reader tells a string tag from a string field.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use line_protocol::FieldValue;
use serde::{Deserialize, Serialize};

/// Arrow field metadata key holding `tag`, `field` or `time`.
pub const COLUMN_KIND: &str = "fletch::column_kind";
/// Name of the timestamp column.
pub const TIME: &str = "time";
/// Parquet key-value metadata: the measurement a file holds.
pub const MEASUREMENT_KEY: &str = "fletch::measurement";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    Float,
    Integer,
    Unsigned,
    String,
    Boolean,
}

impl FieldType {
    pub fn of(v: &FieldValue<'_>) -> Self {
        match v {
            FieldValue::Float(_) => Self::Float,
            FieldValue::Integer(_) => Self::Integer,
            FieldValue::UInteger(_) => Self::Unsigned,
            FieldValue::String(_) => Self::String,
            FieldValue::Boolean(_) => Self::Boolean,
        }
    }

    /// The name 1.x prints (`SHOW FIELD KEYS`, type conflict errors).
    pub fn name(self) -> &'static str {
        match self {
            Self::Float => "float",
            Self::Integer => "integer",
            Self::Unsigned => "unsigned",
            Self::String => "string",
            Self::Boolean => "boolean",
        }
    }

    pub fn arrow(self) -> DataType {
        match self {
            Self::Float => DataType::Float64,
            Self::Integer => DataType::Int64,
            Self::Unsigned => DataType::UInt64,
            Self::String => DataType::Utf8,
            Self::Boolean => DataType::Boolean,
        }
    }

    pub fn from_arrow(dt: &DataType) -> Option<Self> {
        Some(match dt {
            DataType::Float64 => Self::Float,
            DataType::Int64 => Self::Integer,
            DataType::UInt64 => Self::Unsigned,
            DataType::Utf8 => Self::String,
            DataType::Boolean => Self::Boolean,
            _ => return None,
        })
    }
}

/// The columns of one measurement in one shard: tag keys and typed fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSchema {
    pub tags: std::collections::BTreeSet<String>,
    pub fields: BTreeMap<String, FieldType>,
}

impl TableSchema {
    pub fn merge(&mut self, other: &TableSchema) {
        self.tags.extend(other.tags.iter().cloned());
        for (k, t) in &other.fields {
            self.fields.entry(k.clone()).or_insert(*t);
        }
    }

    /// The Arrow schema: tags (sorted), then fields (sorted), then `time`.
    pub fn arrow(&self) -> SchemaRef {
        let mut cols = Vec::with_capacity(self.tags.len() + self.fields.len() + 1);
        for t in &self.tags {
            cols.push(tag_field(t));
        }
        for (f, ty) in &self.fields {
            cols.push(with_kind(Field::new(f, ty.arrow(), true), "field"));
        }
        cols.push(time_field());
        Arc::new(Schema::new(cols))
    }

    /// Reads the roles back from an Arrow schema written by Fletch.
    pub fn from_arrow(schema: &Schema) -> Self {
        let mut out = Self::default();
        for f in schema.fields() {
            match f.metadata().get(COLUMN_KIND).map(String::as_str) {
                Some("tag") => {
                    out.tags.insert(f.name().clone());
                }
                Some("field") => {
                    if let Some(t) = FieldType::from_arrow(f.data_type()) {
                        out.fields.insert(f.name().clone(), t);
                    }
                }
                _ => {}
            }
        }
        out
    }
}

pub(crate) fn with_kind(f: Field, kind: &str) -> Field {
    f.with_metadata(HashMap::from([(COLUMN_KIND.to_string(), kind.to_string())]))
}

pub fn tag_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

pub fn tag_field(name: &str) -> Field {
    with_kind(Field::new(name, tag_type(), true), "tag")
}

pub fn time_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, None)
}

pub fn time_field() -> Field {
    with_kind(Field::new(TIME, time_type(), false), "time")
}

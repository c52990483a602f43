//! Query results in the shape of 1.x's `/query` JSON: results per statement, each with series
//! (name, tags, columns, values), messages, or an error.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Series {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    pub columns: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<Vec<Value>>,
    /// In a chunked response: more values of this series follow in the next chunk.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
    /// The type of each value column after `time` where known (JSON prints 1.0 as 1, so
    /// subqueries and `INTO` need it). Not part of the answer.
    #[serde(skip)]
    pub types: Vec<Option<ingester::FieldType>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    pub level: String,
    pub text: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StatementResult {
    pub statement_id: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<Series>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<Message>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// In a chunked response: more of this statement's results follow.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
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

/// The body of a `/query` response.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct QueryResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results: Option<Vec<StatementResult>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

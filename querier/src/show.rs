//! The `SHOW` statements over series data (measurements, tag keys and values, field keys,
//! series) and over the catalog (shards, shard groups), shaped as 1.x answers them.
//!
//! Series data comes from the shards themselves: a measurement's schema gives its tag and
//! field keys; its distinct tag sets (filtered by `WHERE` on DataFusion) give the series.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::DataType;
use serde_json::Value;

use crate::executor::{ExecError, Executor};
use crate::influxql::{BinaryOp, Expr, MeasurementMatch, ShowFilter, TagKeyMatch};
use crate::result::RowSeries;
use crate::select::{TimeRange, ident};
use crate::series_runs::Series;

type TagSet = BTreeMap<String, String>;

/// A shard group's bound as 1.x's `SHOW SHARDS` prints it: Go's RFC3339 in UTC.
fn rfc3339(t: i64) -> Value {
    Value::from(
        chrono::DateTime::from_timestamp_nanos(t)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

fn regex(re: &str) -> Result<regex::Regex, ExecError> {
    regex::Regex::new(re).map_err(|e| ExecError::Query(e.to_string()))
}

/// `cpu,host=a,region=w`, escaped as line protocol.
pub fn series_key(measurement: &str, tags: &TagSet) -> String {
    let mut s = line_protocol::escape_measurement(measurement);
    for (k, v) in tags {
        s.push(',');
        s.push_str(&line_protocol::escape_tag(k));
        s.push('=');
        s.push_str(&line_protocol::escape_tag(v));
    }
    s
}

/// How a `SHOW` statement's condition is read. 1.x evaluates it on its series index, not on
/// points: a condition is of tags, compared with `=`, `!=`, `=~` or `!~` (anything else is
/// `invalid tag comparison operator`), and each `SHOW` treats what is not a tag its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IndexRule {
    /// `SHOW SERIES`: a comparison of a field, or with a value that is not a string, holds
    /// for every series. With `time`, the time range picks the shards whose series are
    /// listed, and a comparison of a field holds for none.
    Series,
    /// `SHOW TAG KEYS`, `SHOW TAG VALUES`: as `Series` without `time`. With `time`, 1.x's
    /// default index (one per database) answers for every series as long as some shard
    /// overlaps the time range.
    Tags,
    /// Evaluated on the points as written (the cardinality statements).
    Points,
}

/// Whether `e` compares `time`.
fn mentions_time(e: &Expr) -> bool {
    let mut found = false;
    e.walk(&mut |x| {
        found |= matches!(x, Expr::VarRef { name, .. } if name.eq_ignore_ascii_case("time"));
    });
    found
}

/// `e` with its comparisons of `time` (left under an `OR` once the time range is split off)
/// replaced by `false`: 1.x's index finds no series for them.
fn time_is_false(e: &Expr) -> Expr {
    match e {
        Expr::Paren(inner) => Expr::Paren(Box::new(time_is_false(inner))),
        Expr::Binary { op, lhs, rhs } if matches!(op, BinaryOp::And | BinaryOp::Or) => {
            Expr::Binary {
                op: *op,
                lhs: Box::new(time_is_false(lhs)),
                rhs: Box::new(time_is_false(rhs)),
            }
        }
        other if mentions_time(other) => Expr::Boolean(false),
        other => other.clone(),
    }
}

/// `e` with its comparisons of anything but `tags` replaced by `false`.
fn fields_are_false(e: &Expr, tags: &BTreeSet<String>) -> Expr {
    match e {
        Expr::Paren(inner) => Expr::Paren(Box::new(fields_are_false(inner, tags))),
        Expr::Binary { op, lhs, rhs } if matches!(op, BinaryOp::And | BinaryOp::Or) => {
            Expr::Binary {
                op: *op,
                lhs: Box::new(fields_are_false(lhs, tags)),
                rhs: Box::new(fields_are_false(rhs, tags)),
            }
        }
        other if !only_tags(other, tags) => Expr::Boolean(false),
        other => other.clone(),
    }
}

/// Whether every variable `e` names is one of `tags` (no field, no `time`).
fn only_tags(e: &Expr, tags: &BTreeSet<String>) -> bool {
    let mut only = true;
    e.walk(&mut |x| {
        if let Expr::VarRef { name, .. } = x {
            only &= tags.contains(name);
        }
    });
    only
}

/// The series of a measurement that a `SHOW` condition keeps.
enum Matching {
    /// None (or no such measurement).
    Nothing,
    /// The one series of a measurement without tags.
    Tagless,
    /// How many there are.
    Counted(usize),
    /// Rows of `tags` in that order (text or dictionaries), at least one per series (a series
    /// may repeat; a tag it lacks is null).
    Series {
        batches: Vec<datafusion::arrow::array::RecordBatch>,
        tags: Vec<String>,
    },
}

/// `b`'s columns as text.
fn texts(
    b: &datafusion::arrow::array::RecordBatch,
) -> Result<Vec<datafusion::arrow::array::StringArray>, ExecError> {
    b.columns()
        .iter()
        .map(|c| {
            let c = datafusion::arrow::compute::cast(c, &DataType::Utf8)?;
            Ok(c.as_string::<i32>().clone())
        })
        .collect()
}

/// A comparison of a `SHOW` condition as 1.x's index takes it: the tag key and the value it
/// is compared with, by `=`, `!=`, `=~` or `!~` (on either side); anything else is `invalid
/// tag comparison operator` (`f > 1`, `f + 1 = 2`).
fn tag_comparison<'e>(
    op: BinaryOp,
    lhs: &'e Expr,
    rhs: &'e Expr,
) -> Result<(&'e String, &'e Expr), ExecError> {
    let bad = || ExecError::Query("invalid tag comparison operator".into());
    if !matches!(
        op,
        BinaryOp::Eq | BinaryOp::NotEq | BinaryOp::EqRegex | BinaryOp::NotEqRegex
    ) {
        return Err(bad());
    }
    match (lhs, rhs) {
        (Expr::VarRef { name, .. }, v) | (v, Expr::VarRef { name, .. }) => Ok((name, v)),
        _ => Err(bad()),
    }
}

/// `condition` rewritten by `rule` for `schema`'s measurement: comparisons 1.x's index decides
/// without the points become `true` or `false`.
fn index_condition(
    condition: &Expr,
    schema: &ingester::TableSchema,
    rule: IndexRule,
) -> Result<Expr, ExecError> {
    if rule == IndexRule::Points || mentions_time(condition) {
        return Ok(condition.clone());
    }
    fn walk(e: &Expr, schema: &ingester::TableSchema, rule: IndexRule) -> Result<Expr, ExecError> {
        let Expr::Binary { op, lhs, rhs } = e else {
            return Ok(match e {
                Expr::Paren(inner) => Expr::Paren(Box::new(walk(inner, schema, rule)?)),
                other => other.clone(),
            });
        };
        if matches!(op, BinaryOp::And | BinaryOp::Or) {
            return Ok(Expr::Binary {
                op: *op,
                lhs: Box::new(walk(lhs, schema, rule)?),
                rhs: Box::new(walk(rhs, schema, rule)?),
            });
        }
        let (key, value) = tag_comparison(*op, lhs, rhs)?;
        let text = matches!(value, Expr::String(_) | Expr::Regex(_));
        Ok(if schema.fields.contains_key(key) || !text {
            Expr::Boolean(true)
        } else {
            e.clone()
        })
    }
    walk(condition, schema, rule)
}

/// Whether a measurement is in `SHOW MEASUREMENTS WHERE condition`, decided as 1.x's index
/// decides it, on the measurement's series rather than on each series: `AND` and `OR` combine
/// measurements; `k = 'v'` and `k =~ /re/` hold when a series has such a value, `k != 'v'`
/// and `k !~ /re/` when none has; a key the measurement has no tag of holds for none (fields
/// included); a value that is not a string is `right side of '=' must be a tag value
/// string`, any other operator `invalid tag comparison operator`.
fn measurement_matches(
    condition: &Expr,
    schema: &ingester::TableSchema,
    series: &[TagSet],
) -> Result<bool, ExecError> {
    match condition {
        Expr::Paren(inner) => measurement_matches(inner, schema, series),
        Expr::Boolean(b) => Ok(*b),
        Expr::Binary { op, lhs, rhs } => {
            if matches!(op, BinaryOp::And | BinaryOp::Or) {
                let l = measurement_matches(lhs, schema, series)?;
                let r = measurement_matches(rhs, schema, series)?;
                return Ok(if *op == BinaryOp::And { l && r } else { l || r });
            }
            let (key, value) = tag_comparison(*op, lhs, rhs)?;
            let hit: Box<dyn Fn(&str) -> bool> = match value {
                Expr::String(v) => {
                    let v = v.clone();
                    Box::new(move |x| x == v)
                }
                Expr::Regex(r) => {
                    let re = regex(r)?;
                    Box::new(move |x| re.is_match(x))
                }
                _ => {
                    return Err(ExecError::Query(format!(
                        "right side of '{}' must be a tag value string",
                        op.symbol()
                    )));
                }
            };
            if !schema.tags.contains(key) {
                return Ok(false);
            }
            let any = series.iter().any(|s| s.get(key).is_some_and(|v| hit(v)));
            Ok(match op {
                BinaryOp::Eq | BinaryOp::EqRegex => any,
                _ => !any,
            })
        }
        other => Err(ExecError::Query(format!(
            "invalid condition expression: {other}"
        ))),
    }
}

fn page<T>(items: impl IntoIterator<Item = T>, limit: Option<u64>, offset: Option<u64>) -> Vec<T> {
    let take = limit.filter(|l| *l > 0).map_or(usize::MAX, |l| l as usize);
    items
        .into_iter()
        .skip(offset.unwrap_or(0) as usize)
        .take(take)
        .collect()
}

impl Executor {
    /// Whether a shard group of `db` overlaps `range`.
    fn any_shard(&self, db: &str, range: TimeRange) -> Result<bool, ExecError> {
        let cat = self.meta().catalog();
        let Some(dbi) = cat.database(db) else {
            return Ok(false);
        };
        let set = self.shard_set(dbi, "", range)?;
        Ok(!set.shards.is_empty() || !set.remote.is_empty())
    }

    /// Measurements named by `FROM` (all when empty), sorted.
    async fn show_sources(&self, db: &str, flt: &ShowFilter) -> Result<Vec<String>, ExecError> {
        if flt.sources.is_empty() {
            return self.measurements_of(db, "", None, Some("")).await;
        }
        let mut out = BTreeSet::new();
        for m in &flt.sources {
            out.extend(
                self.measurements_of(db, "", m.name.as_deref(), m.regex.as_deref())
                    .await?,
            );
        }
        Ok(out.into_iter().collect())
    }

    /// A measurement's series that match `condition` (read as 1.x's series index reads it,
    /// by `rule`): their tag columns that `keep` keeps; only their number if `count` and it
    /// is known without them. A condition of tags only is evaluated on the series indexes'
    /// runs ([`Executor::series_runs`]), anything else on the rows.
    async fn matching_series(
        &self,
        db: &str,
        measurement: &str,
        condition: Option<&Expr>,
        rule: IndexRule,
        keep: &(dyn Fn(&str) -> bool + Sync),
        count: bool,
    ) -> Result<Matching, ExecError> {
        let Some(schema) = self.load_schema(db, measurement).await? else {
            return Ok(Matching::Nothing);
        };
        // 1.x reads a condition with `time` in two parts: its time range picks shards (see
        // `IndexRule`), the rest is read on the index; a time comparison under an `OR` holds
        // for no series.
        let (range, condition) = match condition {
            Some(c) if mentions_time(c) => {
                let (range, rest) = match crate::select::time_under_or(Some(c)) {
                    true => (TimeRange::ALL, Some(time_is_false(c))),
                    false => crate::select::split_time_range(Some(c), ingester::now_nanos())?,
                };
                match rule {
                    IndexRule::Tags => {
                        if !self.any_shard(db, range)? {
                            return Ok(Matching::Nothing);
                        }
                        let rest = rest.map(|r| index_condition(&r, &schema, rule));
                        (TimeRange::ALL, rest.transpose()?)
                    }
                    _ => (range, rest.map(|r| fields_are_false(&r, &schema.tags))),
                }
            }
            Some(c) => (TimeRange::ALL, Some(index_condition(c, &schema, rule)?)),
            None => (TimeRange::ALL, None),
        };
        let condition = condition
            .map(|c| {
                let of_tags = only_tags(&c, &schema.tags);
                crate::select::condition_to_df(&c, &schema).map(|e| (e, of_tags))
            })
            .transpose()?;
        let series = match &condition {
            None => {
                self.series_runs(db, measurement, None, range, count)
                    .await?
            }
            Some((c, true)) => {
                self.series_runs(db, measurement, Some(c), range, count)
                    .await?
            }
            Some((_, false)) => None,
        };
        let tags: Vec<String> = schema.tags.iter().filter(|t| keep(t)).cloned().collect();
        if let Some(series) = series {
            let runs = match series {
                Series::Counted(n) => return Ok(Matching::Counted(n)),
                Series::Runs(runs) => runs,
            };
            if tags.is_empty() {
                return Ok(Matching::Nothing);
            }
            let batches = runs
                .matching()
                .await?
                .iter()
                .map(|b| {
                    let columns = tags
                        .iter()
                        .map(|t| b.schema().index_of(t))
                        .collect::<Result<Vec<_>, _>>()?;
                    b.project(&columns)
                })
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(Matching::Series { batches, tags });
        }
        // Every row of the shards the range picks.
        let sources = self.sources(db, "", measurement, range).await?;
        let Some(crate::scan::Frame {
            df,
            pinned: _pinned,
            ..
        }) = self
            .frame_of(self.session(), measurement, sources, TimeRange::ALL)
            .await?
        else {
            return Ok(Matching::Nothing);
        };
        let mut df = df.build()?;
        if let Some((c, _)) = condition {
            df = df.filter(c)?;
        }
        if schema.tags.is_empty() {
            // The one series of a tagless measurement, if the condition keeps any of its rows.
            let kept = df.limit(0, Some(1))?.count().await? > 0;
            return Ok(if kept {
                Matching::Tagless
            } else {
                Matching::Nothing
            });
        }
        if tags.is_empty() {
            return Ok(Matching::Nothing);
        }
        let batches = df
            .select(tags.iter().map(|t| ident(t)).collect::<Vec<_>>())?
            .distinct()?
            .collect()
            .await?;
        Ok(Matching::Series { batches, tags })
    }

    /// Distinct tag sets of a measurement whose rows match `condition` (read as 1.x's series
    /// index reads it, by `rule`), sorted.
    async fn series_of(
        &self,
        db: &str,
        measurement: &str,
        condition: Option<&Expr>,
        rule: IndexRule,
    ) -> Result<Vec<TagSet>, ExecError> {
        let (batches, tags) = match self
            .matching_series(db, measurement, condition, rule, &|_| true, false)
            .await?
        {
            Matching::Nothing => return Ok(vec![]),
            Matching::Tagless => return Ok(vec![TagSet::new()]),
            Matching::Counted(_) => {
                return Err(ExecError::Internal("series counted, not listed".into()));
            }
            Matching::Series { batches, tags } => (batches, tags),
        };
        let mut out = BTreeSet::new();
        for b in &batches {
            let columns = texts(b)?;
            for r in 0..b.num_rows() {
                let mut set = TagSet::new();
                for (t, a) in tags.iter().zip(&columns) {
                    if !a.is_null(r) {
                        set.insert(t.clone(), a.value(r).to_string());
                    }
                }
                out.insert(set);
            }
        }
        // Sorted the way 1.x sorts series: by series key.
        let mut v: Vec<TagSet> = out.into_iter().collect();
        v.sort_by_cached_key(|t| series_key(measurement, t));
        Ok(v)
    }

    /// How many series of a measurement match `condition` (as [`Self::series_of`] finds
    /// them), counted without listing them.
    async fn series_count(
        &self,
        db: &str,
        measurement: &str,
        condition: Option<&Expr>,
        rule: IndexRule,
    ) -> Result<usize, ExecError> {
        Ok(
            match self
                .matching_series(db, measurement, condition, rule, &|_| true, true)
                .await?
            {
                Matching::Nothing => 0,
                Matching::Tagless => 1,
                Matching::Counted(n) => n,
                Matching::Series { batches, .. } => crate::series_runs::distinct_rows(&batches)?,
            },
        )
    }

    pub(crate) async fn show_measurements(
        &self,
        db: &str,
        with: Option<&MeasurementMatch>,
        condition: Option<&Expr>,
        limit: Option<u64>,
        offset: Option<u64>,
    ) -> Result<Vec<RowSeries>, ExecError> {
        if condition.is_some_and(mentions_time) {
            return Err(ExecError::Query(
                "SHOW MEASUREMENTS doesn't support time in WHERE clause".into(),
            ));
        }
        if self.meta().catalog().database(db).is_none() {
            return Ok(vec![]);
        }
        let names = match with {
            Some(MeasurementMatch::Eq(n)) => self.measurements_of(db, "", Some(n), None).await?,
            Some(MeasurementMatch::Regex(r)) => self.measurements_of(db, "", None, Some(r)).await?,
            None => self.measurements_of(db, "", None, Some("")).await?,
        };
        let mut keep = Vec::new();
        for n in names {
            let Some(c) = condition else {
                keep.push(n);
                continue;
            };
            let Some(schema) = self.load_schema(db, &n).await? else {
                continue;
            };
            let series = self.series_of(db, &n, None, IndexRule::Points).await?;
            if measurement_matches(c, &schema, &series)? {
                keep.push(n);
            }
        }
        let values: Vec<Vec<Value>> = page(keep, limit, offset)
            .into_iter()
            .map(|n| vec![Value::from(n)])
            .collect();
        if values.is_empty() {
            return Ok(vec![]);
        }
        Ok(vec![RowSeries {
            name: Some("measurements".into()),
            columns: vec!["name".into()],
            values,
            ..Default::default()
        }])
    }

    pub(crate) async fn show_tag_keys(
        &self,
        db: &str,
        flt: &ShowFilter,
    ) -> Result<Vec<RowSeries>, ExecError> {
        let mut out = Vec::new();
        for m in self.show_sources(db, flt).await? {
            let keys: BTreeSet<String> = match &flt.condition {
                None => match self.load_schema(db, &m).await? {
                    Some(s) => s.tags,
                    None => continue,
                },
                Some(c) => self
                    .series_of(db, &m, Some(c), IndexRule::Tags)
                    .await?
                    .into_iter()
                    .flat_map(|t| t.into_keys())
                    .collect(),
            };
            let values: Vec<Vec<Value>> = page(keys, flt.limit, flt.offset)
                .into_iter()
                .map(|k| vec![Value::from(k)])
                .collect();
            if !values.is_empty() {
                out.push(RowSeries {
                    name: Some(m),
                    columns: vec!["tagKey".into()],
                    values,
                    ..Default::default()
                });
            }
        }
        Ok(out)
    }

    pub(crate) async fn show_tag_values(
        &self,
        db: &str,
        flt: &ShowFilter,
        key: &TagKeyMatch,
    ) -> Result<Vec<RowSeries>, ExecError> {
        let matches: Box<dyn Fn(&str) -> bool + Send + Sync> = match key {
            TagKeyMatch::Eq(k) => {
                let k = k.clone();
                Box::new(move |t| t == k)
            }
            TagKeyMatch::NotEq(k) => {
                let k = k.clone();
                Box::new(move |t| t != k)
            }
            TagKeyMatch::Regex(r) => {
                let re = regex(r)?;
                Box::new(move |t| re.is_match(t))
            }
            TagKeyMatch::NotRegex(r) => {
                let re = regex(r)?;
                Box::new(move |t| !re.is_match(t))
            }
            TagKeyMatch::In(ks) => {
                let ks = ks.clone();
                Box::new(move |t| ks.iter().any(|k| k == t))
            }
        };
        let mut out = Vec::new();
        for m in self.show_sources(db, flt).await? {
            let mut pairs = BTreeSet::new();
            // Only the keys asked for are read.
            if let Matching::Series { batches, tags } = self
                .matching_series(
                    db,
                    &m,
                    flt.condition.as_ref(),
                    IndexRule::Tags,
                    &*matches,
                    false,
                )
                .await?
            {
                for b in &batches {
                    for (k, a) in tags.iter().zip(texts(b)?) {
                        for v in a.iter().flatten() {
                            pairs.insert((k.clone(), v.to_string()));
                        }
                    }
                }
            }
            let values: Vec<Vec<Value>> = page(pairs, flt.limit, flt.offset)
                .into_iter()
                .map(|(k, v)| vec![Value::from(k), Value::from(v)])
                .collect();
            if !values.is_empty() {
                out.push(RowSeries {
                    name: Some(m),
                    columns: vec!["key".into(), "value".into()],
                    values,
                    ..Default::default()
                });
            }
        }
        Ok(out)
    }

    pub(crate) async fn show_field_keys(
        &self,
        db: &str,
        flt: &ShowFilter,
    ) -> Result<Vec<RowSeries>, ExecError> {
        if self.meta().catalog().database(db).is_none() {
            return Err(ExecError::DatabaseNotFound(db.to_string()));
        }
        let mut out = Vec::new();
        for m in self.show_sources(db, flt).await? {
            let Some(schema) = self.load_schema(db, &m).await? else {
                continue;
            };
            let values: Vec<Vec<Value>> = page(schema.fields, flt.limit, flt.offset)
                .into_iter()
                .map(|(k, t)| vec![Value::from(k), Value::from(t.name())])
                .collect();
            if !values.is_empty() {
                out.push(RowSeries {
                    name: Some(m),
                    columns: vec!["fieldKey".into(), "fieldType".into()],
                    values,
                    ..Default::default()
                });
            }
        }
        Ok(out)
    }

    pub(crate) async fn show_series(
        &self,
        db: &str,
        flt: &ShowFilter,
    ) -> Result<Vec<RowSeries>, ExecError> {
        let mut keys = Vec::new();
        for m in self.show_sources(db, flt).await? {
            for set in self
                .series_of(db, &m, flt.condition.as_ref(), IndexRule::Series)
                .await?
            {
                keys.push(series_key(&m, &set));
            }
        }
        keys.sort();
        let values: Vec<Vec<Value>> = page(keys, flt.limit, flt.offset)
            .into_iter()
            .map(|k| vec![Value::from(k)])
            .collect();
        if values.is_empty() {
            return Ok(vec![]);
        }
        Ok(vec![RowSeries {
            columns: vec!["key".into()],
            values,
            ..Default::default()
        }])
    }

    pub(crate) fn show_shards(&self) -> Vec<RowSeries> {
        let cat = self.meta().catalog();
        let columns: Vec<String> = [
            "id",
            "database",
            "retention_policy",
            "shard_group",
            "start_time",
            "end_time",
            "expiry_time",
            "owners",
        ]
        .iter()
        .map(|c| c.to_string())
        .collect();
        let mut out = Vec::new();
        for db in cat.databases_in_order() {
            let mut values = Vec::new();
            let mut rps: Vec<_> = db.retention_policies.values().collect();
            rps.sort_by_key(|r| r.seq);
            for rp in rps {
                for g in rp.live_shard_groups() {
                    for s in &g.shards {
                        let owners: Vec<String> = s.owners.iter().map(u64::to_string).collect();
                        values.push(vec![
                            Value::from(s.id),
                            Value::from(db.name.as_str()),
                            Value::from(rp.name.as_str()),
                            Value::from(g.id),
                            rfc3339(g.start),
                            rfc3339(g.end),
                            rfc3339(g.end.saturating_add(rp.duration)),
                            Value::from(owners.join(",")),
                        ]);
                    }
                }
            }
            out.push(RowSeries {
                name: Some(db.name.clone()),
                columns: columns.clone(),
                values,
                ..Default::default()
            });
        }
        out
    }

    /// `data_nodes` and `meta_nodes`, columns `id`, `http_addr`, `tcp_addr`, sorted by id.
    pub(crate) fn show_servers(&self) -> Vec<RowSeries> {
        let cat = self.meta().catalog();
        let columns: Vec<String> = ["id", "http_addr", "tcp_addr"]
            .iter()
            .map(|c| c.to_string())
            .collect();
        let rows = |nodes: &std::collections::BTreeMap<u64, catalog::NodeInfo>| -> Vec<Vec<Value>> {
            nodes
                .values()
                .map(|n| {
                    vec![
                        Value::from(n.id),
                        Value::from(n.http_addr.as_str()),
                        Value::from(n.tcp_addr.as_str()),
                    ]
                })
                .collect()
        };
        vec![
            RowSeries {
                name: Some("data_nodes".into()),
                columns: columns.clone(),
                values: rows(&cat.data_nodes),
                ..Default::default()
            },
            RowSeries {
                name: Some("meta_nodes".into()),
                columns,
                values: rows(&cat.meta_nodes),
                ..Default::default()
            },
        ]
    }

    /// `SHOW META STATUS`: one row per member of the Raft group, as the leader sees it.
    pub(crate) async fn show_meta_status(&self) -> Result<Vec<RowSeries>, catalog::MetaError> {
        let status = self.meta().cluster_status().await?;
        let columns: Vec<String> = [
            "id",
            "tcp_addr",
            "role",
            "matched_index",
            "commit_index",
            "term",
        ]
        .iter()
        .map(|c| c.to_string())
        .collect();
        let values = status
            .members
            .iter()
            .map(|m| {
                vec![
                    Value::from(m.raft_id),
                    Value::from(m.tcp_addr.as_str()),
                    Value::from(m.role.as_str()),
                    m.matched_index.map(Value::from).unwrap_or(Value::Null),
                    status.commit_index.map(Value::from).unwrap_or(Value::Null),
                    Value::from(status.term),
                ]
            })
            .collect();
        Ok(vec![RowSeries {
            name: Some("meta_status".into()),
            columns,
            values,
            ..Default::default()
        }])
    }

    pub(crate) fn show_shard_groups(&self) -> Vec<RowSeries> {
        let cat = self.meta().catalog();
        let mut values = Vec::new();
        for db in cat.databases_in_order() {
            let mut rps: Vec<_> = db.retention_policies.values().collect();
            rps.sort_by_key(|r| r.seq);
            for rp in rps {
                for g in rp.live_shard_groups() {
                    values.push(vec![
                        Value::from(g.id),
                        Value::from(db.name.as_str()),
                        Value::from(rp.name.as_str()),
                        rfc3339(g.start),
                        rfc3339(g.end),
                        rfc3339(g.end.saturating_add(rp.duration)),
                    ]);
                }
            }
        }
        let columns = [
            "id",
            "database",
            "retention_policy",
            "start_time",
            "end_time",
            "expiry_time",
        ]
        .iter()
        .map(|c| c.to_string())
        .collect();
        vec![RowSeries {
            name: Some("shard groups".into()),
            columns,
            values,
            ..Default::default()
        }]
    }

    /// `SHOW QUERIES`: the queries running on this node, as 1.x lists them (no series name).
    /// `SHOW QUERIES`: on a node alone, 1.x's columns; in a cluster, every node's queries with
    /// Enterprise's (`node_id` and `tcp_host`, what `KILL QUERY <qid> ON "<tcp_host>"` names).
    /// A node that does not answer is left out (and logged).
    pub(crate) async fn show_queries(&self) -> Vec<RowSeries> {
        let duration = |ns: u64| Value::from(crate::queries::go_duration(Duration::from_nanos(ns)));
        let local = || {
            self.queries()
                .list()
                .into_iter()
                .map(crate::queries::RemoteQuery::from)
        };
        let nodes = self.cluster_nodes();
        let remote = match self.cluster_queries() {
            Some(r) if nodes.len() > 1 => r,
            _ => {
                let values = local()
                    .map(|q| {
                        vec![
                            Value::from(q.id),
                            Value::from(q.text),
                            Value::from(q.database),
                            duration(q.duration_ns),
                            Value::from("running"),
                        ]
                    })
                    .collect();
                return vec![RowSeries {
                    columns: ["qid", "query", "database", "duration", "status"]
                        .iter()
                        .map(|c| c.to_string())
                        .collect(),
                    values,
                    ..Default::default()
                }];
            }
        };
        let lists = futures::future::join_all(nodes.iter().map(|n| async move {
            match n.here {
                true => Some(local().collect::<Vec<_>>()),
                false => match remote.list(&n.tcp_addr).await {
                    Ok(l) => Some(l),
                    Err(e) => {
                        tracing::warn!(node = n.id, addr = %n.tcp_addr, error = %e, "SHOW QUERIES: a node did not answer");
                        None
                    }
                },
            }
        }))
        .await;
        let mut values = Vec::new();
        for (n, list) in nodes.iter().zip(lists) {
            for q in list.into_iter().flatten() {
                values.push(vec![
                    Value::from(q.id),
                    Value::from(n.id),
                    Value::from(n.tcp_addr.clone()),
                    Value::from(q.text),
                    Value::from(q.database),
                    duration(q.duration_ns),
                    Value::from("running"),
                ]);
            }
        }
        vec![RowSeries {
            columns: [
                "qid", "node_id", "tcp_host", "query", "database", "duration", "status",
            ]
            .iter()
            .map(|c| c.to_string())
            .collect(),
            values,
            ..Default::default()
        }]
    }
}

/// Whether `SHOW <inner> [EXACT] CARDINALITY` is 1.x's `cardinality estimation` of the whole
/// database: series or measurements asked without `EXACT`, `FROM`, `WHERE` (or `WITH`) or
/// `LIMIT` (1.x: a database it does not know has 0).
pub(crate) fn is_estimate(exact: bool, inner: &crate::influxql::Statement) -> bool {
    use crate::influxql::Statement as S;
    match inner {
        _ if exact => false,
        S::ShowSeries(flt) => {
            flt.sources.is_empty()
                && flt.condition.is_none()
                && flt.limit.is_none()
                && flt.offset.is_none()
        }
        S::ShowMeasurements {
            with, condition, ..
        } => with.is_none() && condition.is_none(),
        _ => false,
    }
}

impl Executor {
    /// `SHOW ... [EXACT] CARDINALITY`: the rows of the matching `SHOW` statement counted per
    /// measurement (a series `count` each), or, for series and measurements asked without
    /// `EXACT`, `FROM` or `WHERE`, in all (1.x's `cardinality estimation`; the count here is
    /// exact).
    pub(crate) async fn show_cardinality(
        &self,
        db: &str,
        exact: bool,
        inner: &crate::influxql::Statement,
    ) -> Result<Vec<RowSeries>, ExecError> {
        use crate::influxql::Statement as S;
        let estimate = |n: usize| RowSeries {
            columns: vec!["cardinality estimation".into()],
            values: vec![vec![Value::from(n)]],
            ..Default::default()
        };
        let counted = |series: Vec<RowSeries>| -> Vec<RowSeries> {
            series
                .into_iter()
                .filter(|s| !s.values.is_empty())
                .map(|s| RowSeries {
                    name: s.name,
                    columns: vec!["count".into()],
                    values: vec![vec![Value::from(s.values.len())]],
                    ..Default::default()
                })
                .collect()
        };
        // 1.x counts these on its index, which a time range cannot restrict (`SHOW TAG
        // VALUES` picks shards by it, as its listing does).
        let (condition, statement) = match inner {
            S::ShowSeries(flt) => (&flt.condition, "SHOW SERIES EXACT CARDINALITY"),
            S::ShowTagKeys(flt) => (&flt.condition, "SHOW TAG KEY EXACT CARDINALITY"),
            S::ShowMeasurements { condition, .. } => {
                (condition, "SHOW MEASUREMENT EXACT CARDINALITY")
            }
            S::ShowFieldKeys(flt) => (&flt.condition, "SHOW FIELD KEY CARDINALITY"),
            _ => (&None, ""),
        };
        let timed = condition
            .as_ref()
            .filter(|c| mentions_time(c))
            .map(|_| statement);
        if let Some(statement) = timed {
            return Err(ExecError::Query(format!(
                "{statement} doesn't support time in WHERE clause"
            )));
        }
        let estimated = is_estimate(exact, inner);
        Ok(match inner {
            S::ShowSeries(_) if estimated && self.meta().catalog().database(db).is_none() => {
                vec![estimate(0)]
            }
            S::ShowSeries(flt) => {
                let mut per_measurement = Vec::new();
                for m in self.show_sources(db, flt).await? {
                    let n = self
                        .series_count(db, &m, flt.condition.as_ref(), IndexRule::Points)
                        .await?;
                    if n > 0 {
                        per_measurement.push((m, n));
                    }
                }
                if estimated {
                    vec![estimate(per_measurement.iter().map(|(_, n)| n).sum())]
                } else {
                    per_measurement
                        .into_iter()
                        .map(|(m, n)| RowSeries {
                            name: Some(m),
                            columns: vec!["count".into()],
                            values: vec![vec![Value::from(n)]],
                            ..Default::default()
                        })
                        .collect()
                }
            }
            S::ShowMeasurements {
                with, condition, ..
            } => {
                let shown = self
                    .show_measurements(db, with.as_ref(), condition.as_ref(), None, None)
                    .await?;
                let n: usize = shown.iter().map(|s| s.values.len()).sum();
                if estimated {
                    vec![estimate(n)]
                } else if n == 0 {
                    vec![]
                } else {
                    vec![RowSeries {
                        columns: vec!["count".into()],
                        values: vec![vec![Value::from(n)]],
                        ..Default::default()
                    }]
                }
            }
            S::ShowTagKeys(flt) => counted(self.show_tag_keys(db, flt).await?),
            S::ShowTagValues { filter, key } => {
                counted(self.show_tag_values(db, filter, key).await?)
            }
            S::ShowFieldKeys(flt) => counted(self.show_field_keys(db, flt).await?),
            other => {
                return Err(ExecError::Internal(format!("no cardinality of {other}")));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> ingester::TableSchema {
        let mut s = ingester::TableSchema::default();
        s.tags.insert("host".into());
        s.fields.insert("f".into(), ingester::FieldType::Float);
        s
    }

    fn condition(text: &str) -> Expr {
        match crate::influxql::parse_query(&format!("SHOW SERIES WHERE {text}")) {
            Ok(mut q) => match q.remove(0) {
                crate::influxql::Statement::ShowSeries(flt) => match flt.condition {
                    Some(c) => c,
                    None => panic!("no condition in {text}"),
                },
                other => panic!("not SHOW SERIES: {other:?}"),
            },
            Err(e) => panic!("{e}"),
        }
    }

    fn read(text: &str, rule: IndexRule) -> Result<String, String> {
        index_condition(&condition(text), &schema(), rule)
            .map(|e| e.to_string())
            .map_err(|e| e.to_string())
    }

    /// The rules 1.6.7 follows (its answers are compared in the compatibility suite).
    #[test]
    fn show_conditions_are_read_as_the_series_index_reads_them() {
        use IndexRule::*;
        let bad = Err("invalid tag comparison operator".to_string());
        assert_eq!(read("f > 10", Series), bad);
        assert_eq!(read("host > 'a'", Series), bad);
        assert_eq!(read("f + 1 = 2", Series), bad);
        // A field, or a value that is no string, holds for every series...
        assert_eq!(read("f = 'x'", Series), Ok("true".into()));
        assert_eq!(read("host = 10", Series), Ok("true".into()));
        assert_eq!(
            read("host = 'a' AND f != 'x'", Series),
            Ok("host = 'a' AND true".into())
        );
        // SHOW MEASUREMENTS decides per measurement, on its series.
        let sets = |hosts: &[&str]| -> Vec<TagSet> {
            hosts
                .iter()
                .map(|h| TagSet::from([("host".to_string(), h.to_string())]))
                .collect()
        };
        let m = |text: &str, hosts: &[&str]| {
            measurement_matches(&condition(text), &schema(), &sets(hosts))
                .map_err(|e| e.to_string())
        };
        assert_eq!(m("host != 'b'", &["a"]), Ok(true));
        assert_eq!(m("host != 'b'", &["a", "b"]), Ok(false));
        assert_eq!(m("host !~ /b/", &["a", "b"]), Ok(false));
        assert_eq!(m("host = 'b' AND host = 'a'", &["a", "b"]), Ok(true));
        assert_eq!(m("f = 'x'", &["a"]), Ok(false));
        assert_eq!(m("zz != 'x'", &["a"]), Ok(false));
        assert_eq!(m("'a' = host OR f = 'x'", &["a"]), Ok(true));
        assert_eq!(
            m("host != 10", &["a"]),
            Err("right side of '!=' must be a tag value string".into())
        );
        assert_eq!(
            m("host > 'a'", &["a"]),
            Err("invalid tag comparison operator".into())
        );
        // With time, SHOW SERIES reads points; the cardinalities always do.
        assert_eq!(
            read("time > 0 AND f > 1", Series),
            Ok("time > 0 AND f > 1".into())
        );
        assert_eq!(read("f > 1", Points), Ok("f > 1".into()));
    }
}

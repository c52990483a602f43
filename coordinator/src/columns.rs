//! Replicated shards agree on their columns before their points go out.
//!
//! Each owner checks points against its own schema: a field whose type differs from the one
//! the shard has is dropped with 1.x's reason. For a shard with several owners, that alone
//! would let two racing writes leave the owners with different types. So the coordinator
//! checks the points of such a shard against the columns declared for it in the catalog
//! (`catalog::columns`), declares the new ones through Raft (the first declaration wins), and
//! drops the points that disagree with what was decided, exactly as an owner would, before
//! any owner sees them. Every owner then gets points that agree with one schema.
//!
//! ```text
//!  routed points of a shard with 2+ owners
//!     ─▶ check each point against declared ∪ this request's new columns (in request order)
//!     ─▶ new columns? DeclareColumns ─▶ winners ─▶ check again (a lost race may drop points)
//!     ─▶ points that fail: dropped with the owner's reason; the rest go to every owner
//! ```
//!
//! The check mirrors `ingester::engine::validation` rule for rule and shares its texts; a
//! point the owners refuse for reasons of its own (a `time` tag) is left to them: they all
//! refuse it alike. Shards with one owner skip all of this.

use std::collections::HashMap;

use catalog::{CatalogState, ColumnDeclaration, ColumnType, Command, MetaService, Outcome};
use ingester::WriteOutcome;
use ingester::engine::validation::{
    Shape, field_name_conflict, field_type_conflict, tag_key_conflict,
};
use line_protocol::{FieldValue, Point};

use crate::write::{Routed, WriteError};

/// The `time` key, which owners strip from fields and refuse as a tag.
const TIME: &str = "time";

/// How long a write that would refuse points waits for this node's catalog to catch up.
const CATCH_UP: std::time::Duration = std::time::Duration::from_secs(5);

/// Columns of one shard decided or proposed during this request: measurement → column → type.
type Columns = HashMap<String, HashMap<String, ColumnType>>;

/// Checks the points of every shard with more than one owner against the shard's declared
/// columns, declares those it lacks, and removes the points that disagree: what was dropped,
/// per shard, with the first reason.
pub(crate) async fn agree(
    meta: &MetaService,
    routed: &mut Vec<Routed<'_>>,
) -> Result<WriteOutcome, WriteError> {
    let mut out = WriteOutcome::default();
    if routed.iter().all(|r| r.owners.len() < 2) {
        return Ok(out);
    }
    // Winners the catalog answered during this request, per shard (this node's copy of the
    // catalog may not have applied them yet).
    let mut decided: HashMap<u64, Columns> = HashMap::new();
    // A point that disagrees is refused only against a catalog as new as the leader's: a
    // `DROP MEASUREMENT` just committed through another node lets its columns go.
    let mut caught_up = false;
    loop {
        let catalog = meta.catalog();
        let mut proposals = Vec::new();
        let mut verdicts = Vec::with_capacity(routed.len());
        for r in routed.iter().filter(|r| r.owners.len() > 1) {
            let known = Known {
                catalog: &catalog,
                shard: r.shard,
                decided: decided.get(&r.shard),
            };
            let (verdict, new) = check_shard(&known, &r.points);
            proposals.extend(new.into_iter().flat_map(|(m, cols)| {
                cols.into_iter()
                    .map(move |(column, kind)| ColumnDeclaration {
                        shard: r.shard,
                        measurement: m.clone(),
                        column,
                        kind,
                    })
            }));
            verdicts.push((r.shard, verdict));
        }
        let refused = verdicts.iter().any(|(_, v)| v.iter().any(Result::is_err));
        if refused && !caught_up {
            caught_up = true;
            meta.catch_up(CATCH_UP).await;
            decided.clear();
            continue;
        }
        if proposals.is_empty() {
            apply(routed, verdicts, &mut out);
            return Ok(out);
        }
        // Each round declares at least one column of this request, so rounds are bounded by
        // the request's distinct columns.
        let answer = meta
            .execute(Command::DeclareColumns {
                columns: proposals.clone(),
            })
            .await?;
        let Outcome::Columns(kinds) = answer else {
            return Err(WriteError::Failed(format!(
                "declaring columns answered {answer:?}"
            )));
        };
        for (d, kind) in proposals.into_iter().zip(kinds) {
            decided
                .entry(d.shard)
                .or_default()
                .entry(d.measurement)
                .or_default()
                .insert(d.column, kind);
        }
    }
}

/// What a shard's columns are known to be: declared in the catalog, or decided during this
/// request.
struct Known<'a> {
    catalog: &'a CatalogState,
    shard: u64,
    decided: Option<&'a Columns>,
}

impl Known<'_> {
    fn get(&self, m: &str, column: &str) -> Option<ColumnType> {
        self.decided
            .and_then(|d| d.get(m)?.get(column).copied())
            .or_else(|| {
                self.catalog
                    .declared_columns(self.shard, m)?
                    .get(column)
                    .copied()
            })
    }
}

/// Per point, `Err(reason)` if it disagrees with the known columns and those proposed by the
/// points before it; and the columns the passing points propose.
fn check_shard(known: &Known<'_>, points: &[Point<'_>]) -> (Vec<Result<(), String>>, Columns) {
    let mut proposed: Columns = HashMap::new();
    // Shapes of points that passed: a point of the same measurement and shape passes too.
    let mut passed: HashMap<u64, Vec<(String, Shape)>> = HashMap::new();
    let verdicts = points
        .iter()
        .map(|p| {
            let m = p.measurement.as_ref();
            let h = Shape::hash(p);
            let seen = passed
                .get(&h)
                .is_some_and(|v| v.iter().any(|(pm, s)| pm == m && s.matches(p)));
            if seen {
                return Ok(());
            }
            let lookup = |proposed: &Columns, c: &str| {
                known
                    .get(m, c)
                    .or_else(|| proposed.get(m).and_then(|cols| cols.get(c).copied()))
            };
            if !check_point(p, |c| lookup(&proposed, c))? {
                return Ok(());
            }
            for (k, kind) in columns_of(p) {
                if lookup(&proposed, k).is_none() {
                    proposed
                        .entry(m.to_string())
                        .or_default()
                        .insert(k.to_string(), kind);
                }
            }
            passed
                .entry(h)
                .or_default()
                .push((m.to_string(), Shape::of(p)));
            Ok(())
        })
        .collect();
    (verdicts, proposed)
}

/// The owners' check of one point (`ingester::engine::validation::validate`), against columns
/// looked up by name: `Ok(false)` for a point every owner refuses alike for reasons of its own
/// (it declares nothing).
fn check_point(p: &Point<'_>, lookup: impl Fn(&str) -> Option<ColumnType>) -> Result<bool, String> {
    let m = p.measurement.as_ref();
    if p.tags.iter().any(|(k, _)| k == TIME) || p.fields.iter().all(|(k, _)| k == TIME) {
        return Ok(false);
    }
    for (k, v) in p.fields.iter().filter(|(k, _)| k != TIME) {
        let kind = column_type(v);
        match lookup(k) {
            Some(ColumnType::Tag) => return Err(field_name_conflict(m, k)),
            Some(existing) if existing != kind => {
                return Err(field_type_conflict(m, k, kind.name(), existing.name()));
            }
            _ => {}
        }
        if p.tags.iter().any(|(tk, _)| tk == k) {
            return Err(field_name_conflict(m, k));
        }
    }
    for (k, _) in &p.tags {
        if lookup(k).is_some_and(|c| c != ColumnType::Tag) {
            return Err(tag_key_conflict(m, k));
        }
    }
    Ok(true)
}

/// The columns a point that passed brings: its tag keys, and its fields with their types.
fn columns_of<'p>(p: &'p Point<'_>) -> impl Iterator<Item = (&'p str, ColumnType)> {
    let tags = p.tags.iter().map(|(k, _)| (k.as_ref(), ColumnType::Tag));
    let fields = p
        .fields
        .iter()
        .filter(|(k, _)| k != TIME)
        .map(|(k, v)| (k.as_ref(), column_type(v)));
    tags.chain(fields)
}

fn column_type(v: &FieldValue<'_>) -> ColumnType {
    match v {
        FieldValue::Float(_) => ColumnType::Float,
        FieldValue::Integer(_) => ColumnType::Integer,
        FieldValue::UInteger(_) => ColumnType::Unsigned,
        FieldValue::String(_) => ColumnType::String,
        FieldValue::Boolean(_) => ColumnType::Boolean,
    }
}

/// Removes the points that failed, counting them per shard; shards left without points go.
fn apply(
    routed: &mut Vec<Routed<'_>>,
    verdicts: Vec<(u64, Vec<Result<(), String>>)>,
    out: &mut WriteOutcome,
) {
    for (shard, verdict) in verdicts {
        if verdict.iter().all(Result::is_ok) {
            continue;
        }
        let Some(r) = routed.iter_mut().find(|r| r.shard == shard) else {
            continue;
        };
        let mut verdict = verdict.into_iter();
        let mut dropped = 0;
        r.points.retain(|_| match verdict.next() {
            Some(Err(reason)) => {
                out.reason.get_or_insert(reason);
                dropped += 1;
                false
            }
            _ => true,
        });
        out.dropped += dropped;
        out.dropped_in.push((shard, dropped));
    }
    routed.retain(|r| !r.points.is_empty());
}

#[cfg(test)]
mod tests {
    use super::*;
    use line_protocol::{ParseOptions, parse_body};

    fn points(body: &str) -> Vec<Point<'_>> {
        let opts = ParseOptions {
            allow_unsigned: true,
            ..ParseOptions::default()
        };
        let parsed = parse_body(body.as_bytes(), &opts);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        parsed.points
    }

    fn verdicts(known: &Known<'_>, body: &str) -> (Vec<Option<String>>, Columns) {
        let pts = points(body);
        let (v, cols) = check_shard(known, &pts);
        (v.into_iter().map(Result::err).collect(), cols)
    }

    #[test]
    fn a_request_decides_its_new_columns_in_order_as_an_owner_would() {
        let catalog = CatalogState::default();
        let known = Known {
            catalog: &catalog,
            shard: 1,
            decided: None,
        };
        let (v, cols) = verdicts(
            &known,
            "m,h=a f=1i 1\nm,h=a f=1.5 2\nm,h=a f=2i 3\nm,f=x g=1 4\nm h=1 5\nm,time=x f=1i 6\nm time=1 7",
        );
        assert_eq!(v[0], None);
        assert_eq!(
            v[1].as_deref(),
            Some(
                "field type conflict: input field \"f\" on measurement \"m\" is type float, already exists as type integer"
            )
        );
        assert_eq!(v[2], None, "the same shape passes again");
        assert_eq!(
            v[3].as_deref(),
            Some("tag key conflict: input tag \"f\" on measurement \"m\" is also a field")
        );
        assert_eq!(
            v[4].as_deref(),
            Some("field name conflict: input field \"h\" on measurement \"m\" is also a tag key")
        );
        assert_eq!(v[5], None, "a time tag is the owners' to refuse");
        assert_eq!(v[6], None, "a time-only field is the owners' to refuse");
        let m = &cols["m"];
        assert_eq!(m.len(), 2, "{m:?}");
        assert_eq!(m["h"], ColumnType::Tag);
        assert_eq!(m["f"], ColumnType::Integer);
    }

    #[test]
    fn declared_and_decided_columns_win_over_the_request() {
        let mut catalog = CatalogState::default();
        catalog
            .shard_columns
            .entry(1)
            .or_default()
            .entry("m".into())
            .or_default()
            .insert("f".into(), ColumnType::Boolean);
        let mut decided: Columns = HashMap::new();
        decided
            .entry("m".into())
            .or_default()
            .insert("g".into(), ColumnType::String);
        let known = Known {
            catalog: &catalog,
            shard: 1,
            decided: Some(&decided),
        };
        let (v, cols) = verdicts(&known, "m f=1.0 1\nm g=1i 2\nm f=true,g=\"s\",n=1u 3");
        assert!(
            v[0].as_deref()
                .unwrap()
                .contains("already exists as type boolean")
        );
        assert!(
            v[1].as_deref()
                .unwrap()
                .contains("already exists as type string")
        );
        assert_eq!(v[2], None);
        assert_eq!(cols["m"].len(), 1);
        assert_eq!(cols["m"]["n"], ColumnType::Unsigned);
        // Another shard knows nothing of them.
        let other = Known {
            catalog: &catalog,
            shard: 2,
            decided: None,
        };
        let (v, _) = verdicts(&other, "m f=1.0 1");
        assert_eq!(v[0], None);
    }
}

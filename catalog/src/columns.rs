//! Columns declared in replicated shards: one decision per shard about what each column of a
//! measurement is (a tag, or a field of one type), so that every owner refuses the same points.
//!
//! An owner decides a field type conflict against its own schema. With one owner that is the
//! whole story; with several, two writes racing through different nodes could reach the owners
//! in opposite orders, and each owner would keep a different type (and refuse the other's
//! points). So before a write to a shard with more than one owner goes out, the write
//! coordinator declares the columns the shard has not seen yet ([`Command::DeclareColumns`]):
//! the first declaration the Raft log orders wins, every later one learns the winner, and the
//! coordinator drops the points that disagree with it before any owner sees them.
//!
//! ```text
//!  write ─▶ coordinator: columns of a replicated shard not declared yet?
//!             └─ DeclareColumns [(shard, m, col, kind)] ─▶ Raft ─▶ first wins, winners answered
//!           points that disagree with the winners: dropped here (1.x's reason, 400)
//!           the rest ─▶ every owner (each still checks its own schema: it agrees)
//! ```
//!
//! Declarations go with their shard (a deleted group, a dropped database or policy), and with
//! any delete that reaches a measurement in a shard (`DROP MEASUREMENT`, `DELETE`, `DROP
//! SERIES`): one that leaves the measurement empty lets it come back with other types, as 1.x
//! does, and only the owners can tell whether it did. Letting a declaration go is always safe:
//! the owners' schemas agreed while it held, so the next write either agrees with them (and is
//! declared again) or is refused by all of them alike. Shards with a single owner declare
//! nothing.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::model::{CatalogState, Nanos, Outcome};

/// What a column of a measurement is in one shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    Tag,
    Float,
    Integer,
    Unsigned,
    String,
    Boolean,
}

impl ColumnType {
    /// The name 1.x prints in `field type conflict` errors (`tag` for a tag).
    pub fn name(self) -> &'static str {
        match self {
            Self::Tag => "tag",
            Self::Float => "float",
            Self::Integer => "integer",
            Self::Unsigned => "unsigned",
            Self::String => "string",
            Self::Boolean => "boolean",
        }
    }
}

/// One column proposed for a shard ([`Command::DeclareColumns`](crate::Command::DeclareColumns)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnDeclaration {
    pub shard: u64,
    pub measurement: String,
    pub column: String,
    pub kind: ColumnType,
}

/// The declarations a recorded delete removes: those of the measurements it reaches in shards
/// whose group overlaps `[min_time, max_time]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgetColumns {
    /// Every retention policy when `None`.
    pub retention_policy: Option<String>,
    /// Every measurement when `None`.
    pub measurements: Option<Vec<String>>,
    /// Inclusive bounds.
    pub min_time: Nanos,
    pub max_time: Nanos,
}

/// Per shard, per measurement: the declared columns.
pub type ShardColumns = BTreeMap<u64, BTreeMap<String, BTreeMap<String, ColumnType>>>;

impl CatalogState {
    /// The columns declared for `measurement` in `shard`.
    pub fn declared_columns(
        &self,
        shard: u64,
        measurement: &str,
    ) -> Option<&BTreeMap<String, ColumnType>> {
        self.shard_columns.get(&shard)?.get(measurement)
    }

    /// Records each declaration unless its column is declared already; answers, in order,
    /// what each column is now. A shard that is not live records nothing (its writes fail at
    /// the owners), and gets its proposal back.
    pub(crate) fn declare_columns(&mut self, columns: &[ColumnDeclaration]) -> Outcome {
        let live = self.live_shard_ids();
        let kinds = columns
            .iter()
            .map(|d| {
                if !live.contains(&d.shard) {
                    return d.kind;
                }
                *self
                    .shard_columns
                    .entry(d.shard)
                    .or_default()
                    .entry(d.measurement.clone())
                    .or_default()
                    .entry(d.column.clone())
                    .or_insert(d.kind)
            })
            .collect();
        Outcome::Columns(kinds)
    }

    /// Removes the declarations a delete of `database` lets go.
    pub(crate) fn forget_columns(&mut self, database: &str, f: &ForgetColumns) {
        let Some(db) = self.databases.get(database) else {
            return;
        };
        let shards: Vec<u64> = db
            .retention_policies
            .values()
            .filter(|rp| f.retention_policy.as_deref().is_none_or(|r| r == rp.name))
            .flat_map(|rp| rp.shard_groups.iter())
            .filter(|g| g.overlaps(f.min_time, f.max_time))
            .flat_map(|g| g.shards.iter().map(|s| s.id))
            .collect();
        for shard in shards {
            let Some(ms) = self.shard_columns.get_mut(&shard) else {
                continue;
            };
            match &f.measurements {
                None => ms.clear(),
                Some(names) => ms.retain(|m, _| !names.contains(m)),
            }
            if ms.is_empty() {
                self.shard_columns.remove(&shard);
            }
        }
    }

    /// Lets go of the declarations of shards that are no longer live.
    pub(crate) fn prune_columns(&mut self) {
        if self.shard_columns.is_empty() {
            return;
        }
        let live = self.live_shard_ids();
        self.shard_columns.retain(|s, _| live.contains(s));
    }

    fn live_shard_ids(&self) -> BTreeSet<u64> {
        self.databases
            .values()
            .flat_map(|db| db.retention_policies.values())
            .flat_map(|rp| rp.live_shard_groups())
            .flat_map(|g| g.shards.iter().map(|s| s.id))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Command, RetentionPolicySpec, ShardGroupInfo};

    /// Two data nodes and database `db` with a policy of RF 2, and a group at time 0.
    fn replicated() -> (CatalogState, ShardGroupInfo) {
        let mut s = CatalogState::default();
        for id in [1, 2] {
            s.apply(&Command::RegisterDataNode {
                id: Some(id),
                http_addr: format!("n{id}:8086"),
                tcp_addr: format!("n{id}:8088"),
            })
            .unwrap();
        }
        let rp = RetentionPolicySpec {
            name: "two".into(),
            duration: None,
            shard_group_duration: None,
            replica_n: Some(2),
        };
        s.apply(&Command::CreateDatabase {
            name: "db".into(),
            rp: Some(rp),
        })
        .unwrap();
        let Ok(Outcome::ShardGroup(g)) = s.apply(&Command::CreateShardGroup {
            database: "db".into(),
            rp: "two".into(),
            timestamp: 0,
        }) else {
            panic!("no group")
        };
        (s, g)
    }

    fn declare(s: &mut CatalogState, cols: &[(u64, &str, &str, ColumnType)]) -> Vec<ColumnType> {
        let columns = cols
            .iter()
            .map(|(shard, m, c, kind)| ColumnDeclaration {
                shard: *shard,
                measurement: m.to_string(),
                column: c.to_string(),
                kind: *kind,
            })
            .collect();
        match s.apply(&Command::DeclareColumns { columns }).unwrap() {
            Outcome::Columns(k) => k,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_first_declaration_wins_and_later_ones_learn_it() {
        let (mut s, g) = replicated();
        let shard = g.shards[0].id;
        use ColumnType::*;
        assert_eq!(
            declare(
                &mut s,
                &[(shard, "m", "f", Integer), (shard, "m", "h", Tag)]
            ),
            vec![Integer, Tag]
        );
        assert_eq!(
            declare(
                &mut s,
                &[
                    (shard, "m", "f", Float),
                    (shard, "m", "g", Float),
                    (shard, "n", "f", Float)
                ]
            ),
            vec![Integer, Float, Float],
            "f stays integer in m; n is another measurement"
        );
        assert_eq!(s.declared_columns(shard, "m").unwrap().len(), 3);
        // A shard that does not exist records nothing and gets its proposal back.
        assert_eq!(declare(&mut s, &[(999, "m", "f", Boolean)]), vec![Boolean]);
        assert!(s.declared_columns(999, "m").is_none());
        // The state survives the log's JSON (snapshots, restarts).
        let back: CatalogState = serde_json::from_slice(&serde_json::to_vec(&s).unwrap()).unwrap();
        assert_eq!(
            back.declared_columns(shard, "m"),
            s.declared_columns(shard, "m")
        );
    }

    #[test]
    fn declarations_go_with_their_shard_and_with_whole_measurement_deletes() {
        let (mut s, g) = replicated();
        let shard = g.shards[0].id;
        declare(
            &mut s,
            &[
                (shard, "m", "f", ColumnType::Integer),
                (shard, "n", "f", ColumnType::Float),
            ],
        );
        let delete = |s: &mut CatalogState, min_time, measurements: Option<Vec<String>>| {
            s.apply(&Command::RecordDelete {
                database: "db".into(),
                scope: "{}".into(),
                forget_columns: Some(ForgetColumns {
                    retention_policy: None,
                    measurements,
                    min_time,
                    max_time: i64::MAX,
                }),
            })
            .unwrap();
        };
        // Past the group: kept.
        delete(&mut s, g.end, Some(vec!["m".into()]));
        assert!(s.declared_columns(shard, "m").is_some());
        // Reaching into it (it may have emptied the measurement there): let go.
        delete(&mut s, g.end - 1, Some(vec!["m".into()]));
        assert!(s.declared_columns(shard, "m").is_none());
        assert!(s.declared_columns(shard, "n").is_some());
        s.apply(&Command::DeleteShardGroup {
            database: "db".into(),
            rp: "two".into(),
            id: g.id,
            deleted_at: 1,
        })
        .unwrap();
        assert!(
            s.shard_columns.is_empty(),
            "a deleted group's declarations go"
        );
    }
}

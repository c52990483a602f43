//! Continuous queries in the catalog: their text, and how far each has run.
//!
//! A continuous query is kept with its database, in creation order (1.x lists them so), as the
//! normalized `CREATE CONTINUOUS QUERY` text the querier made of the statement. Running them is
//! the querier's (`querier::continuous`); the catalog keeps what makes a run happen exactly
//! once in the cluster:
//!
//! ```text
//!  last_run ── 1.x's LastRun: the time the query last ran, truncated to its RESAMPLE EVERY
//!  pending  ── a run claimed and not yet finished: the node that runs it and its time range
//!
//!  runner (the meta leader)                       catalog (Raft)
//!   Claim {expect: last_run, pending} ───────────▶ compare-and-set: only one claim of the
//!     │                                            same state commits; a deposed leader's
//!     │ run SELECT ... INTO over [start, end)      stale claim is refused (Claimed(false))
//!   Finish {node, start, end} ───────────────────▶ pending cleared (if still this run)
//! ```
//!
//! A run that did not finish (its node stopped, or the statement failed for want of a node)
//! stays pending; the next leader claims it (a takeover: same range, its own node id) and runs
//! it again. Running a range again writes the same points, so the effect is exactly once.

use serde::{Deserialize, Serialize};

use crate::error::CatalogError;
use crate::model::{CatalogState, Nanos, Outcome};

/// One continuous query ([`crate::DatabaseInfo::continuous_queries`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContinuousQueryInfo {
    pub name: String,
    /// The whole `CREATE CONTINUOUS QUERY ... END` statement, sources and target qualified.
    pub query: String,
    /// When it last ran (1.x's `LastRun`); `None` until its first run.
    #[serde(default)]
    pub last_run: Option<Nanos>,
    /// A run claimed and not yet finished.
    #[serde(default)]
    pub pending: Option<PendingRun>,
}

/// A claimed run of a continuous query: who runs it, over which time range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRun {
    pub node: u64,
    /// Inclusive start, exclusive end (nanoseconds).
    pub start: Nanos,
    pub end: Nanos,
}

/// Changes to continuous queries ([`crate::Command::ContinuousQuery`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CqCommand {
    /// Idempotent for the same text; another text under the same name is refused.
    Create {
        database: String,
        name: String,
        query: String,
    },
    /// Dropping one that does not exist is not an error (1.x).
    Drop { database: String, name: String },
    /// Claims a run if the query is still as the runner saw it (`expect_last_run`,
    /// `expect_pending`): sets `last_run`, and `pending` to `run` on `node`. Answers
    /// [`Outcome::Claimed`].
    Claim {
        database: String,
        name: String,
        node: u64,
        expect_last_run: Option<Nanos>,
        expect_pending: Option<PendingRun>,
        last_run: Nanos,
        run: Option<(Nanos, Nanos)>,
    },
    /// The run `pending` describes has finished; ignored if the query's pending run is not
    /// this one any more (another node took it over).
    Finish {
        database: String,
        name: String,
        run: PendingRun,
    },
}

impl CatalogState {
    pub(crate) fn apply_cq_command(&mut self, cmd: &CqCommand) -> Result<Outcome, CatalogError> {
        match cmd {
            CqCommand::Create {
                database,
                name,
                query,
            } => {
                let db = self
                    .databases
                    .get_mut(database)
                    .ok_or_else(|| CatalogError::DatabaseNotFound(database.clone()))?;
                match db.continuous_queries.iter().find(|c| &c.name == name) {
                    Some(c) if &c.query == query => Ok(Outcome::Done),
                    Some(_) => Err(CatalogError::ContinuousQueryExists),
                    None => {
                        db.continuous_queries.push(ContinuousQueryInfo {
                            name: name.clone(),
                            query: query.clone(),
                            last_run: None,
                            pending: None,
                        });
                        Ok(Outcome::Done)
                    }
                }
            }
            CqCommand::Drop { database, name } => {
                if let Some(db) = self.databases.get_mut(database) {
                    db.continuous_queries.retain(|c| &c.name != name);
                }
                Ok(Outcome::Done)
            }
            CqCommand::Claim {
                database,
                name,
                node,
                expect_last_run,
                expect_pending,
                last_run,
                run,
            } => {
                let Some(cq) = self.continuous_query_mut(database, name) else {
                    return Ok(Outcome::Claimed(false));
                };
                if cq.last_run != *expect_last_run || cq.pending != *expect_pending {
                    return Ok(Outcome::Claimed(false));
                }
                cq.last_run = Some(*last_run);
                cq.pending = run.map(|(start, end)| PendingRun {
                    node: *node,
                    start,
                    end,
                });
                Ok(Outcome::Claimed(true))
            }
            CqCommand::Finish {
                database,
                name,
                run,
            } => {
                if let Some(cq) = self.continuous_query_mut(database, name)
                    && cq.pending == Some(*run)
                {
                    cq.pending = None;
                }
                Ok(Outcome::Done)
            }
        }
    }

    fn continuous_query_mut(
        &mut self,
        database: &str,
        name: &str,
    ) -> Option<&mut ContinuousQueryInfo> {
        self.databases
            .get_mut(database)?
            .continuous_queries
            .iter_mut()
            .find(|c| c.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Command;

    fn with_db() -> CatalogState {
        let mut s = CatalogState::default();
        s.apply(&Command::CreateDatabase {
            name: "db".into(),
            rp: None,
        })
        .unwrap();
        s
    }

    fn create(s: &mut CatalogState, name: &str, query: &str) -> Result<Outcome, CatalogError> {
        s.apply(&Command::ContinuousQuery(CqCommand::Create {
            database: "db".into(),
            name: name.into(),
            query: query.into(),
        }))
    }

    fn claim(
        s: &mut CatalogState,
        node: u64,
        expect: (Option<Nanos>, Option<PendingRun>),
        last_run: Nanos,
        run: Option<(Nanos, Nanos)>,
    ) -> bool {
        let out = s
            .apply(&Command::ContinuousQuery(CqCommand::Claim {
                database: "db".into(),
                name: "cq".into(),
                node,
                expect_last_run: expect.0,
                expect_pending: expect.1,
                last_run,
                run,
            }))
            .unwrap();
        out == Outcome::Claimed(true)
    }

    fn cq(s: &CatalogState) -> ContinuousQueryInfo {
        s.databases["db"].continuous_queries[0].clone()
    }

    #[test]
    fn create_is_idempotent_for_the_same_text_and_kept_in_creation_order() {
        let mut s = with_db();
        create(&mut s, "b", "q1").unwrap();
        create(&mut s, "a", "q2").unwrap();
        assert_eq!(create(&mut s, "b", "q1"), Ok(Outcome::Done));
        assert_eq!(
            create(&mut s, "b", "other"),
            Err(CatalogError::ContinuousQueryExists)
        );
        let names: Vec<_> = s.databases["db"]
            .continuous_queries
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, ["b", "a"]);
        assert_eq!(
            s.apply(&Command::ContinuousQuery(CqCommand::Create {
                database: "nodb".into(),
                name: "x".into(),
                query: "q".into(),
            })),
            Err(CatalogError::DatabaseNotFound("nodb".into()))
        );
        // Dropping what is not there is fine, as in 1.x.
        for (db, name) in [("db", "b"), ("db", "b"), ("nodb", "x")] {
            s.apply(&Command::ContinuousQuery(CqCommand::Drop {
                database: db.into(),
                name: name.into(),
            }))
            .unwrap();
        }
        assert_eq!(s.databases["db"].continuous_queries.len(), 1);
    }

    #[test]
    fn a_run_is_claimed_once_and_a_stale_claim_is_refused() {
        let mut s = with_db();
        create(&mut s, "cq", "q").unwrap();
        assert!(claim(&mut s, 1, (None, None), 60, Some((0, 60))));
        // A second runner that saw the same state loses.
        assert!(!claim(&mut s, 2, (None, None), 60, Some((0, 60))));
        let pending = PendingRun {
            node: 1,
            start: 0,
            end: 60,
        };
        assert_eq!(cq(&s).pending, Some(pending));
        // Node 2 takes the unfinished run over; node 1's late finish no longer clears it.
        assert!(claim(
            &mut s,
            2,
            (Some(60), Some(pending)),
            60,
            Some((0, 60))
        ));
        s.apply(&Command::ContinuousQuery(CqCommand::Finish {
            database: "db".into(),
            name: "cq".into(),
            run: pending,
        }))
        .unwrap();
        let taken = PendingRun { node: 2, ..pending };
        assert_eq!(cq(&s).pending, Some(taken));
        s.apply(&Command::ContinuousQuery(CqCommand::Finish {
            database: "db".into(),
            name: "cq".into(),
            run: taken,
        }))
        .unwrap();
        assert_eq!(cq(&s).pending, None);
        assert_eq!(cq(&s).last_run, Some(60));
        // The state survives the log's JSON.
        let back: CatalogState = serde_json::from_slice(&serde_json::to_vec(&s).unwrap()).unwrap();
        assert_eq!(back.databases["db"], s.databases["db"]);
        // Gone with the database.
        s.apply(&Command::DropDatabase { name: "db".into() })
            .unwrap();
        assert!(!claim(&mut s, 1, (Some(60), None), 120, None));
    }
}

//! Continuous queries: the statements that manage them, and the runner that runs them on
//! schedule, once in the cluster.
//!
//! ```text
//!  CREATE CONTINUOUS QUERY ──▶ sources and INTO qualified (the query's database, default
//!                              policies) ──▶ catalog: CqCommand::Create (the statement's text)
//!  SHOW / DROP CONTINUOUS QUERIES ──▶ the catalog
//!
//!  Runner (every node; acts while it is the meta leader), every run-interval:
//!   for each query: due(query, last_run, now)      (1.x's rules, below)
//!     ├─ a pending run of another node ──▶ claim it over, run the same range again
//!     └─ due ──▶ Claim (compare-and-set in the log) ──▶ SELECT ... INTO, the WHERE's time
//!                 conditions replaced by [start, end) ──▶ Finish
//! ```
//!
//! Which intervals run, and when, is 1.x's `ExecuteContinuousQuery`: a query runs when
//! `RESAMPLE EVERY` (default: its `GROUP BY time` interval) has passed since its last run; a
//! run recomputes `RESAMPLE FOR` (default: the interval, or EVERY when that is longer) back
//! from the interval after the last run, up to the interval that contains now (excluded).
//! Unlike 1.x, where each node keeps the last run in memory, the last run is in the catalog,
//! so a new leader (or a restarted cluster) carries on from it and no interval is skipped.
//!
//! What it must not do: run a query on a node that has not claimed the run in the log, or
//! leave a claimed run behind when the statement failed for want of a node (it stays pending
//! and is run again).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use catalog::continuous::{CqCommand, PendingRun};
use catalog::{Command, Outcome};
use serde_json::Value;
use tokio::sync::watch;

use crate::executor::{ExecError, Executor, QueryContext};
use crate::influxql::{
    BinaryOp, ContinuousQuery, Dimension, Expr, Measurement, SelectStatement, Source, Statement,
};
use crate::result::RowSeries;
use crate::select::split_time_range;
use crate::stats::{Stat, StatsSource};

/// How many times a failed run is tried again (once per run-interval) before it is given up.
const ATTEMPTS: u32 = 10;

impl Executor {
    /// `CREATE CONTINUOUS QUERY`: kept as 1.x keeps it, with its sources and target qualified.
    pub(crate) async fn create_continuous_query(
        &self,
        cq: &ContinuousQuery,
    ) -> Result<(), ExecError> {
        if self
            .meta_service()
            .catalog()
            .database(&cq.database)
            .is_none()
        {
            return Err(ExecError::DatabaseNotFound(cq.database.clone()));
        }
        let cq = self.qualified_cq(cq);
        self.meta_service()
            .execute(Command::ContinuousQuery(CqCommand::Create {
                database: cq.database.clone(),
                name: cq.name.clone(),
                query: cq.to_string(),
            }))
            .await?;
        Ok(())
    }

    /// The query with its sources and target qualified: in the query's database unless they
    /// name another, in that database's default retention policy unless they name one.
    pub(crate) fn qualified_cq(&self, cq: &ContinuousQuery) -> ContinuousQuery {
        let mut cq = cq.clone();
        let cat = self.meta_service().catalog();
        let default_rp = |db: &str| cat.database(db).and_then(|d| d.default_rp.clone());
        qualify(&mut cq.select, &cq.database, &default_rp);
        cq
    }

    pub(crate) async fn drop_continuous_query(
        &self,
        name: &str,
        database: &str,
    ) -> Result<(), ExecError> {
        self.meta_service()
            .execute(Command::ContinuousQuery(CqCommand::Drop {
                database: database.to_string(),
                name: name.to_string(),
            }))
            .await?;
        Ok(())
    }

    /// `SHOW CONTINUOUS QUERIES`: a series per database (one without queries too), the
    /// queries in creation order.
    pub(crate) fn show_continuous_queries(&self, ctx: &QueryContext) -> Vec<RowSeries> {
        let cat = self.meta_service().catalog();
        cat.databases_in_order()
            .into_iter()
            .filter(|d| crate::users::may_see_database(ctx.user.as_ref(), &d.name))
            .map(|d| RowSeries {
                name: Some(d.name.clone()),
                tags: None,
                columns: vec!["name".into(), "query".into()],
                values: d
                    .continuous_queries
                    .iter()
                    .map(|c| vec![Value::from(c.name.as_str()), Value::from(c.query.as_str())])
                    .collect(),
            })
            .collect()
    }
}

/// Fills in the database (`database` where absent) and retention policy (that database's
/// default) of every source, subqueries' too, and of the `INTO` target.
fn qualify(s: &mut SelectStatement, database: &str, default_rp: &dyn Fn(&str) -> Option<String>) {
    let fill = |m: &mut Measurement| {
        let db = m
            .database
            .get_or_insert_with(|| database.to_string())
            .clone();
        if m.retention_policy.is_none() {
            m.retention_policy = default_rp(&db);
        }
    };
    if let Some(into) = &mut s.into {
        fill(into);
    }
    for src in &mut s.sources {
        match src {
            Source::Measurement(m) => fill(m),
            Source::Subquery(inner) => qualify(inner, database, default_rp),
        }
    }
}

/// Go's `time.Time.Truncate`: rounds down to a multiple of `d` since Go's zero time (1 January
/// of year 1, UTC), which is not the Unix epoch for every `d`.
fn go_truncate(t: i64, d: i64) -> i64 {
    if d <= 0 {
        return t;
    }
    const ZERO_TO_EPOCH: i128 = 62_135_596_800 * 1_000_000_000;
    let abs = t as i128 + ZERO_TO_EPOCH;
    let d = d as i128;
    let truncated = abs - abs.rem_euclid(d);
    (truncated - ZERO_TO_EPOCH) as i64
}

/// What a continuous query should do at `now`: the last run to record, and the time range to
/// compute (none when the range is empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub last_run: i64,
    pub range: Option<(i64, i64)>,
}

/// The `GROUP BY time` interval and offset of a continuous query, if it aggregates.
fn interval_of(cq: &ContinuousQuery) -> Option<(i64, i64)> {
    if !cq.select.fields.iter().any(|f| f.expr.has_call()) {
        return None;
    }
    cq.select.dimensions.iter().find_map(|d| match d {
        // `time(d, now())` (offset `i64::MIN`) schedules as no offset; each run resolves it.
        Dimension::Time { interval, offset } if *interval > 0 => {
            Some((*interval, offset.filter(|o| *o != i64::MIN).unwrap_or(0)))
        }
        _ => None,
    })
}

/// 1.x's `shouldRunContinuousQuery` and the time range of `ExecuteContinuousQuery`, in UTC.
/// `None`: not due (or not an aggregate, which 1.x refuses to run). A first run is due at
/// once and computes from `now`; `last_run` becomes `now` truncated to EVERY (after the
/// offset), whether or not the range is empty.
pub fn due(cq: &ContinuousQuery, last_run: Option<i64>, now: i64) -> Option<Due> {
    let (interval, offset) = interval_of(cq)?;
    let every = cq.resample_every.unwrap_or(interval);
    let next_run = match last_run {
        Some(last) => {
            let next = last.saturating_add(every);
            if next > now {
                return None;
            }
            next
        }
        None => now,
    };
    let resample_for = match cq.resample_for {
        Some(f) => f,
        None if interval < every => every,
        None => interval,
    };
    let every_in_range = every.min(interval);
    let start = go_truncate(next_run + interval - resample_for - offset - 1, interval) + offset;
    let end = go_truncate(now + interval - every_in_range - offset, interval) + offset;
    Some(Due {
        last_run: go_truncate(now - offset, every) + offset,
        range: (end > start).then_some((start, end)),
    })
}

/// The statement a run executes: the query's `SELECT`, its time conditions replaced by
/// `time >= start AND time < end` (as 1.x's `SetTimeRange`); the rest of the condition is what
/// [`split_time_range`] leaves of it.
pub fn with_time_range(
    select: &SelectStatement,
    start: i64,
    end: i64,
    now: i64,
) -> Result<SelectStatement, ExecError> {
    let time = || {
        Box::new(Expr::VarRef {
            name: "time".into(),
            typ: None,
        })
    };
    let range = Expr::Binary {
        op: BinaryOp::And,
        lhs: Box::new(Expr::Binary {
            op: BinaryOp::GtEq,
            lhs: time(),
            rhs: Box::new(Expr::Integer(start)),
        }),
        rhs: Box::new(Expr::Binary {
            op: BinaryOp::Lt,
            lhs: time(),
            rhs: Box::new(Expr::Integer(end)),
        }),
    };
    let (_, rest) = split_time_range(select.condition.as_ref(), now)?;
    let mut out = select.clone();
    out.condition = Some(match rest {
        Some(rest) => {
            // An `OR` left bare would bind the range to its right side only.
            let rest = match rest {
                e @ Expr::Binary {
                    op: BinaryOp::Or, ..
                } => Expr::Paren(Box::new(e)),
                e => e,
            };
            Expr::Binary {
                op: BinaryOp::And,
                lhs: Box::new(rest),
                rhs: Box::new(range),
            }
        }
        None => range,
    });
    Ok(out)
}

/// Counters of the runner (`SHOW STATS FOR 'cq'`, 1.x's module).
#[derive(Debug, Default)]
pub struct CqStats {
    query_ok: AtomicU64,
    query_fail: AtomicU64,
}

impl StatsSource for CqStats {
    fn stats(&self) -> Vec<Stat> {
        vec![Stat {
            module: "cq".into(),
            tags: Default::default(),
            values: vec![
                (
                    "queryOk".into(),
                    Value::from(self.query_ok.load(Ordering::Relaxed)),
                ),
                (
                    "queryFail".into(),
                    Value::from(self.query_fail.load(Ordering::Relaxed)),
                ),
            ],
        }]
    }
}

/// Runs the cluster's continuous queries while this node is the meta leader.
#[derive(Debug)]
pub struct Runner {
    ex: Executor,
    /// This node's Raft id: the claims it makes carry it.
    node: u64,
    log_enabled: bool,
    stats: Arc<CqStats>,
    /// Failed attempts of pending runs, per (database, query).
    failures: std::sync::Mutex<HashMap<(String, String), u32>>,
}

impl Runner {
    pub fn new(ex: Executor, log_enabled: bool) -> Self {
        let node = ex.meta_service().raft_id();
        Self {
            ex,
            node,
            log_enabled,
            stats: Arc::default(),
            failures: Default::default(),
        }
    }

    /// The counters, for `SHOW STATS` ([`Executor::with_stats`]).
    pub fn stats(&self) -> Arc<CqStats> {
        Arc::clone(&self.stats)
    }

    /// Checks every continuous query each `interval` until `stop` turns true.
    pub async fn run(self: Arc<Self>, interval: Duration, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                break;
            }
            if self.ex.meta_service().is_leader() {
                self.run_due(ingester::now_nanos()).await;
            }
        }
    }

    /// One pass: every query that is due (or has a run pending) at `now`, in catalog order.
    pub async fn run_due(&self, now: i64) {
        let cat = self.ex.meta_service().catalog();
        for db in cat.databases_in_order() {
            for info in &db.continuous_queries {
                let Ok(mut parsed) = crate::influxql::parse_query(&info.query) else {
                    tracing::error!(db = %db.name, cq = %info.name, "continuous query text does not parse");
                    continue;
                };
                let Some(Statement::CreateContinuousQuery(cq)) = parsed.pop() else {
                    continue;
                };
                let (claim, run) = match info.pending {
                    // Unfinished: run the same range again (taking it over from another node).
                    Some(p) => {
                        let mine = p.node == self.node;
                        let claim = (!mine).then_some((info.last_run.unwrap_or(now), Some(p)));
                        (claim, Some((p.start, p.end)))
                    }
                    None => match due(&cq, info.last_run, now) {
                        Some(d) => (Some((d.last_run, None)), d.range),
                        None => continue,
                    },
                };
                if let Some((last_run, expect_pending)) = claim {
                    let cmd = CqCommand::Claim {
                        database: db.name.clone(),
                        name: info.name.clone(),
                        node: self.node,
                        expect_last_run: info.last_run,
                        expect_pending,
                        last_run,
                        run,
                    };
                    match self
                        .ex
                        .meta_service()
                        .execute(Command::ContinuousQuery(cmd))
                        .await
                    {
                        Ok(Outcome::Claimed(true)) => {
                            if let Some(p) = expect_pending {
                                tracing::info!(db = %db.name, cq = %info.name, start = p.start, end = p.end, from = p.node, node = self.node, "taking over an unfinished continuous query run");
                            }
                        }
                        Ok(_) => continue,
                        Err(e) => {
                            tracing::warn!(db = %db.name, cq = %info.name, error = %e, "continuous query not claimed; will try again");
                            continue;
                        }
                    }
                }
                if let Some((start, end)) = run {
                    self.run_once(&db.name, &cq, start, end, now).await;
                }
            }
        }
    }

    /// Runs `cq` over `[start, end)` and finishes the claimed run, unless it failed and has
    /// attempts left (then it stays pending for the next pass).
    async fn run_once(&self, database: &str, cq: &ContinuousQuery, start: i64, end: i64, now: i64) {
        if self.log_enabled {
            tracing::info!(db = %database, cq = %cq.name, start, end, node = self.node, "executing continuous query");
        }
        let ctx = QueryContext {
            database: Some(database.to_string()),
            now: Some(now),
            ..Default::default()
        };
        // A time condition of its own that is no time fails the run like any other error.
        let results = match with_time_range(&cq.select, start, end, now) {
            Ok(select) => {
                self.ex
                    .execute(&[Statement::Select(Box::new(select))], &ctx)
                    .await
            }
            Err(e) => vec![crate::result::StatementResult::error(0, e.to_string())],
        };
        let error = results.into_iter().find_map(|r| r.error);
        let key = (database.to_string(), cq.name.clone());
        match &error {
            None => {
                self.stats.query_ok.fetch_add(1, Ordering::Relaxed);
                if self.log_enabled {
                    tracing::info!(db = %database, cq = %cq.name, start, end, node = self.node, "finished continuous query");
                }
            }
            Some(e) => {
                self.stats.query_fail.fetch_add(1, Ordering::Relaxed);
                let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
                let n = failures.entry(key.clone()).or_default();
                *n += 1;
                if *n < ATTEMPTS {
                    tracing::warn!(db = %database, cq = %cq.name, start, end, attempt = *n, error = %e, "continuous query failed; will run it again");
                    return;
                }
                tracing::error!(db = %database, cq = %cq.name, start, end, error = %e, "continuous query failed {ATTEMPTS} times; giving this run up");
            }
        }
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
        let finish = CqCommand::Finish {
            database: database.to_string(),
            name: cq.name.clone(),
            run: PendingRun {
                node: self.node,
                start,
                end,
            },
        };
        if let Err(e) = self
            .ex
            .meta_service()
            .execute(Command::ContinuousQuery(finish))
            .await
        {
            // Still pending: the range is run again (it writes the same points).
            tracing::warn!(db = %database, cq = %cq.name, error = %e, "continuous query ran but its run was not recorded");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;
    const M: i64 = 60 * S;

    fn cq(text: &str) -> ContinuousQuery {
        match crate::influxql::parse_query(text).unwrap().pop() {
            Some(Statement::CreateContinuousQuery(cq)) => *cq,
            other => panic!("{other:?}"),
        }
    }

    /// A time `min` minutes and `sec` seconds into an hour that is a multiple of 24h.
    fn at(min: i64, sec: i64) -> i64 {
        1_700_006_400 * S + min * M + sec * S
    }

    // The expected ranges below are those InfluxDB 1.6.7 logged ("Executing continuous
    // query ... start=... end=...") for the same queries, with intervals of seconds.

    #[test]
    fn the_first_run_is_at_once_and_then_each_interval() {
        let q = cq(
            "CREATE CONTINUOUS QUERY c ON db BEGIN SELECT mean(v) INTO o FROM m GROUP BY time(1m) END",
        );
        // Created within a minute: nothing to compute yet, but the run counts.
        let d = due(&q, None, at(10, 30)).unwrap();
        assert_eq!(d.last_run, at(10, 0));
        assert_eq!(d.range, None);
        // Not again within the interval; at the next minute, the minute that just ended.
        assert_eq!(due(&q, Some(at(10, 0)), at(10, 59)), None);
        let d = due(&q, Some(at(10, 0)), at(11, 0)).unwrap();
        assert_eq!(d.range, Some((at(10, 0), at(11, 0))));
        // A leader that was away for three minutes catches up on all of them in one run.
        let d = due(&q, Some(at(10, 0)), at(13, 5)).unwrap();
        assert_eq!(d.range, Some((at(10, 0), at(13, 0))));
        assert_eq!(d.last_run, at(13, 0));
    }

    #[test]
    fn an_offset_of_now_schedules_as_no_offset() {
        // Each run resolves `now()` when its SELECT runs; the schedule is the interval's.
        let with_now = cq(
            "CREATE CONTINUOUS QUERY c ON db BEGIN SELECT mean(v) INTO o FROM m GROUP BY time(1m, now()) END",
        );
        let plain = cq(
            "CREATE CONTINUOUS QUERY c ON db BEGIN SELECT mean(v) INTO o FROM m GROUP BY time(1m) END",
        );
        for (last, now) in [
            (None, at(10, 30)),
            (Some(at(10, 0)), at(11, 0)),
            (Some(at(10, 0)), at(13, 5)),
        ] {
            assert_eq!(due(&with_now, last, now), due(&plain, last, now));
        }
    }

    #[test]
    fn resample_every_and_for_follow_1x() {
        // EVERY 30s FOR 2m over 1m buckets: every 30 s, the last two minutes (the current,
        // unfinished bucket included, as 1.x does when EVERY is shorter than the interval).
        let q = cq(
            "CREATE CONTINUOUS QUERY c ON db RESAMPLE EVERY 30s FOR 2m BEGIN SELECT mean(v) INTO o FROM m GROUP BY time(1m) END",
        );
        let d = due(&q, Some(at(10, 0)), at(10, 30)).unwrap();
        assert_eq!(d.last_run, at(10, 30));
        assert_eq!(d.range, Some((at(9, 0), at(11, 0))));
        // EVERY 2m (longer than the interval): both minutes since the last run; the first run
        // only the minute before now.
        let q = cq(
            "CREATE CONTINUOUS QUERY c ON db RESAMPLE EVERY 2m BEGIN SELECT mean(v) INTO o FROM m GROUP BY time(1m) END",
        );
        let d = due(&q, None, at(7, 30)).unwrap();
        assert_eq!(
            (d.last_run, d.range),
            (at(6, 0), Some((at(6, 0), at(7, 0))))
        );
        assert_eq!(due(&q, Some(at(10, 0)), at(11, 0)), None);
        let d = due(&q, Some(at(10, 0)), at(12, 0)).unwrap();
        assert_eq!(d.range, Some((at(10, 0), at(12, 0))));
        // FOR 5m alone: the last five minutes each minute.
        let q = cq(
            "CREATE CONTINUOUS QUERY c ON db RESAMPLE FOR 5m BEGIN SELECT mean(v) INTO o FROM m GROUP BY time(1m) END",
        );
        let d = due(&q, Some(at(10, 0)), at(11, 0)).unwrap();
        assert_eq!(d.range, Some((at(6, 0), at(11, 0))));
        // An offset moves the buckets and the runs: created at :30, nothing; last run :10.
        let q = cq(
            "CREATE CONTINUOUS QUERY c ON db BEGIN SELECT mean(v) INTO o FROM m GROUP BY time(1m, 10s) END",
        );
        let d = due(&q, None, at(10, 30)).unwrap();
        assert_eq!((d.last_run, d.range), (at(10, 10), None));
        assert_eq!(due(&q, Some(at(10, 10)), at(11, 5)), None);
        let d = due(&q, Some(at(10, 10)), at(11, 10)).unwrap();
        assert_eq!(d.range, Some((at(10, 10), at(11, 10))));
        // EVERY 2m FOR 5m over time(1m, 10s), first run at :20 (1.6.7: 49:10 to 53:10 at
        // 53:20).
        let q = cq(
            "CREATE CONTINUOUS QUERY c ON db RESAMPLE EVERY 2m FOR 5m BEGIN SELECT mean(v) INTO o FROM m GROUP BY time(1m, 10s) END",
        );
        let d = due(&q, None, at(53, 20)).unwrap();
        assert_eq!(d.range, Some((at(49, 10), at(53, 10))));
        // Not an aggregate: 1.x never runs it.
        let q = cq(
            "CREATE CONTINUOUS QUERY c ON db BEGIN SELECT v INTO o FROM m GROUP BY time(1m) END",
        );
        assert_eq!(due(&q, None, at(11, 0)), None);
    }

    /// Four queries created at 20:57:15.146 on InfluxDB 1.6.7 (run-interval 1s): the ranges
    /// it logged at each tick.
    #[test]
    fn runs_match_what_1_6_7_logged() {
        let base = 1_700_006_400 * S + (20 * 60 + 57) * M;
        let ms = |t: i64| base + t * 1_000_000;
        let ticks = [
            15_507, 16_521, 17_523, 18_524, 19_525, 20_527, 21_529, 22_530, 23_532, 24_535, 25_537,
            26_538,
        ];
        let cases = [
            (
                "RESAMPLE EVERY 1s FOR 4s BEGIN SELECT count(v) INTO cc FROM m GROUP BY time(2s)",
                vec![
                    (15, 12, 16),
                    (16, 12, 16),
                    (17, 14, 18),
                    (18, 14, 18),
                    (19, 16, 20),
                    (20, 16, 20),
                    (21, 18, 22),
                    (22, 18, 22),
                    (23, 20, 24),
                    (24, 20, 24),
                    (25, 22, 26),
                    (26, 22, 26),
                ],
            ),
            (
                "RESAMPLE EVERY 4s BEGIN SELECT count(v) INTO cd FROM m GROUP BY time(2s)",
                vec![(15, 12, 14), (16, 12, 16), (20, 16, 20), (24, 20, 24)],
            ),
            (
                "BEGIN SELECT count(v) INTO ca FROM m GROUP BY time(2s)",
                vec![
                    (16, 14, 16),
                    (18, 16, 18),
                    (20, 18, 20),
                    (22, 20, 22),
                    (24, 22, 24),
                    (26, 24, 26),
                ],
            ),
            (
                "BEGIN SELECT count(v) INTO cb FROM m GROUP BY time(2s, 1s)",
                vec![
                    (17, 15, 17),
                    (19, 17, 19),
                    (21, 19, 21),
                    (23, 21, 23),
                    (25, 23, 25),
                ],
            ),
        ];
        for (body, want) in cases {
            let q = cq(&format!("CREATE CONTINUOUS QUERY c ON t {body} END"));
            let mut last = None;
            let mut got = Vec::new();
            for t in ticks {
                if let Some(d) = due(&q, last, ms(t)) {
                    last = Some(d.last_run);
                    if let Some((a, b)) = d.range {
                        got.push((t / 1000, (a - base) / S, (b - base) / S));
                    }
                }
            }
            assert_eq!(got, want, "{body}");
        }
    }

    #[test]
    fn truncation_is_go_s_for_intervals_that_do_not_divide_a_day() {
        // 7 minutes: Go's zero time is not a multiple of 7 minutes before the epoch.
        let t = 1_700_000_000 * S;
        let g = go_truncate(t, 7 * M);
        assert!(g <= t && t - g < 7 * M);
        assert_eq!(
            (g as i128 + 62_135_596_800 * S as i128) % (7 * M) as i128,
            0
        );
        assert_eq!(go_truncate(at(10, 30), M), at(10, 0));
    }

    #[test]
    fn a_run_replaces_the_time_conditions() {
        let q = cq(
            "CREATE CONTINUOUS QUERY c ON db BEGIN SELECT mean(v) INTO o FROM m WHERE time > now() - 1h AND (host = 'a' OR host = 'b') GROUP BY time(1m) END",
        );
        let s = with_time_range(&q.select, 60, 120, 0).unwrap();
        assert_eq!(
            s.condition.unwrap().to_string(),
            "(host = 'a' OR host = 'b') AND time >= 60 AND time < 120"
        );
        let q = cq(
            "CREATE CONTINUOUS QUERY c ON db BEGIN SELECT mean(v) INTO o FROM m GROUP BY time(1m) END",
        );
        let s = with_time_range(&q.select, 60, 120, 0).unwrap();
        assert_eq!(
            s.condition.unwrap().to_string(),
            "time >= 60 AND time < 120"
        );
    }

    #[test]
    fn sources_and_target_are_qualified_subqueries_too() {
        let mut q = cq(
            "CREATE CONTINUOUS QUERY c ON db BEGIN SELECT mean(v) INTO other..o FROM m, x.r.n, (SELECT v FROM k) GROUP BY time(1m) END",
        );
        let rp = |db: &str| Some(format!("{db}_rp"));
        qualify(&mut q.select, "db", &rp);
        assert_eq!(
            q.to_string(),
            "CREATE CONTINUOUS QUERY c ON db BEGIN SELECT mean(v) INTO other.other_rp.o FROM db.db_rp.m, x.r.n, (SELECT v FROM db.db_rp.k) GROUP BY time(1m) END"
        );
    }
}

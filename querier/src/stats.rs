//! `SHOW STATS`: counters of the node's services, as 1.x answers them: one series per module
//! instance, named after the module, with the instance's tags and one row of values.
//!
//! The querier does not own the services it reports on; each registers a [`StatsSource`]
//! with the executor ([`crate::Executor::with_stats`]), e.g. the hinted handoff queues
//! (module `hh_processor`, one instance per destination node).

use serde_json::Value;

use crate::executor::Executor;
use crate::result::RowSeries;

/// One module instance's counters.
#[derive(Debug, Clone, PartialEq)]
pub struct Stat {
    /// The module (`hh_processor`).
    pub module: String,
    pub tags: std::collections::BTreeMap<String, String>,
    /// Counter names and values, in the order they are shown.
    pub values: Vec<(String, Value)>,
}

/// A service that reports counters.
pub trait StatsSource: Send + Sync + std::fmt::Debug {
    fn stats(&self) -> Vec<Stat>;
}

impl Executor {
    /// `SHOW STATS [FOR 'module']`: every source's instances, or those of `module`.
    pub(crate) fn show_stats(&self, module: Option<&str>) -> Vec<RowSeries> {
        self.stats_sources()
            .iter()
            .flat_map(|s| s.stats())
            .filter(|s| module.is_none_or(|m| m == s.module))
            .map(|s| RowSeries {
                name: Some(s.module),
                tags: Some(s.tags),
                columns: s.values.iter().map(|(k, _)| k.clone()).collect(),
                values: vec![s.values.into_iter().map(|(_, v)| v).collect()],
            })
            .collect()
    }
}

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

/// One `SHOW DIAGNOSTICS` module: facts (build, configuration, system), not counters.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// The module (`build`, `config-httpd`, `system`).
    pub module: String,
    /// Names and values, in the order they are shown.
    pub values: Vec<(String, Value)>,
}

/// What `SHOW DIAGNOSTICS` reports (the node's configuration and build live outside the
/// querier).
pub trait DiagnosticsSource: Send + Sync + std::fmt::Debug {
    fn diagnostics(&self) -> Vec<Diagnostic>;
}

impl Executor {
    /// Every module instance's counters: the querier's own (`queryExecutor`), then each
    /// registered source's.
    pub fn stats(&self) -> Vec<Stat> {
        let mut all = vec![self.queries().stat()];
        all.extend(self.stats_sources().iter().flat_map(|s| s.stats()));
        all
    }

    /// `SHOW DIAGNOSTICS [FOR 'module']`, one series per module, as 1.x answers it (an unknown
    /// module: no series).
    pub(crate) fn show_diagnostics(&self, module: Option<&str>) -> Vec<RowSeries> {
        self.diagnostics_sources()
            .iter()
            .flat_map(|s| s.diagnostics())
            .filter(|d| module.is_none_or(|m| m == d.module))
            .map(|d| RowSeries {
                name: Some(d.module),
                tags: None,
                columns: d.values.iter().map(|(k, _)| k.clone()).collect(),
                values: vec![d.values.into_iter().map(|(_, v)| v).collect()],
            })
            .collect()
    }

    /// `SHOW STATS [FOR 'module']`: every module instance, or those of `module`.
    pub(crate) fn show_stats(&self, module: Option<&str>) -> Vec<RowSeries> {
        self.stats()
            .into_iter()
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

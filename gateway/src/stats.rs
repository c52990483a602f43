//! The node's services as `SHOW STATS` modules (see `querier::stats`).

use std::path::PathBuf;
use std::sync::Arc;

use coordinator::hinted::HintedHandoff;
use querier::stats::{Stat, StatsSource};
use serde_json::Value;

/// The hinted handoff queues as module `hh_processor`, one instance per destination node
/// (Enterprise's module name and tags; counters named as Enterprise names them where they
/// mean the same).
#[derive(Debug)]
pub struct HintedStats {
    queues: Arc<HintedHandoff>,
    dir: PathBuf,
}

impl HintedStats {
    pub fn new(queues: Arc<HintedHandoff>, dir: PathBuf) -> Self {
        Self { queues, dir }
    }
}

impl StatsSource for HintedStats {
    fn stats(&self) -> Vec<Stat> {
        self.queues
            .stats()
            .into_iter()
            .map(|q| Stat {
                module: "hh_processor".into(),
                tags: [
                    ("node".to_string(), q.node.to_string()),
                    (
                        "path".to_string(),
                        self.dir.join(q.node.to_string()).display().to_string(),
                    ),
                ]
                .into(),
                values: vec![
                    ("queueBytes".into(), Value::from(q.bytes)),
                    ("queueDepth".into(), Value::from(q.frames)),
                    ("oldestAgeNs".into(), Value::from(q.oldest_age_ns)),
                    ("writeNodeReq".into(), Value::from(q.delivered)),
                    ("writeDropped".into(), Value::from(q.dropped_old)),
                    (
                        "lastError".into(),
                        Value::from(q.last_error.unwrap_or_default()),
                    ),
                ],
            })
            .collect()
    }
}

//! `CREATE SUBSCRIPTION`, `DROP SUBSCRIPTION` and `SHOW SUBSCRIPTIONS`: the catalog's
//! subscriptions ([`catalog::subscription`]) as 1.x manages and lists them. Forwarding the
//! writes is the write coordinator's (`coordinator::subscriber`).

use catalog::Command;
use catalog::subscription::{SubscriptionCommand, SubscriptionInfo, SubscriptionMode};
use serde_json::Value;

use crate::executor::{ExecError, Executor};
use crate::influxql::SubscriptionMode as Mode;
use crate::result::RowSeries;

impl Executor {
    pub(crate) async fn create_subscription(
        &self,
        name: &str,
        database: &str,
        rp: &str,
        mode: Mode,
        destinations: &[String],
    ) -> Result<(), ExecError> {
        let mode = match mode {
            Mode::All => SubscriptionMode::All,
            Mode::Any => SubscriptionMode::Any,
        };
        self.meta_service()
            .execute(Command::Subscription(SubscriptionCommand::Create {
                database: database.to_string(),
                rp: rp.to_string(),
                subscription: SubscriptionInfo {
                    name: name.to_string(),
                    mode,
                    destinations: destinations.to_vec(),
                },
            }))
            .await?;
        Ok(())
    }

    pub(crate) async fn drop_subscription(
        &self,
        name: &str,
        database: &str,
        rp: &str,
    ) -> Result<(), ExecError> {
        self.meta_service()
            .execute(Command::Subscription(SubscriptionCommand::Drop {
                database: database.to_string(),
                rp: rp.to_string(),
                name: name.to_string(),
            }))
            .await?;
        Ok(())
    }

    /// `SHOW SUBSCRIPTIONS`: a series per database that has any (databases and retention
    /// policies in creation order, subscriptions in theirs), as 1.x lists them.
    pub(crate) fn show_subscriptions(&self) -> Vec<RowSeries> {
        let cat = self.meta_service().catalog();
        cat.databases_in_order()
            .into_iter()
            .filter_map(|d| {
                let mut rps: Vec<_> = d.retention_policies.values().collect();
                rps.sort_by_key(|r| r.seq);
                let values: Vec<Vec<Value>> = rps
                    .iter()
                    .flat_map(|rp| {
                        rp.subscriptions.iter().map(|s| {
                            vec![
                                Value::from(rp.name.as_str()),
                                Value::from(s.name.as_str()),
                                Value::from(s.mode.as_str()),
                                Value::from(s.destinations.clone()),
                            ]
                        })
                    })
                    .collect();
                (!values.is_empty()).then(|| RowSeries {
                    name: Some(d.name.clone()),
                    tags: None,
                    columns: ["retention_policy", "name", "mode", "destinations"]
                        .map(String::from)
                        .to_vec(),
                    values,
                })
            })
            .collect()
    }
}

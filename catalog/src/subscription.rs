//! Subscriptions in the catalog: where a retention policy's writes are copied to.
//!
//! A subscription belongs to one retention policy (1.x keeps it there too) and names
//! destinations (`udp://host:port`, `http://host:port`, `https://host:port`) and a mode: `ALL`
//! sends every write to each destination, `ANY` to one of them, the next in turn, trying the
//! others when it fails. Sending is the write coordinator's (`coordinator::subscriber`): the
//! node that accepted a write forwards it, so each write leaves the cluster once.
//!
//! ```text
//!  CREATE SUBSCRIPTION ─▶ SubscriptionCommand::Create ─▶ rp.subscriptions (creation order)
//!  DROP SUBSCRIPTION   ─▶ SubscriptionCommand::Drop
//!  write to db.rp ─▶ PointsWriter ─▶ acknowledged ─▶ Subscriber ─▶ each subscription of db.rp
//! ```

use serde::{Deserialize, Serialize};

use crate::error::CatalogError;
use crate::model::{CatalogState, Outcome};

/// How a subscription spreads writes over its destinations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SubscriptionMode {
    /// Every destination gets every write.
    All,
    /// One destination gets each write: the next in turn, the others tried if it fails.
    Any,
}

impl SubscriptionMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "ALL",
            Self::Any => "ANY",
        }
    }
}

/// One subscription ([`crate::RetentionPolicyInfo::subscriptions`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SubscriptionInfo {
    pub name: String,
    pub mode: SubscriptionMode,
    /// As the statement gave them, each checked by [`validate_destination`].
    pub destinations: Vec<String>,
}

/// Changes to subscriptions ([`crate::Command::Subscription`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SubscriptionCommand {
    /// Refused when the retention policy has a subscription of that name already.
    Create {
        database: String,
        rp: String,
        subscription: SubscriptionInfo,
    },
    /// Refused when there is none of that name.
    Drop {
        database: String,
        rp: String,
        name: String,
    },
}

/// 1.x's check of a destination: a URL with scheme `udp`, `http` or `https` and a host with a
/// port.
pub fn validate_destination(url: &str) -> Result<(), CatalogError> {
    let invalid = || CatalogError::InvalidSubscriptionUrl(url.to_string());
    let (scheme, rest) = url.split_once("://").ok_or_else(invalid)?;
    if !matches!(scheme, "udp" | "http" | "https") {
        return Err(invalid());
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let port = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split_once(']')
            .and_then(|(_, after)| after.strip_prefix(':'))
    } else {
        host_port.rsplit_once(':').map(|(_, p)| p)
    };
    match port {
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
        _ => Err(invalid()),
    }
}

impl CatalogState {
    pub(crate) fn apply_subscription_command(
        &mut self,
        cmd: &SubscriptionCommand,
    ) -> Result<Outcome, CatalogError> {
        let (database, rp) = match cmd {
            SubscriptionCommand::Create { database, rp, .. }
            | SubscriptionCommand::Drop { database, rp, .. } => (database, rp),
        };
        let rpi = self.rp_mut(database, rp)?;
        match cmd {
            SubscriptionCommand::Create { subscription, .. } => {
                for d in &subscription.destinations {
                    validate_destination(d)?;
                }
                if rpi
                    .subscriptions
                    .iter()
                    .any(|s| s.name == subscription.name)
                {
                    return Err(CatalogError::SubscriptionExists);
                }
                rpi.subscriptions.push(subscription.clone());
            }
            SubscriptionCommand::Drop { name, .. } => {
                let before = rpi.subscriptions.len();
                rpi.subscriptions.retain(|s| &s.name != name);
                if rpi.subscriptions.len() == before {
                    return Err(CatalogError::SubscriptionNotFound);
                }
            }
        }
        Ok(Outcome::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Command;

    fn state() -> CatalogState {
        let mut s = CatalogState::default();
        s.apply(&Command::CreateDatabase {
            name: "db".into(),
            rp: None,
        })
        .unwrap();
        s
    }

    fn create(name: &str, dests: &[&str]) -> Command {
        Command::Subscription(SubscriptionCommand::Create {
            database: "db".into(),
            rp: "autogen".into(),
            subscription: SubscriptionInfo {
                name: name.into(),
                mode: SubscriptionMode::Any,
                destinations: dests.iter().map(|d| d.to_string()).collect(),
            },
        })
    }

    #[test]
    fn destinations_are_checked_as_1x_checks_them() {
        for ok in [
            "udp://h:9090",
            "http://127.0.0.1:8086",
            "https://user:pw@h:443/path?x=1",
            "http://[::1]:8086",
        ] {
            assert_eq!(validate_destination(ok), Ok(()), "{ok}");
        }
        for bad in [
            "ftp://h:1",
            "http://h",
            "http://h:",
            "not a url",
            "http://[::1]",
            "http://h:x",
        ] {
            assert_eq!(
                validate_destination(bad),
                Err(CatalogError::InvalidSubscriptionUrl(bad.into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn create_refuses_a_second_of_a_name_and_drop_one_that_is_not_there() {
        let mut s = state();
        s.apply(&create("a", &["udp://h:1"])).unwrap();
        assert_eq!(
            s.apply(&create("a", &["udp://h:1"])),
            Err(CatalogError::SubscriptionExists)
        );
        assert_eq!(
            s.apply(&create("b", &["http://h"])),
            Err(CatalogError::InvalidSubscriptionUrl("http://h".into()))
        );
        s.apply(&create("b", &["http://h:2", "udp://h:3"])).unwrap();
        let names: Vec<_> = s.databases["db"].retention_policies["autogen"]
            .subscriptions
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(names, ["a", "b"]);
        let drop = |name: &str, rp: &str| {
            Command::Subscription(SubscriptionCommand::Drop {
                database: "db".into(),
                rp: rp.into(),
                name: name.into(),
            })
        };
        assert_eq!(
            s.apply(&drop("a", "nope")),
            Err(CatalogError::RetentionPolicyNotFound("nope".into()))
        );
        s.apply(&drop("a", "autogen")).unwrap();
        assert_eq!(
            s.apply(&drop("a", "autogen")),
            Err(CatalogError::SubscriptionNotFound)
        );
        // Kept through a snapshot, and absent from one without subscriptions.
        let back: CatalogState = serde_json::from_slice(&serde_json::to_vec(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }
}

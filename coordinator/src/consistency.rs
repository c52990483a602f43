//! Write consistency levels, as 1.x clustering defines them: how many owners of a shard must
//! acknowledge its points before a write succeeds.

/// The `consistency` parameter of `/write`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consistency {
    /// One acknowledgement, or a durable hinted-handoff enqueue for an owner.
    Any,
    /// One owner has the points in its WAL.
    #[default]
    One,
    /// A majority of the owners (`RF / 2 + 1`).
    Quorum,
    /// Every owner.
    All,
}

impl Consistency {
    /// `any`, `one`, `quorum` or `all`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "any" => Self::Any,
            "one" => Self::One,
            "quorum" => Self::Quorum,
            "all" => Self::All,
            _ => return None,
        })
    }

    /// Acknowledgements a shard with `owners` owners needs.
    pub fn required(self, owners: usize) -> usize {
        let n = match self {
            Self::Any | Self::One => 1,
            Self::Quorum => owners / 2 + 1,
            Self::All => owners,
        };
        n.clamp(1, owners.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::Consistency::*;

    #[test]
    fn acknowledgements_needed_per_level() {
        for (rf, any, one, quorum, all) in [
            (1, 1, 1, 1, 1),
            (2, 1, 1, 2, 2),
            (3, 1, 1, 2, 3),
            (4, 1, 1, 3, 4),
            (5, 1, 1, 3, 5),
        ] {
            assert_eq!(
                [Any, One, Quorum, All].map(|c| c.required(rf)),
                [any, one, quorum, all],
                "rf {rf}"
            );
        }
        assert_eq!(super::Consistency::parse("QUORUM"), None);
        assert_eq!(super::Consistency::parse("quorum"), Some(Quorum));
    }
}

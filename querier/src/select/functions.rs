//! Every InfluxQL function, in one table: what kind of call it is, and so how a statement
//! with it is checked and lowered.

/// What a function is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Reduces a group's points to one value (`count`, `mean`, ...), or picks points (`top`,
    /// `sample`, `distinct`'s values).
    Aggregate,
    /// An aggregate that picks one point, whose time it can report (`min`, `first`, ...).
    Selector,
    /// A scalar function, of raw values or of aggregates.
    Math,
    /// A function over a series' ordered values (after aggregation, when nested).
    Transform,
    /// A function of InfluxQL that Fletch does not run yet.
    NotYet,
}

use Kind::*;

const FUNCTIONS: &[(&str, Kind)] = &[
    ("count", Aggregate),
    ("sum", Aggregate),
    ("mean", Aggregate),
    ("median", Aggregate),
    ("spread", Aggregate),
    ("stddev", Aggregate),
    ("mode", Aggregate),
    ("integral", Aggregate),
    ("distinct", Aggregate),
    ("top", Aggregate),
    ("bottom", Aggregate),
    ("sample", Aggregate),
    ("min", Selector),
    ("max", Selector),
    ("first", Selector),
    ("last", Selector),
    ("percentile", Selector),
    ("abs", Math),
    ("ceil", Math),
    ("floor", Math),
    ("round", Math),
    ("exp", Math),
    ("ln", Math),
    ("log", Math),
    ("log2", Math),
    ("log10", Math),
    ("pow", Math),
    ("sqrt", Math),
    ("sin", Math),
    ("cos", Math),
    ("tan", Math),
    ("asin", Math),
    ("acos", Math),
    ("atan", Math),
    ("atan2", Math),
    ("derivative", Transform),
    ("non_negative_derivative", Transform),
    ("difference", Transform),
    ("non_negative_difference", Transform),
    ("cumulative_sum", Transform),
    ("moving_average", Transform),
    ("elapsed", Transform),
    ("holt_winters", NotYet),
    ("holt_winters_with_fit", NotYet),
    ("chande_momentum_oscillator", NotYet),
    ("exponential_moving_average", NotYet),
    ("double_exponential_moving_average", NotYet),
    ("kaufmans_efficiency_ratio", NotYet),
    ("kaufmans_adaptive_moving_average", NotYet),
    ("triple_exponential_moving_average", NotYet),
    ("triple_exponential_derivative", NotYet),
    ("relative_strength_index", NotYet),
];

/// The kind of function `name`, if InfluxQL has one of that name.
pub(super) fn kind(name: &str) -> Option<Kind> {
    FUNCTIONS.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
}

/// An aggregate, selectors included.
pub(super) fn is_aggregate(name: &str) -> bool {
    matches!(kind(name), Some(Aggregate | Selector))
}

pub(super) fn is_selector(name: &str) -> bool {
    kind(name) == Some(Selector)
}

pub(super) fn is_math(name: &str) -> bool {
    kind(name) == Some(Math)
}

pub(super) fn is_transform(name: &str) -> bool {
    kind(name) == Some(Transform)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_function_has_one_kind() {
        for (i, (name, _)) in FUNCTIONS.iter().enumerate() {
            assert!(
                FUNCTIONS[i + 1..].iter().all(|(n, _)| n != name),
                "{name} is listed twice"
            );
        }
        assert!(is_aggregate("min") && is_selector("min") && !is_selector("mean"));
        assert!(is_math("atan2") && is_transform("elapsed") && kind("nope").is_none());
        assert_eq!(kind("holt_winters"), Some(Kind::NotYet));
    }
}

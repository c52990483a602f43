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
    /// A forecast from a series' `GROUP BY time` aggregates (`holt_winters`).
    Forecast,
}

use Kind::*;

/// What a function answers, as 1.x's type checks see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Returns {
    Float,
    Integer,
    /// The type of its (first) argument.
    Arg,
}

use Returns::{Arg, Float, Integer};

const FUNCTIONS: &[(&str, Kind, Returns)] = &[
    ("count", Aggregate, Integer),
    ("sum", Aggregate, Arg),
    ("mean", Aggregate, Float),
    ("median", Aggregate, Float),
    ("spread", Aggregate, Arg),
    ("stddev", Aggregate, Float),
    ("mode", Aggregate, Arg),
    ("integral", Aggregate, Float),
    ("distinct", Aggregate, Arg),
    ("top", Aggregate, Arg),
    ("bottom", Aggregate, Arg),
    ("sample", Aggregate, Arg),
    ("min", Selector, Arg),
    ("max", Selector, Arg),
    ("first", Selector, Arg),
    ("last", Selector, Arg),
    ("percentile", Selector, Arg),
    ("abs", Math, Arg),
    ("ceil", Math, Arg),
    ("floor", Math, Arg),
    ("round", Math, Arg),
    ("exp", Math, Float),
    ("ln", Math, Float),
    ("log", Math, Float),
    ("log2", Math, Float),
    ("log10", Math, Float),
    ("pow", Math, Float),
    ("sqrt", Math, Float),
    ("sin", Math, Float),
    ("cos", Math, Float),
    ("tan", Math, Float),
    ("asin", Math, Float),
    ("acos", Math, Float),
    ("atan", Math, Float),
    ("atan2", Math, Float),
    ("derivative", Transform, Float),
    ("non_negative_derivative", Transform, Float),
    ("difference", Transform, Arg),
    ("non_negative_difference", Transform, Arg),
    ("cumulative_sum", Transform, Arg),
    ("moving_average", Transform, Float),
    ("elapsed", Transform, Integer),
    ("holt_winters", Forecast, Float),
    ("holt_winters_with_fit", Forecast, Float),
    ("chande_momentum_oscillator", Transform, Float),
    ("exponential_moving_average", Transform, Float),
    ("double_exponential_moving_average", Transform, Float),
    ("kaufmans_efficiency_ratio", Transform, Float),
    ("kaufmans_adaptive_moving_average", Transform, Float),
    ("triple_exponential_moving_average", Transform, Float),
    ("triple_exponential_derivative", Transform, Float),
    ("relative_strength_index", Transform, Float),
];

/// The kind of function `name`, if InfluxQL has one of that name.
pub(super) fn kind(name: &str) -> Option<Kind> {
    FUNCTIONS
        .iter()
        .find(|(n, ..)| *n == name)
        .map(|(_, k, _)| *k)
}

/// What function `name` answers, if InfluxQL has one of that name.
pub(super) fn returns(name: &str) -> Option<Returns> {
    FUNCTIONS
        .iter()
        .find(|(n, ..)| *n == name)
        .map(|(.., r)| *r)
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

pub(super) fn is_forecast(name: &str) -> bool {
    kind(name) == Some(Forecast)
}

pub(super) fn is_transform(name: &str) -> bool {
    kind(name) == Some(Transform)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_function_has_one_kind() {
        for (i, (name, ..)) in FUNCTIONS.iter().enumerate() {
            assert!(
                FUNCTIONS[i + 1..].iter().all(|(n, ..)| n != name),
                "{name} is listed twice"
            );
        }
        assert!(is_aggregate("min") && is_selector("min") && !is_selector("mean"));
        assert!(is_math("atan2") && is_transform("elapsed") && kind("nope").is_none());
        assert_eq!(kind("holt_winters"), Some(Kind::Forecast));
        assert!(is_transform("kaufmans_adaptive_moving_average"));
    }
}

//! InfluxQL's technical-analysis functions, as running indicators over a series' values:
//! `exponential_moving_average`, `double_exponential_moving_average`,
//! `triple_exponential_moving_average`, `triple_exponential_derivative`,
//! `relative_strength_index`, `chande_momentum_oscillator`, `kaufmans_efficiency_ratio` and
//! `kaufmans_adaptive_moving_average`.
//!
//! Each indicator takes values one at a time and answers its value after each, as InfluxDB
//! 1.x computes it (its `gota` package): the same warm-up rules, the same running state and
//! the same order of floating point operations, so that the answers agree to the last digit.
//! Quirks kept because 1.x answers with them: the relative strength index and the momentum
//! oscillator with a warm-up type start from a previous value of 0, and the triple
//! exponential derivative divides by a previous value that starts at 0 (its first answers are
//! infinite and so not emitted, see [`Technical::emits`]).
//!
//! [`super::transform`] runs them as window functions; this module holds no DataFusion.

use serde::{Deserialize, Serialize};

/// Which indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaFunc {
    Ema,
    Dema,
    Tema,
    Trix,
    Rsi,
    Cmo,
    Ker,
    Kama,
}

impl TaFunc {
    pub fn name(self) -> &'static str {
        match self {
            TaFunc::Ema => "exponential_moving_average",
            TaFunc::Dema => "double_exponential_moving_average",
            TaFunc::Tema => "triple_exponential_moving_average",
            TaFunc::Trix => "triple_exponential_derivative",
            TaFunc::Rsi => "relative_strength_index",
            TaFunc::Cmo => "chande_momentum_oscillator",
            TaFunc::Ker => "kaufmans_efficiency_ratio",
            TaFunc::Kama => "kaufmans_adaptive_moving_average",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [
            TaFunc::Ema,
            TaFunc::Dema,
            TaFunc::Tema,
            TaFunc::Trix,
            TaFunc::Rsi,
            TaFunc::Cmo,
            TaFunc::Ker,
            TaFunc::Kama,
        ]
        .into_iter()
        .find(|f| f.name() == name)
    }
}

/// How an indicator's averages warm up before they have seen a whole period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Warmup {
    /// An exponential average over the values seen so far (1.x's default).
    Exponential,
    /// The simple mean of the values seen so far.
    Simple,
    /// `chande_momentum_oscillator`'s default: sums over a window, no averages.
    None,
}

/// One technical-analysis call: the function, its period, its hold period (`None`: the
/// indicator's own warm-up count) and its warm-up type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Technical {
    pub func: TaFunc,
    pub period: u32,
    pub hold: Option<u32>,
    pub warmup: Warmup,
}

impl Technical {
    /// The running indicator.
    pub fn indicator(&self) -> Box<dyn Indicator> {
        let n = self.period.max(1) as usize;
        let simple = self.warmup == Warmup::Simple;
        match self.func {
            TaFunc::Ema => Box::new(Ema::new(n, simple)),
            TaFunc::Dema => Box::new(Dema::new(n, simple)),
            TaFunc::Tema => Box::new(Tema::new(n, simple)),
            TaFunc::Trix => Box::new(Trix::new(n, simple)),
            TaFunc::Rsi => Box::new(Rsi::new(n, simple)),
            // The planner refuses a period of 1 here (1.x fails on it: its window would be
            // empty); a plan decoded with one gets the smallest window rather than a panic.
            TaFunc::Cmo if self.warmup == Warmup::None => Box::new(Cmo::new(n.max(2))),
            TaFunc::Cmo => Box::new(Rsi::cmo(n, simple)),
            TaFunc::Ker => Box::new(Ker::new(n)),
            TaFunc::Kama => Box::new(Kama::new(n)),
        }
    }

    /// The values of a series, in time order: `None` for the points held back (the first
    /// `hold` of them) and for values 1.x does not emit (infinite ones, for the functions
    /// that drop them).
    pub fn run(&self, values: impl IntoIterator<Item = f64>) -> Vec<Option<f64>> {
        let mut ind = self.indicator();
        let hold = self
            .hold
            .map(|h| h as usize)
            .unwrap_or_else(|| ind.warm_count());
        values
            .into_iter()
            .enumerate()
            .map(|(k, v)| {
                let out = ind.add(v);
                (k + 1 > hold && self.emits(out)).then_some(out)
            })
            .collect()
    }

    /// Whether 1.x emits a value: the derivative and Kaufman's functions drop infinite ones.
    fn emits(&self, v: f64) -> bool {
        match self.func {
            TaFunc::Trix | TaFunc::Ker | TaFunc::Kama => !v.is_infinite(),
            _ => true,
        }
    }
}

/// A running indicator.
pub trait Indicator {
    /// Takes the next value and answers the indicator's value after it.
    fn add(&mut self, v: f64) -> f64;
    /// How many values it needs before its answers mean something (the default hold period).
    fn warm_count(&self) -> usize;
}

/// An exponential moving average.
#[derive(Debug, Clone)]
struct Ema {
    period: usize,
    last: f64,
    count: usize,
    alpha: f64,
    simple: bool,
}

impl Ema {
    fn new(period: usize, simple: bool) -> Self {
        Self {
            period,
            last: 0.0,
            count: 0,
            alpha: 2.0 / (period + 1) as f64,
            simple,
        }
    }

    fn warmed(&self) -> bool {
        self.count == self.period
    }

    /// Feeds `v` to `next`, the average after this one in a chain (DEMA, TEMA, TRIX), once
    /// this one has warmed up, or at once with an exponential warm-up; `v` itself before.
    fn chain(&self, next: &mut Ema, v: f64) -> f64 {
        if self.warmed() || !self.simple {
            next.add(v)
        } else {
            v
        }
    }
}

impl Indicator for Ema {
    fn add(&mut self, v: f64) -> f64 {
        let avg = if self.count == 0 {
            v
        } else if !self.warmed() {
            if self.simple {
                (self.last * self.count as f64 + v) / (self.count + 1) as f64
            } else {
                let alpha = 2.0 / (self.count + 2) as f64;
                (v - self.last) * alpha + self.last
            }
        } else {
            (v - self.last) * self.alpha + self.last
        };
        self.last = avg;
        if self.count < self.period {
            self.count += 1;
        }
        avg
    }

    fn warm_count(&self) -> usize {
        self.period - 1
    }
}

/// `2 * ema - ema(ema)`.
#[derive(Debug, Clone)]
struct Dema {
    ema1: Ema,
    ema2: Ema,
}

impl Dema {
    fn new(period: usize, simple: bool) -> Self {
        Self {
            ema1: Ema::new(period, simple),
            ema2: Ema::new(period, simple),
        }
    }
}

impl Indicator for Dema {
    fn add(&mut self, v: f64) -> f64 {
        let avg1 = self.ema1.add(v);
        let avg2 = self.ema1.chain(&mut self.ema2, avg1);
        2.0 * avg1 - avg2
    }

    fn warm_count(&self) -> usize {
        if self.ema1.simple {
            self.ema1.warm_count() + self.ema2.warm_count()
        } else {
            self.ema1.warm_count()
        }
    }
}

/// `3 * ema - 3 * ema(ema) + ema(ema(ema))`.
#[derive(Debug, Clone)]
struct Tema {
    ema1: Ema,
    ema2: Ema,
    ema3: Ema,
}

impl Tema {
    fn new(period: usize, simple: bool) -> Self {
        Self {
            ema1: Ema::new(period, simple),
            ema2: Ema::new(period, simple),
            ema3: Ema::new(period, simple),
        }
    }
}

impl Indicator for Tema {
    fn add(&mut self, v: f64) -> f64 {
        let avg1 = self.ema1.add(v);
        let avg2 = self.ema1.chain(&mut self.ema2, avg1);
        let avg3 = self.ema2.chain(&mut self.ema3, avg2);
        3.0 * avg1 - 3.0 * avg2 + avg3
    }

    fn warm_count(&self) -> usize {
        if self.ema1.simple {
            self.ema1.warm_count() + self.ema2.warm_count() + self.ema3.warm_count()
        } else {
            self.ema1.warm_count()
        }
    }
}

/// The rate of change, in percent, of a triple exponential average.
#[derive(Debug, Clone)]
struct Trix {
    ema1: Ema,
    ema2: Ema,
    ema3: Ema,
    last: f64,
}

impl Trix {
    fn new(period: usize, simple: bool) -> Self {
        Self {
            ema1: Ema::new(period, simple),
            ema2: Ema::new(period, simple),
            ema3: Ema::new(period, simple),
            last: 0.0,
        }
    }
}

impl Indicator for Trix {
    fn add(&mut self, v: f64) -> f64 {
        // 1.x feeds the third average only once the second was fed; the second cannot have
        // warmed up (or be exponential) without having been fed, so chaining is the same.
        let cur = self.ema1.add(v);
        let cur = self.ema1.chain(&mut self.ema2, cur);
        let cur = self.ema2.chain(&mut self.ema3, cur);
        let rate = ((cur / self.last) - 1.0) * 100.0;
        self.last = cur;
        rate
    }

    fn warm_count(&self) -> usize {
        if self.ema1.simple {
            self.ema1.warm_count() * 3 + 1
        } else {
            self.ema1.warm_count() + 1
        }
    }
}

/// The relative strength index: averages of rises and of falls (1.x's `RSI`); with
/// `momentum`, the Chande momentum oscillator of those averages (1.x's `CMOS`).
#[derive(Debug, Clone)]
struct Rsi {
    up: Ema,
    down: Ema,
    last: f64,
    momentum: bool,
}

impl Rsi {
    fn new(period: usize, simple: bool) -> Self {
        let mut ema = Ema::new(period + 1, simple);
        ema.alpha = 1.0 / period as f64;
        Self {
            up: ema.clone(),
            down: ema,
            last: 0.0,
            momentum: false,
        }
    }

    fn cmo(period: usize, simple: bool) -> Self {
        Self {
            momentum: true,
            ..Self::new(period, simple)
        }
    }
}

impl Indicator for Rsi {
    fn add(&mut self, v: f64) -> f64 {
        let (mut up, mut down) = (0.0, 0.0);
        if v > self.last {
            up = v - self.last;
        } else if v < self.last {
            down = self.last - v;
        }
        self.up.add(up);
        self.down.add(down);
        self.last = v;
        let (up, down) = (self.up.last, self.down.last);
        if self.momentum {
            100.0 * ((up - down) / (up + down))
        } else {
            100.0 - (100.0 / (1.0 + up / down))
        }
    }

    fn warm_count(&self) -> usize {
        self.up.warm_count()
    }
}

/// The Chande momentum oscillator over a window of the last `period` changes (1.x's `CMO`).
#[derive(Debug, Clone)]
struct Cmo {
    /// A ring of (value, change from the one before), `period - 1` long.
    points: Vec<(f64, f64)>,
    sum_up: f64,
    sum_down: f64,
    count: usize,
    idx: usize,
}

impl Cmo {
    fn new(period: usize) -> Self {
        Self {
            points: vec![(0.0, 0.0); period.saturating_sub(1)],
            sum_up: 0.0,
            sum_down: 0.0,
            count: 0,
            idx: 0,
        }
    }
}

impl Indicator for Cmo {
    fn add(&mut self, v: f64) -> f64 {
        let oldest = if self.idx + 1 == self.points.len() {
            0
        } else {
            self.idx + 1
        };
        let mut diff = 0.0;
        if self.count != 0 {
            diff = v - self.points[self.idx].0;
            if diff > 0.0 {
                self.sum_up += diff;
            } else if diff < 0.0 {
                self.sum_down -= diff;
            }
        }
        let mut out = 0.0;
        if self.sum_up != 0.0 || self.sum_down != 0.0 {
            out = 100.0 * ((self.sum_up - self.sum_down) / (self.sum_up + self.sum_down));
        }
        let old = self.points[oldest].1;
        if old > 0.0 {
            self.sum_up -= old;
        } else if old < 0.0 {
            self.sum_down += old;
        }
        self.points[oldest] = (v, diff);
        self.idx = oldest;
        if self.count != self.points.len() + 2 {
            self.count += 1;
        }
        out
    }

    fn warm_count(&self) -> usize {
        self.points.len()
    }
}

/// Kaufman's efficiency ratio: the net change over a window divided by the sum of the
/// absolute changes in it.
#[derive(Debug, Clone)]
struct Ker {
    /// A ring of (value, absolute change from the one before), `period` long.
    points: Vec<(f64, f64)>,
    noise: f64,
    count: usize,
    idx: usize,
}

impl Ker {
    fn new(period: usize) -> Self {
        Self {
            points: vec![(0.0, 0.0); period],
            noise: 0.0,
            count: 0,
            idx: 0,
        }
    }

    fn warmed(&self) -> bool {
        self.count == self.points.len() + 1
    }
}

impl Indicator for Ker {
    fn add(&mut self, v: f64) -> f64 {
        let n = self.points.len();
        let oldest = if self.idx + 1 >= n { 0 } else { self.idx + 1 };
        let signal = (v - self.points[oldest].0).abs();
        let diff = (v - self.points[self.idx].0).abs();
        self.noise -= self.points[oldest].1;
        self.noise += diff;
        let noise = self.noise;
        self.idx = oldest;
        self.points[oldest] = (v, diff);
        if !self.warmed() {
            self.count += 1;
        }
        if signal == 0.0 || noise == 0.0 {
            0.0
        } else {
            signal / noise
        }
    }

    fn warm_count(&self) -> usize {
        self.points.len()
    }
}

/// Kaufman's adaptive moving average: an exponential average whose smoothing follows the
/// efficiency ratio (between the constants of a 2 and a 30 period average).
#[derive(Debug, Clone)]
struct Kama {
    ker: Ker,
    last: f64,
}

impl Kama {
    fn new(period: usize) -> Self {
        Self {
            ker: Ker::new(period),
            last: 0.0,
        }
    }
}

impl Indicator for Kama {
    fn add(&mut self, v: f64) -> f64 {
        if !self.ker.warmed() {
            self.last = self.ker.points[self.ker.idx].0;
        }
        let er = self.ker.add(v);
        let sc = (er * (2.0 / (2.0 + 1.0) - 2.0 / (30.0 + 1.0)) + 2.0 / (30.0 + 1.0)).powi(2);
        self.last += sc * (v - self.last);
        self.last
    }

    fn warm_count(&self) -> usize {
        self.ker.warm_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(func: TaFunc, period: u32, warmup: Warmup, values: &[f64]) -> Vec<Option<f64>> {
        Technical {
            func,
            period,
            hold: None,
            warmup,
        }
        .run(values.iter().copied())
    }

    /// Values 1.6.7 answered for `SELECT <f>(f, 3) FROM m LIMIT 3`-style queries of this
    /// series (see the compatibility suite for the whole answers).
    const SERIES: [f64; 6] = [1.0, 3.0, 2.0, 6.0, 7.0, 9.0];

    #[test]
    fn ema_warms_exponentially_and_holds_period_minus_one() {
        let out = run(TaFunc::Ema, 3, Warmup::Exponential, &SERIES);
        assert_eq!(out[..2], [None, None]);
        // count 0: 1; count 1: alpha 2/3 -> 1 + (3-1)*2/3; count 2: alpha 2/4.
        let second = (3.0 - 1.0) * (2.0 / 3.0) + 1.0;
        let third = (2.0 - second) * 0.5 + second;
        assert_eq!(out[2], Some(third));
        let fourth = (6.0 - third) * 0.5 + third;
        assert_eq!(out[3], Some(fourth));
    }

    #[test]
    fn simple_warmup_is_the_running_mean() {
        let out = run(TaFunc::Ema, 3, Warmup::Simple, &SERIES);
        assert_eq!(out[2], Some(2.0));
    }

    #[test]
    fn rsi_starts_from_zero_and_is_100_without_falls() {
        // Its averages have a period one longer: the first two are held back.
        let out = run(TaFunc::Rsi, 2, Warmup::Exponential, &[1.0, 2.0, 3.0]);
        assert_eq!(out, [None, None, Some(100.0)]);
        // Values that never change: 0 / 0, emitted (as null, by the HTTP answer).
        let out = run(TaFunc::Rsi, 2, Warmup::Exponential, &[0.0, 0.0, 0.0]);
        assert!(out[2].is_some_and(f64::is_nan));
    }

    #[test]
    fn cmo_sums_a_window_of_changes() {
        let out = run(TaFunc::Cmo, 3, Warmup::None, &[1.0, 3.0, 2.0, 6.0]);
        // Held back: the first two; after 2.0 the window holds +2 and -1: 100 * 1/3.
        assert_eq!(out[..2], [None, None]);
        assert_eq!(out[2], Some(100.0 * (1.0 / 3.0)));
    }

    #[test]
    fn trix_drops_infinite_rates() {
        let out = run(TaFunc::Trix, 2, Warmup::Exponential, &SERIES);
        // The first rate divides by the initial 0: infinite, and held back anyway.
        assert_eq!(out[0], None);
        assert!(out[2..].iter().all(Option::is_some));
    }

    #[test]
    fn ker_and_kama() {
        let out = run(TaFunc::Ker, 2, Warmup::Exponential, &[1.0, 2.0, 3.0, 2.0]);
        assert_eq!(out[..2], [None, None]);
        // window of 2 changes: 3 vs 1, noise 1 + 1.
        assert_eq!(out[2], Some(1.0));
        assert_eq!(out[3], Some(0.0));
        let kama = run(TaFunc::Kama, 2, Warmup::Exponential, &[1.0, 2.0, 3.0, 2.0]);
        assert!(kama[2].is_some());
    }

    #[test]
    fn names_round_trip() {
        for f in [TaFunc::Ema, TaFunc::Cmo, TaFunc::Kama, TaFunc::Trix] {
            assert_eq!(TaFunc::from_name(f.name()), Some(f));
        }
        assert_eq!(TaFunc::from_name("holt_winters"), None);
    }
}

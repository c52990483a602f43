//! `holt_winters(aggregate, n, s)` and `holt_winters_with_fit(...)`: the Holt-Winters damped
//! method over a series of `GROUP BY time` buckets, forecasting `n` buckets past the last one
//! with a season of `s` buckets (no season below 2).
//!
//! Computed as InfluxDB 1.x computes it, so that the forecasts agree: the points are put on
//! the interval's grid (times rounded to the nearest multiple of the interval, later points of
//! a grid slot dropped, empty slots skipped in the error sum), the initial level, trend and
//! season are guessed from the first season(s), and the parameters (alpha, beta, gamma, phi and
//! the initial values) are fitted by a Nelder-Mead simplex started from each of the 16 corners
//! of 1.x's grid of guesses, keeping the least sum of squared errors. The objective constrains
//! the parameters and rotates the seasonal ones in place, as 1.x's does, and powers are taken
//! as Go's `math.Pow` takes them (repeated squaring), since the simplex amplifies a last-digit
//! difference.
//!
//! [`crate::aggregate`] runs it as an aggregate per series; this module holds no DataFusion.

/// A forecast's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoltWinters {
    /// How many intervals past the last point to forecast.
    pub h: usize,
    /// The season's length in intervals (< 2: no season).
    pub m: usize,
    /// Whether the fitted values of the points' own times come first.
    pub with_fit: bool,
    /// The `GROUP BY time` interval, in nanoseconds.
    pub interval: i64,
}

const WEIGHT: f64 = 0.5;
const EPSILON: f64 = 1.0e-4;
const GUESS_LOWER: f64 = 0.3;
const GUESS_UPPER: f64 = 1.0;
const GUESS_STEP: f64 = 0.4;

impl HoltWinters {
    fn seasonal(&self) -> bool {
        self.m >= 2
    }

    fn round(&self, t: i64) -> i64 {
        let half = self.interval / 2;
        if t % self.interval > half {
            (t / self.interval + 1) * self.interval
        } else {
            (t / self.interval) * self.interval
        }
    }

    /// The forecast (and the fit, with `with_fit`) of `points`, given in time order as
    /// (time, value): (time, value) pairs, none where 1.x has none.
    pub fn forecast(&self, points: &[(i64, f64)]) -> Vec<(i64, f64)> {
        let l = points.len();
        if l < 2 || (self.seasonal() && l < self.m) || self.h == 0 || self.interval <= 0 {
            return Vec::new();
        }
        let (first, last) = (points[0], points[l - 1]);
        let (start, stop) = (self.round(first.0), self.round(last.0));
        if (stop - start) / self.interval <= 0 {
            return Vec::new();
        }
        // The values on the interval's grid, NaN where a slot has none.
        let mut y = vec![first.1];
        let mut t = start;
        for &(time, value) in &points[1..] {
            let rounded = self.round(time);
            if rounded <= t {
                continue;
            }
            t += self.interval;
            while rounded != t {
                y.push(f64::NAN);
                t += self.interval;
            }
            y.push(value);
        }
        let m = self.m;
        if self.seasonal() && y.len() < m {
            // 1.x reads past its slots here and fails; there is no season to fit.
            return Vec::new();
        }

        // Initial guesses of level, trend and season (missing values skipped).
        let mut l0 = 0.0;
        let mut b0 = 0.0;
        let mut season = Vec::new();
        if self.seasonal() {
            for v in y.iter().take(m) {
                if !v.is_nan() {
                    l0 += (1.0 / m as f64) * v;
                }
            }
            for i in 0..m {
                if m + i >= y.len() {
                    break;
                }
                if !y[i].is_nan() && !y[m + i].is_nan() {
                    b0 += 1.0 / (m * m) as f64 * (y[m + i] - y[i]);
                }
            }
            season = y[..m]
                .iter()
                .map(|v| if v.is_nan() { 0.0 } else { v / l0 })
                .collect();
        } else {
            l0 += WEIGHT * y[0];
            if !y[1].is_nan() {
                b0 = WEIGHT * (y[1] - y[0]);
            }
        }
        let mut params = vec![0.0; 6 + season.len()];
        params[4] = l0;
        params[5] = b0;
        params[6..].copy_from_slice(&season);

        let fit = Fit {
            y: &y,
            seasonal: self.seasonal(),
        };
        let mut best: Option<(f64, Vec<f64>)> = None;
        let mut alpha = GUESS_LOWER;
        while alpha < GUESS_UPPER {
            let mut beta = GUESS_LOWER;
            while beta < GUESS_UPPER {
                let mut gamma = GUESS_LOWER;
                while gamma < GUESS_UPPER {
                    let mut phi = GUESS_LOWER;
                    while phi < GUESS_UPPER {
                        params[..4].copy_from_slice(&[alpha, beta, gamma, phi]);
                        let (sse, found) =
                            nelder_mead(|p: &mut [f64]| fit.sse(p), &params, EPSILON, 1.0);
                        if best.as_ref().is_none_or(|(min, _)| sse < *min) {
                            best = Some((sse, found));
                        }
                        phi += GUESS_STEP;
                    }
                    gamma += GUESS_STEP;
                }
                beta += GUESS_STEP;
            }
            alpha += GUESS_STEP;
        }
        let Some((_, mut best)) = best else {
            return Vec::new();
        };
        let forecast = fit.forecast(self.h, &mut best);
        let at = |base: i64, i: usize| base.saturating_add(self.interval.saturating_mul(i as i64));
        if self.with_fit {
            forecast
                .iter()
                .enumerate()
                .filter(|(_, v)| !v.is_nan())
                .map(|(i, v)| (at(first.0, i), *v))
                .collect()
        } else {
            forecast[y.len()..]
                .iter()
                .enumerate()
                .filter(|(_, v)| !v.is_nan())
                .map(|(i, v)| (at(last.0, i + 1), *v))
                .collect()
        }
    }
}

/// The series on its grid, and the model's recurrences over it.
struct Fit<'a> {
    y: &'a [f64],
    seasonal: bool,
}

impl Fit<'_> {
    /// The model's values at the series' slots and `h` past them, for `params` (alpha, beta,
    /// gamma, phi, level, trend, season...). Constrains alpha..phi into [0, 1] and leaves the
    /// season rotated, in place, as 1.x does.
    fn forecast(&self, h: usize, params: &mut [f64]) -> Vec<f64> {
        for p in params.iter_mut().take(4) {
            *p = p.clamp(0.0, 1.0);
        }
        let (alpha, beta, gamma, phi) = (params[0], params[1], params[2], params[3]);
        let mut y_t = self.y[0];
        let mut phi_h = phi;
        let mut l_t = params[4];
        let mut b_t = params[5];
        let (m, mut so) = if self.seasonal {
            let m = params.len() - 6;
            if m == 1 {
                params[6] = 1.0;
            }
            (m, m - 1)
        } else {
            (0, 0)
        };
        let n = self.y.len() + h;
        let mut out = Vec::with_capacity(n);
        out.push(y_t);
        let (mut stm, mut stmh) = (1.0, 1.0);
        for t in 1..n {
            if self.seasonal {
                let hm = t % m;
                stm = params[6 + (t + so - m) % m];
                stmh = params[6 + (t + so + hm - m) % m];
            }
            let l_prev = l_t;
            l_t = alpha * (y_t / stm) + (1.0 - alpha) * (l_prev + phi * b_t);
            let b_next = beta * (l_t - l_prev) + (1.0 - beta) * phi * b_t;
            let s_t = gamma * (y_t / (l_prev + phi * b_t)) + (1.0 - gamma) * stm;
            b_t = b_next;
            y_t = (l_t + phi_h * b_t) * stmh;
            phi_h += go_pow(phi, t as i64);
            if self.seasonal {
                params[6 + (t + so) % m] = s_t;
                so += 1;
            }
            out.push(y_t);
        }
        out
    }

    /// The sum of squared errors over the slots with a value (infinite when the model
    /// answers NaN at one).
    fn sse(&self, params: &mut [f64]) -> f64 {
        let forecast = self.forecast(0, params);
        let mut sse = 0.0;
        for (f, y) in forecast.iter().zip(self.y) {
            if y.is_nan() {
                continue;
            }
            if f.is_nan() {
                return f64::INFINITY;
            }
            let d = f - y;
            sse += d * d;
        }
        sse
    }
}

/// The Nelder-Mead simplex method (reflection 1, contraction 0.5, expansion 2, at most 1000
/// iterations), as 1.x's `neldermead` package runs it: the objective may change the point it
/// is given (1.x's constrains it), and the answer is the best vertex as it was before its
/// last evaluation.
fn nelder_mead(
    mut objective: impl FnMut(&mut [f64]) -> f64,
    start: &[f64],
    epsilon: f64,
    scale: f64,
) -> (f64, Vec<f64>) {
    const MAX_ITERATIONS: usize = 1000;
    const ALPHA: f64 = 1.0;
    const BETA: f64 = 0.5;
    const GAMMA: f64 = 2.0;
    let n = start.len();
    let nf = n as f64;
    let pn = scale * ((nf + 1.0).sqrt() - 1.0 + nf) / (nf * 2f64.sqrt());
    let qn = scale * ((nf + 1.0).sqrt() - 1.0) / (nf * 2f64.sqrt());
    let mut v: Vec<Vec<f64>> = vec![start.to_vec(); n + 1];
    for (i, vertex) in v.iter_mut().enumerate().skip(1) {
        for (j, x) in vertex.iter_mut().enumerate() {
            *x = if i - 1 == j { pn } else { qn } + start[j];
        }
    }
    let mut f: Vec<f64> = v.iter_mut().map(|x| objective(x)).collect();
    let (mut vr, mut ve, mut vc, mut vm) = (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    for _ in 0..MAX_ITERATIONS {
        let (mut vg, mut vs) = (0, 0);
        for i in 0..=n {
            if f[i] > f[vg] {
                vg = i;
            }
            if f[i] < f[vs] {
                vs = i;
            }
        }
        let mut vh = vs;
        for i in 0..=n {
            if f[i] > f[vh] && f[i] < f[vg] {
                vh = i;
            }
        }
        for i in 0..n {
            let mut cent = 0.0;
            for (k, vertex) in v.iter().enumerate() {
                if k != vg {
                    cent += vertex[i];
                }
            }
            vm[i] = cent / nf;
        }
        for i in 0..n {
            vr[i] = vm[i] + ALPHA * (vm[i] - v[vg][i]);
        }
        let fr = objective(&mut vr);
        if fr < f[vh] && fr >= f[vs] {
            v[vg].copy_from_slice(&vr);
            f[vg] = fr;
        }
        if fr < f[vs] {
            for i in 0..n {
                ve[i] = vm[i] + GAMMA * (vr[i] - vm[i]);
            }
            let fe = objective(&mut ve);
            if fe < fr {
                v[vg].copy_from_slice(&ve);
                f[vg] = fe;
            } else {
                v[vg].copy_from_slice(&vr);
                f[vg] = fr;
            }
        }
        if fr >= f[vh] {
            if fr < f[vg] && fr >= f[vh] {
                for i in 0..n {
                    vc[i] = vm[i] + BETA * (vr[i] - vm[i]);
                }
            } else {
                for i in 0..n {
                    vc[i] = vm[i] - BETA * (vm[i] - v[vg][i]);
                }
            }
            let fc = objective(&mut vc);
            if fc < f[vg] {
                v[vg].copy_from_slice(&vc);
                f[vg] = fc;
            } else {
                // Shrink every vertex halfway towards the best one.
                let best = v[vs].clone();
                for (row, vertex) in v.iter_mut().enumerate() {
                    if row != vs {
                        for i in 0..n {
                            vertex[i] = best[i] + (vertex[i] - best[i]) / 2.0;
                        }
                    }
                }
                f[vg] = objective(&mut v[vg]);
                f[vh] = objective(&mut v[vh]);
            }
        }
        let favg = f.iter().sum::<f64>() / (nf + 1.0);
        let s: f64 = f.iter().map(|x| (x - favg) * (x - favg) / nf).sum();
        if s.sqrt() < epsilon {
            break;
        }
    }
    let mut vs = 0;
    for i in 0..=n {
        if f[i] < f[vs] {
            vs = i;
        }
    }
    let found = v[vs].clone();
    let min = objective(&mut v[vs]);
    (min, found)
}

/// `x` to the integer power `y` >= 1 as Go's `math.Pow` computes it (by repeated squaring of
/// the mantissa), which can differ from a correctly rounded power in the last digit.
fn go_pow(x: f64, y: i64) -> f64 {
    if y == 0 || x == 1.0 {
        return 1.0;
    }
    if y == 1 {
        return x;
    }
    if x.is_nan() {
        return f64::NAN;
    }
    if x == 0.0 {
        return 0.0;
    }
    if x.is_infinite() {
        return x.powi(y.clamp(i32::MIN as i64, i32::MAX as i64) as i32);
    }
    let (mut x1, mut xe) = frexp(x);
    let (mut a1, mut ae) = (1.0f64, 0i64);
    let mut i = y;
    while i != 0 {
        if !(-(1 << 12)..=(1 << 12)).contains(&xe) {
            ae += xe;
            break;
        }
        if i & 1 == 1 {
            a1 *= x1;
            ae += xe;
        }
        x1 *= x1;
        xe <<= 1;
        if x1 < 0.5 {
            x1 += x1;
            xe -= 1;
        }
        i >>= 1;
    }
    ldexp(a1, ae)
}

/// Go's `math.Frexp`: `x = frac * 2^exp` with `frac` in [0.5, 1).
fn frexp(x: f64) -> (f64, i64) {
    if x == 0.0 || x.is_nan() || x.is_infinite() {
        return (x, 0);
    }
    let (mut x, mut exp) = (x, 0i64);
    if x.abs() < f64::MIN_POSITIVE {
        x *= (1u64 << 52) as f64;
        exp = -52;
    }
    let bits = x.to_bits();
    exp += ((bits >> 52) & 0x7ff) as i64 - 1022;
    let bits = (bits & !(0x7ff << 52)) | (1022 << 52);
    (f64::from_bits(bits), exp)
}

/// Go's `math.Ldexp`: `frac * 2^exp`, rounding once into the subnormal range.
fn ldexp(frac: f64, exp: i64) -> f64 {
    if frac == 0.0 || frac.is_nan() || frac.is_infinite() {
        return frac;
    }
    let (frac, e) = frexp(frac);
    let mut exp = exp + e;
    let bits = frac.to_bits();
    exp += ((bits >> 52) & 0x7ff) as i64 - 1023;
    if exp < -1075 {
        return 0.0f64.copysign(frac);
    }
    if exp > 1023 {
        return f64::INFINITY.copysign(frac);
    }
    let mut m = 1.0;
    if exp < -1022 {
        exp += 53;
        m = 1.0 / (1u64 << 53) as f64;
    }
    let bits = (bits & !(0x7ff << 52)) | (((exp + 1023) as u64) << 52);
    m * f64::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000_000_000;

    #[test]
    fn go_pow_is_a_power() {
        assert_eq!(go_pow(0.5, 3), 0.125);
        assert_eq!(go_pow(0.3, 1), 0.3);
        assert_eq!(go_pow(1.0, 50), 1.0);
        assert_eq!(go_pow(0.0, 5), 0.0);
        for (x, y) in [(0.7, 7), (0.3, 20), (0.99, 100), (0.5, 1070), (0.1, 400)] {
            let want = f64::powi(x, y as i32);
            let got = go_pow(x, y);
            assert!(
                (got - want).abs() <= want.abs() * 1e-14 || (got == 0.0 && want < 1e-300),
                "{x}^{y}: {got} vs {want}"
            );
        }
        assert_eq!(frexp(8.0), (0.5, 4));
        assert_eq!(ldexp(0.5, 4), 8.0);
    }

    /// `SELECT holt_winters[_with_fit](mean(f), 2, s) FROM g WHERE time < 20m GROUP BY
    /// time(2m)` on 1.6.7, with the bucket means of `g` (empty buckets skipped).
    fn g() -> Vec<(i64, f64)> {
        [(0, 2.0), (2, 2.0), (6, 6.5), (12, 8.5), (16, 12.0)]
            .iter()
            .map(|&(t, v)| (t * MIN, v))
            .collect()
    }

    fn close(got: &[(i64, f64)], want: &[(i64, f64)]) {
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.0, w.0);
            assert!((g.1 - w.1).abs() <= w.1.abs() * 1e-9, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn matches_1x_without_season() {
        let hw = HoltWinters {
            h: 2,
            m: 0,
            with_fit: true,
            interval: 2 * MIN,
        };
        let want: Vec<(i64, f64)> = [
            (0, 2.0),
            (2, 2.2082040764816337),
            (4, 4.387914847105627),
            (6, 5.8320241910844555),
            (8, 7.04886309336225),
            (10, 8.191327859117562),
            (12, 9.320112726385808),
            (14, 10.464897468223064),
            (16, 11.642805113100577),
            (18, 12.86513126202184),
            (20, 14.140187419367262),
        ]
        .iter()
        .map(|&(t, v)| (t * MIN, v))
        .collect();
        close(&hw.forecast(&g()), &want);
    }

    #[test]
    fn matches_1x_with_a_season() {
        let hw = HoltWinters {
            h: 2,
            m: 3,
            with_fit: false,
            interval: 2 * MIN,
        };
        close(
            &hw.forecast(&g()),
            &[(18 * MIN, 6.487926841914167), (20 * MIN, 7.122614464224938)],
        );
        let fit = HoltWinters {
            m: 2,
            with_fit: true,
            ..hw
        };
        let got = fit.forecast(&g());
        close(
            &got[..3],
            &[
                (0, 2.0),
                (2 * MIN, 2.324178902815581),
                (4 * MIN, 2.4008738631027295),
            ],
        );
    }

    #[test]
    fn too_few_points_forecast_nothing() {
        let hw = HoltWinters {
            h: 2,
            m: 30,
            with_fit: false,
            interval: 2 * MIN,
        };
        assert!(hw.forecast(&g()).is_empty());
        assert!(HoltWinters { m: 0, ..hw }.forecast(&g()[..1]).is_empty());
        // Points in descending order (ORDER BY time DESC) forecast nothing, as in 1.x.
        let mut desc = g();
        desc.reverse();
        assert!(HoltWinters { m: 0, ..hw }.forecast(&desc).is_empty());
    }
}

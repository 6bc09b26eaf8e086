//! The statistics of the reports: mean and spread over seeds ([`Stat`]), paired gains with a
//! Student-t interval ([`Gain`]), and the measurement noise of an accuracy on a finite test set.

use serde::Serialize;

/// Mean, sample standard deviation and count of a set of accuracies.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stat {
    pub mean: f64,
    pub std: f64,
    pub n: usize,
}

impl Stat {
    pub fn of(xs: &[f64]) -> Option<Stat> {
        if xs.is_empty() {
            return None;
        }
        let n = xs.len();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let std = if n > 1 {
            (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        Some(Stat { mean, std, n })
    }

    /// `85.12 ± 0.30` (or just the mean for one value).
    pub fn show(&self) -> String {
        if self.n > 1 {
            format!("{:.2} ± {:.2}", self.mean, self.std)
        } else {
            format!("{:.2}", self.mean)
        }
    }
}

/// The 97.5 % quantile of Student's t distribution with `df` degrees of freedom (two-sided 95 %).
/// Tabulated to df = 30, then interpolated linearly in 1/df towards the normal 1.960.
pub fn t_975(df: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    const TAIL: [(f64, f64); 4] = [(30.0, 2.042), (40.0, 2.021), (60.0, 2.000), (120.0, 1.980)];
    match df {
        0 => f64::NAN,
        1..=30 => T[df - 1],
        _ => {
            let x = 1.0 / df as f64;
            let mut pts: Vec<(f64, f64)> = TAIL.iter().map(|&(d, t)| (1.0 / d, t)).collect();
            pts.push((0.0, 1.960));
            let i = pts
                .windows(2)
                .position(|w| x <= w[0].0 && x >= w[1].0)
                .unwrap_or(pts.len() - 2);
            let ((x0, y0), (x1, y1)) = (pts[i], pts[i + 1]);
            y0 + (y1 - y0) * (x - x0) / (x1 - x0)
        }
    }
}

/// The gain of a cell over the baseline, from per-seed paired differences (points of accuracy).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Gain {
    pub mean: f64,
    /// Standard deviation of the per-seed differences.
    pub std: f64,
    pub n: usize,
    /// 95 % confidence interval (t-distribution, n − 1 degrees of freedom), cut at ±100: a
    /// difference of two accuracies lies there, however few the seeds; none with one seed.
    pub ci95: Option<(f64, f64)>,
    /// The t-interval's half-width, before the cut (in JSON as `half_width`).
    #[serde(rename = "half_width")]
    half: Option<f64>,
}

impl Gain {
    pub fn of(diffs: &[f64]) -> Option<Gain> {
        Gain::with_floor(diffs, 0.0)
    }

    /// The gain from paired differences whose spread is at least `floor` (a standard deviation, in
    /// points): each difference is itself measured on a finite test set, so a few seeds that happen
    /// to agree must not make the interval narrower than that measurement noise allows.
    pub fn with_floor(diffs: &[f64], floor: f64) -> Option<Gain> {
        let s = Stat::of(diffs)?;
        let spread = s.std.max(floor);
        let half = (s.n > 1).then(|| t_975(s.n - 1) * spread / (s.n as f64).sqrt());
        let cut = |x: f64| x.clamp(-100.0, 100.0);
        Some(Gain {
            mean: s.mean,
            std: s.std,
            n: s.n,
            ci95: half.map(|h| (cut(s.mean - h), cut(s.mean + h))),
            half,
        })
    }

    /// The t-interval's half-width (mean ± this, before [`Gain::ci95`]'s cut at ±100).
    pub fn half_width(&self) -> Option<f64> {
        self.half
    }
}

/// The standard deviation (points) of the difference of two accuracies `a` and `b` (%), each
/// measured on `n` test images: binomial noise, sqrt(p(1 − p)/n) each, taken as independent (the
/// same images make them correlated, so this is an upper bound). With 1,000 images and accuracies
/// near 80 % about 1.8 points.
pub fn measurement_sd(a: f64, b: f64, n: usize) -> f64 {
    if n == 0 {
        return 0.0;
    }
    let var = |p: f64| {
        let p = (p / 100.0).clamp(0.0, 1.0);
        p * (1.0 - p) / n as f64
    };
    100.0 * (var(a) + var(b)).sqrt()
}

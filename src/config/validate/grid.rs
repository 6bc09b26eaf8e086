//! `[grid]`: the temperature and α axes, the methods, the students' models, and each method's
//! own table (`[grid.dkd]`, `[grid.dist]`, `[grid.multi_t]`, `[grid.ctkd]`) whose keys are that
//! method's axes ([`crate::distill::Method::axes`]).

use super::Validator;
use crate::config::raw::{RawAxis, RawCtkd, RawDist, RawDkd, RawGrid, RawMultiT};
use crate::config::{ConfigError, GridValue, Method, MethodGrid};
use crate::distill::Fixed;
use toml::Spanned;

impl Validator<'_> {
    /// A grid axis: non-empty, each value allowed by `ok`, no value twice (1 and 1.0 are the same).
    pub(super) fn axis(
        &self,
        values: &Spanned<Vec<Spanned<f64>>>,
        key: &str,
        allowed: &str,
        ok: impl Fn(f64) -> bool,
    ) -> Result<Vec<GridValue>, ConfigError> {
        if values.get_ref().is_empty() {
            return Err(self.at(
                values,
                key,
                &format!("is empty; give at least one value ({allowed})"),
            ));
        }
        let mut out: Vec<GridValue> = Vec::new();
        for v in values.get_ref() {
            let value = *v.get_ref();
            if !ok(value) {
                return Err(self.at(
                    v,
                    key,
                    &format!("{value} is not allowed: values must be {allowed}"),
                ));
            }
            let text = self.text[v.span()]
                .trim()
                .trim_start_matches('+')
                .to_string();
            if let Some(first) = out.iter().find(|g| g.value == value) {
                return Err(self.at(
                    v,
                    key,
                    &format!(
                        "{text} appears twice (same value as {}); list each value once",
                        first.text
                    ),
                ));
            }
            out.push(GridValue { text, value });
        }
        Ok(out)
    }
    pub(super) fn methods(
        &self,
        raw: &Option<Spanned<Vec<Spanned<String>>>>,
    ) -> Result<Vec<Method>, ConfigError> {
        let mut methods = Vec::new();
        match raw {
            None => methods.push(Method::Logit),
            Some(list) => {
                if list.get_ref().is_empty() {
                    return Err(self.at(
                        list,
                        "grid.method",
                        &format!("is empty; give at least one of {}", Method::NAMES),
                    ));
                }
                for m in list.get_ref() {
                    let method = Method::parse(m.get_ref()).ok_or_else(|| {
                        self.at(
                            m,
                            "grid.method",
                            &format!(
                                "unknown method \"{}\"; allowed: {}",
                                m.get_ref(),
                                Method::NAMES
                            ),
                        )
                    })?;
                    if methods.contains(&method) {
                        return Err(self.at(
                            m,
                            "grid.method",
                            &format!("\"{}\" appears twice; list each method once", m.get_ref()),
                        ));
                    }
                    methods.push(method);
                }
            }
        }

        Ok(methods)
    }

    /// `logit_norm = ["none", "zscore"]` (`key` for errors): plain logits (false) and/or z-scored
    /// ones (true), each once; absent: plain only.
    fn logit_norm(
        &self,
        raw: &Option<Spanned<Vec<Spanned<String>>>>,
        key: &str,
    ) -> Result<Vec<bool>, ConfigError> {
        let Some(list) = raw else {
            return Ok(vec![false]);
        };
        if list.get_ref().is_empty() {
            return Err(self.at(list, key, "is empty; give \"none\", \"zscore\" or both"));
        }
        let mut out = Vec::new();
        for v in list.get_ref() {
            let z = match v.get_ref().as_str() {
                "none" => false,
                "zscore" => true,
                other => {
                    return Err(self.at(
                        v,
                        key,
                        &format!(
                            "\"{other}\" is not a logit normalisation: use \"none\" (the plain \
                             logits) or \"zscore\" (standardised per sample, Sun et al. 2024)"
                        ),
                    ))
                }
            };
            if out.contains(&z) {
                return Err(self.at(v, key, "appears twice; list each once"));
            }
            out.push(z);
        }
        Ok(out)
    }

    /// A temperature axis of a method table.
    pub(super) fn temperatures(
        &self,
        raw: &RawAxis,
        key: &str,
    ) -> Result<Vec<GridValue>, ConfigError> {
        self.axis(raw, key, "finite numbers > 0", |v| v.is_finite() && v > 0.0)
    }

    /// An axis of non-negative weights (DKD's and DIST's α, β, γ).
    fn weights(&self, raw: &RawAxis, key: &str) -> Result<Vec<GridValue>, ConfigError> {
        self.axis(raw, key, "finite numbers ≥ 0", |v| {
            v.is_finite() && v >= 0.0
        })
    }

    /// An α axis in [0, 1] (the weight of a distillation term against the cross-entropy).
    pub(super) fn alphas(&self, raw: &RawAxis, key: &str) -> Result<Vec<GridValue>, ConfigError> {
        self.axis(raw, key, "numbers in [0, 1]", |v| (0.0..=1.0).contains(&v))
    }

    /// The `[grid.<method>]` tables: each given table's method must be in `methods`, and every
    /// listed method with a table of its own gets its axes (its defaults where the table is absent,
    /// α from `[grid] alpha` for multi-T and CTKD). Returns the grids in `methods` order and the
    /// methods' fixed settings.
    pub(super) fn method_grids(
        &self,
        g: &RawGrid,
        methods: &[Method],
        alphas: &[GridValue],
    ) -> Result<(Vec<MethodGrid>, Fixed), ConfigError> {
        let given: [(Method, Option<std::ops::Range<usize>>); 4] = [
            (Method::Dkd, g.dkd.as_ref().map(|t| t.span())),
            (Method::Dist, g.dist.as_ref().map(|t| t.span())),
            (Method::MultiT, g.multi_t.as_ref().map(|t| t.span())),
            (Method::Ctkd, g.ctkd.as_ref().map(|t| t.span())),
        ];
        for (m, span) in &given {
            if let (Some(span), false) = (span, methods.contains(m)) {
                let table = m.table().unwrap_or_default();
                return Err(self.err(
                    Some(span.clone()),
                    Some(&format!("grid.{table}")),
                    &format!(
                        "[grid.{table}] is given, but \"{}\" is not in [grid] method; add it there \
                         or remove the table",
                        m.name()
                    ),
                ));
            }
        }
        let mut fixed = Fixed::default();
        let mut grids = Vec::new();
        for &m in methods {
            let grid = match m {
                Method::Dkd => self.dkd(g.dkd.as_ref().map(|t| t.get_ref()), &mut fixed)?,
                Method::Dist => self.dist(g.dist.as_ref().map(|t| t.get_ref()))?,
                Method::MultiT => self.multi_t(g.multi_t.as_ref().map(|t| t.get_ref()), alphas)?,
                Method::Ctkd => {
                    self.ctkd(g.ctkd.as_ref().map(|t| t.get_ref()), alphas, &mut fixed)?
                }
                Method::Logit | Method::Feature | Method::Imitation => continue,
            };
            grids.push(grid);
        }
        Ok((grids, fixed))
    }

    /// `[grid.dkd]`: α (TCKD's weight), β (NCKD's), T; defaults α = [1], β = [8], T = [4] and a
    /// warm-up of 20 epochs (mdistiller's CIFAR-100 settings).
    fn dkd(&self, t: Option<&RawDkd>, fixed: &mut Fixed) -> Result<MethodGrid, ConfigError> {
        let mut grid = defaults(Method::Dkd);
        grid.alpha = vec![GridValue::of("1")];
        grid.beta = vec![GridValue::of("8")];
        grid.temperature = vec![GridValue::of("4")];
        let Some(t) = t else { return Ok(grid) };
        if let Some(a) = &t.alpha {
            grid.alpha = self.weights(a, "grid.dkd.alpha")?;
        }
        if let Some(b) = &t.beta {
            grid.beta = self.weights(b, "grid.dkd.beta")?;
        }
        if let Some(x) = &t.temperature {
            grid.temperature = self.temperatures(x, "grid.dkd.temperature")?;
        }
        if let Some(w) = &t.warmup {
            fixed.dkd_warmup = self.positive(
                w,
                "grid.dkd.warmup",
                "epochs over which the KD terms ramp in",
            )?;
        }
        grid.logit_norm = self.logit_norm(&t.logit_norm, "grid.dkd.logit_norm")?;
        if let Some(z) = &t.zscore_temperature {
            if !grid.logit_norm.contains(&true) {
                return Err(self.at(z, "grid.dkd.zscore_temperature", ZSCORE_ONLY));
            }
            grid.zscore_temperature = self.temperatures(z, "grid.dkd.zscore_temperature")?;
        }
        Ok(grid)
    }

    /// `[grid.dist]`: β, γ and τ; defaults β = γ = [2], τ = [4] (DIST's CIFAR settings: CE + 2·τ²·
    /// (inter + intra)).
    fn dist(&self, t: Option<&RawDist>) -> Result<MethodGrid, ConfigError> {
        let mut grid = defaults(Method::Dist);
        grid.beta = vec![GridValue::of("2")];
        grid.gamma = vec![GridValue::of("2")];
        grid.temperature = vec![GridValue::of("4")];
        let Some(t) = t else { return Ok(grid) };
        if let Some(b) = &t.beta {
            grid.beta = self.weights(b, "grid.dist.beta")?;
        }
        if let Some(g) = &t.gamma {
            grid.gamma = self.weights(g, "grid.dist.gamma")?;
        }
        if let Some(x) = &t.temperature {
            grid.temperature = self.temperatures(x, "grid.dist.temperature")?;
        }
        Ok(grid)
    }

    /// `[grid.multi_t]`: sets of at least two temperatures (default [[2, 3, 4, 5, 6]], MLKD's) and α
    /// (default: `[grid] alpha`).
    fn multi_t(
        &self,
        t: Option<&RawMultiT>,
        alphas: &[GridValue],
    ) -> Result<MethodGrid, ConfigError> {
        let mut grid = defaults(Method::MultiT);
        grid.alpha = alphas.to_vec();
        grid.temperatures = vec![["2", "3", "4", "5", "6"].map(GridValue::of).to_vec()];
        let Some(t) = t else { return Ok(grid) };
        if let Some(a) = &t.alpha {
            grid.alpha = self.alphas(a, "grid.multi_t.alpha")?;
        }
        if let Some(sets) = &t.temperatures {
            let key = "grid.multi_t.temperatures";
            if sets.get_ref().is_empty() {
                return Err(self.at(
                    sets,
                    key,
                    "is empty; give sets of temperatures, e.g. [[2, 3, 4, 5, 6]]",
                ));
            }
            grid.temperatures = Vec::new();
            for set in sets.get_ref() {
                let values = self.temperatures(set, key)?;
                if values.len() < 2 {
                    return Err(self.at(
                        set,
                        key,
                        "a set needs at least two temperatures (one is plain logit KD)",
                    ));
                }
                grid.temperatures.push(values);
            }
        }
        Ok(grid)
    }

    /// `[grid.ctkd]`: α (default: `[grid] alpha`), the learned temperature's range T_min + T_range·
    /// sigmoid(θ) (default 1 + 20·sigmoid) and λ's ramp (default 10 epochs), CTKD's settings.
    fn ctkd(
        &self,
        t: Option<&RawCtkd>,
        alphas: &[GridValue],
        fixed: &mut Fixed,
    ) -> Result<MethodGrid, ConfigError> {
        let mut grid = defaults(Method::Ctkd);
        grid.alpha = alphas.to_vec();
        let Some(t) = t else { return Ok(grid) };
        if let Some(a) = &t.alpha {
            grid.alpha = self.alphas(a, "grid.ctkd.alpha")?;
        }
        for (raw, key, into) in [
            (&t.t_min, "grid.ctkd.t_min", &mut fixed.ctkd_t_min),
            (&t.t_range, "grid.ctkd.t_range", &mut fixed.ctkd_t_range),
        ] {
            if let Some(v) = raw {
                let x = *v.get_ref();
                if !(x.is_finite() && x > 0.0) {
                    return Err(self.at(v, key, &format!("must be a finite number > 0, got {x}")));
                }
                *into = x;
            }
        }
        if let Some(r) = &t.ramp_epochs {
            fixed.ctkd_ramp =
                self.positive(r, "grid.ctkd.ramp_epochs", "epochs over which λ ramps in")?;
        }
        Ok(grid)
    }
}

const ZSCORE_ONLY: &str =
    "gives the temperatures of z-scored cells; add \"zscore\" to logit_norm, or leave it out";

/// A method's grid with no values yet.
fn defaults(method: Method) -> MethodGrid {
    MethodGrid {
        method,
        temperature: Vec::new(),
        alpha: Vec::new(),
        beta: Vec::new(),
        gamma: Vec::new(),
        temperatures: Vec::new(),
        logit_norm: vec![false],
        zscore_temperature: Vec::new(),
    }
}

/// `[grid] logit_norm` and `zscore_temperature` for logit KD: (plain and/or z-scored, the
/// z-scored cells' temperatures).
impl Validator<'_> {
    pub(super) fn logit_grid(
        &self,
        g: &RawGrid,
        methods: &[Method],
    ) -> Result<(Vec<bool>, Vec<GridValue>), ConfigError> {
        let norm = self.logit_norm(&g.logit_norm, "grid.logit_norm")?;
        if let (Some(list), false) = (&g.logit_norm, methods.contains(&Method::Logit)) {
            return Err(self.at(list, "grid.logit_norm", "applies to logit KD, which is not in [grid] method (DKD's is [grid.dkd] logit_norm)"));
        }
        let temps = match &g.zscore_temperature {
            None => Vec::new(),
            Some(z) if !norm.contains(&true) => {
                return Err(self.at(z, "grid.zscore_temperature", ZSCORE_ONLY))
            }
            Some(z) => self.temperatures(z, "grid.zscore_temperature")?,
        };
        Ok((norm, temps))
    }
}

impl Validator<'_> {
    /// `[grid] teacher_epoch`: epochs of the teacher's training (each ≥ 1, at most its `epochs`, once
    /// each) whose weights the students distil from.
    pub(super) fn teacher_epochs(
        &self,
        axis: &Spanned<Vec<Spanned<i64>>>,
        teacher_epochs: u32,
    ) -> Result<Vec<u32>, ConfigError> {
        let key = "grid.teacher_epoch";
        if axis.get_ref().is_empty() {
            return Err(self.at(
                axis,
                key,
                "is empty; list the teacher's epochs to distil from (e.g. [10, 30, 60]), or leave the \
                 key out to distil from the trained teacher",
            ));
        }
        if teacher_epochs == 0 {
            return Err(self.at(
                axis,
                key,
                "needs a teacher that trains here: with [teacher] epochs = 0 the teacher is used as \
                 loaded and has no epochs to take snapshots of",
            ));
        }
        let mut seen = Vec::new();
        for e in axis.get_ref() {
            let v = *e.get_ref();
            if v < 1 || v > teacher_epochs as i64 {
                return Err(self.at(
                    e,
                    key,
                    &format!(
                        "{v} is not an epoch of the teacher's training; [teacher] epochs = \
                         {teacher_epochs}, so each value is a whole number from 1 to {teacher_epochs}"
                    ),
                ));
            }
            if seen.contains(&(v as u32)) {
                return Err(self.at(e, key, &format!("{v} appears twice; list each epoch once")));
            }
            seen.push(v as u32);
        }
        Ok(seen)
    }
}

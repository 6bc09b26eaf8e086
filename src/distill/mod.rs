//! Distillation methods. One method is one entry of [`Method`]: its name, the hyper-parameters it
//! takes (grid axes, [`Method::axes`]), what it needs from the teacher ([`Method::needs`]), and its
//! loss ([`Distiller::loss`], written in [`losses`]). Where the teacher's signal comes from (cached
//! rows, or the teacher's forward pass in the step) is the training loop's business, kept apart.
//!
//! A student's grid coordinate is one typed value, [`Coord`]: method, hyper-parameters and student
//! model. Plan, records, search cells and report cells all use it; run ids, keys and CSV cells are
//! generated from it ([`Coord::id_part`], [`Coord::key_fields`]) and never parsed back.
//!
//! A new method touches two files under src/: its loss in `losses.rs`, and its entry here (a
//! variant with its name, title and loss text, its [`Table`] — the `[grid.<name>]` keys with their
//! rules and defaults, and the key field of its settings — and the arm of [`Distiller::loss`]) —
//! plus its test. Run ids and keys are generated from the [`Coord`] (`coord.rs`) for any method. The sweep file's reader checks a `[grid.<name>]` table
//! against the declared [`Table`] alone and knows no method by name; reports, CSVs and charts work
//! from the [`Coord`]. Only a new *kind* of axis (beyond T, α, β, γ and temperature sets) reaches
//! further: the coordinate's field, the record's and the CSV's column.

mod coord;
pub mod losses;
mod table;

pub use coord::{Coord, GridValue};

pub use table::{Key, KeyKind, Rule, Table, Values};

use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

/// How a student learns from its teacher.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Hinton's logit KD: (1 − α)·CE + α·T²·KL(softmax(t/T) ‖ softmax(s/T)).
    #[default]
    Logit,
    /// FitNets-style hint: (1 − α)·CE + α·MSE(regressor(f_s), f_t).
    Feature,
    /// Black-box: (1 − α)·CE + α·CE(s, arg max t).
    Imitation,
    /// Decoupled KD (Zhao et al. 2022): CE + w(e)·(α·TCKD + β·NCKD), each KL × T², w ramping in.
    Dkd,
    /// DIST (Huang et al. 2022): CE + β·τ²·(1 − ρ_inter) + γ·τ²·(1 − ρ_intra).
    Dist,
    /// Multi-temperature KD (MLKD's multi-T term): (1 − α)·CE + α·mean over a set of T of T²·KL_T
    /// (MLKD sums over its set: α = 45/46 is its weighting of five; README, "Against the authors'
    /// code").
    MultiT,
    /// Curriculum temperature KD (Li et al. 2023), global: logit KD with a learned T, trained
    /// adversarially through gradient reversal with a cosine-ramped λ.
    Ctkd,
    /// Transformed teacher matching (Zheng & Yang 2024): CE + β·KL(softmax(t/T) ‖ softmax(s)), the
    /// temperature on the teacher's side only.
    Ttm,
}

/// What a method needs from the teacher in each step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Nothing (teachers and baselines train on the labels alone).
    Nothing,
    Logits,
    /// The teacher's predicted class.
    Labels,
    /// The teacher's last feature map.
    Features,
}

/// A hyper-parameter a method sweeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    Temperature,
    Alpha,
    Beta,
    Gamma,
    /// A set of temperatures (one cell per set).
    Temperatures,
}

impl Method {
    /// Every method, in the order reports list them. `every_method_is_listed` fails for one missing.
    pub const ALL: [Method; 8] = [
        Method::Logit,
        Method::Dkd,
        Method::Dist,
        Method::MultiT,
        Method::Ctkd,
        Method::Ttm,
        Method::Feature,
        Method::Imitation,
    ];

    pub const NAMES: &'static str =
        "\"logit\", \"dkd\", \"dist\", \"multi-t\", \"ctkd\", \"ttm\", \"feature\" or \"imitation\"";

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == s)
    }

    /// Position in reports (index in [`Method::ALL`]).
    pub fn rank(self) -> usize {
        Self::ALL
            .iter()
            .position(|m| *m == self)
            .unwrap_or(usize::MAX)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Logit => "logit",
            Self::Feature => "feature",
            Self::Imitation => "imitation",
            Self::Dkd => "dkd",
            Self::Dist => "dist",
            Self::MultiT => "multi-t",
            Self::Ctkd => "ctkd",
            Self::Ttm => "ttm",
        }
    }

    /// The `[grid.<name>]` table that holds this method's axes and settings, its keys declared in
    /// [`Table`] (the logit, feature and imitation methods take theirs from `[grid]`). The config
    /// reads every table from these declarations alone.
    pub fn table(self) -> Option<&'static Table> {
        match self {
            Self::Logit | Self::Feature | Self::Imitation => None,
            Self::Dkd => Some(&DKD_TABLE),
            Self::Dist => Some(&DIST_TABLE),
            Self::MultiT => Some(&MULTI_T_TABLE),
            Self::Ctkd => Some(&CTKD_TABLE),
            Self::Ttm => Some(&TTM_TABLE),
        }
    }

    /// The method's name in prose, for captions: "DKD", "Multi-temperature KD".
    pub fn title(self) -> &'static str {
        match self {
            Self::Logit => "Logit KD",
            Self::Feature => "Feature KD",
            Self::Imitation => "Imitation KD",
            Self::Dkd => "DKD",
            Self::Dist => "DIST",
            Self::MultiT => "Multi-temperature KD",
            Self::Ctkd => "CTKD",
            Self::Ttm => "TTM",
        }
    }

    /// The loss in one line, for `--help`, `plan` and the README.
    pub fn loss_text(self) -> &'static str {
        match self {
            Self::Logit => "(1 − α)·CE(s, y) + α·T²·KL(softmax(t/T) ‖ softmax(s/T))",
            Self::Feature => "(1 − α)·CE(s, y) + α·MSE(r(f_s), f_t), r a learned 1×1 convolution",
            Self::Imitation => "(1 − α)·CE(s, y) + α·CE(s, arg max t)",
            Self::Dkd => {
                "CE(s, y) + min(epoch/warmup, 1)·(α·T²·KL(b_t ‖ b_s) + β·T²·KL(q_t ‖ q_s)): b target vs \
                 the rest, q over the non-target classes"
            }
            Self::Dist => {
                "CE(s, y) + β·τ²·(1 − mean Pearson over samples) + γ·τ²·(1 − mean Pearson over \
                 classes) of softmax(s/τ), softmax(t/τ)"
            }
            Self::MultiT => "(1 − α)·CE(s, y) + α·mean over T in the set of T²·KL_T",
            Self::Ctkd => {
                "(1 − α)·CE(s, y) + α·T²·KL_T with T = T_min + T_range·sigmoid(θ) learned through \
                 gradient reversal (λ ramped in over ramp_epochs by a cosine)"
            }
            Self::Ttm => "CE(s, y) + β·KL(softmax(t/T) ‖ softmax(s)): T on the teacher only, no T²",
        }
    }

    /// Whether the method's α is logit KD's: the share of the distillation term against the
    /// cross-entropy (logit, feature, imitation, multi-t, CTKD). DKD's α weighs one of its own terms;
    /// DIST and TTM have none.
    pub fn alpha_is_mix(self) -> bool {
        match self.table() {
            None => true,
            Some(t) => t.keys.iter().any(|k| {
                matches!(
                    k.kind,
                    KeyKind::Axis {
                        axis: Axis::Alpha,
                        rule: Rule::Fraction,
                        ..
                    }
                )
            }),
        }
    }

    /// Whether the method takes `[grid] alpha`: a method without a table always, one with a table
    /// when an axis of it defaults to `[grid] alpha` and `written` (a key's name in the table) says
    /// that key is not written there.
    pub fn takes_grid_alpha(self, written: impl Fn(&str) -> bool) -> bool {
        match self.table() {
            None => true,
            Some(t) => t.keys.iter().any(|k| {
                matches!(
                    k.kind,
                    KeyKind::Axis {
                        default: Values::GridAlpha,
                        ..
                    }
                ) && !written(k.name)
            }),
        }
    }

    pub fn is_logit(&self) -> bool {
        *self == Self::Logit
    }

    /// The hyper-parameters this method sweeps, in the order its cells vary (the last fastest): a
    /// table's axes in its keys' order.
    pub fn axes(self) -> Vec<Axis> {
        match (self, self.table()) {
            (_, Some(table)) => table.axes().collect(),
            (Self::Logit, None) => vec![Axis::Temperature, Axis::Alpha],
            (_, None) => vec![Axis::Alpha],
        }
    }

    /// Whether a temperature (one value) is one of this method's axes.
    pub fn uses_temperature(self) -> bool {
        self.axes().contains(&Axis::Temperature)
    }

    pub fn needs(self) -> Needs {
        match self {
            Self::Feature => Needs::Features,
            Self::Imitation => Needs::Labels,
            _ => Needs::Logits,
        }
    }

    /// Whether the method's logits may be z-scored first (logit standardisation).
    pub fn standardizable(self) -> bool {
        matches!(self, Self::Logit | Self::Dkd)
    }

    /// Whether a seed's students of this method can train as one fused model.
    pub fn fusable(self) -> bool {
        self == Self::Logit
    }
}

/// `[grid.dkd]`: α (TCKD's weight), β (NCKD's), T, default α = 1, β = 8, T = 4 and a warm-up of 20
/// epochs (mdistiller's CIFAR-100 settings); logit standardisation.
static DKD_TABLE: Table = Table {
    name: "dkd",
    keys: &[
        Key::axis("alpha", Axis::Alpha, Rule::Weight, Values::Of(&["1"])),
        Key::axis("beta", Axis::Beta, Rule::Weight, Values::Of(&["8"])),
        Key::axis(
            "temperature",
            Axis::Temperature,
            Rule::Temperature,
            Values::Of(&["4"]),
        ),
        Key {
            name: "warmup",
            kind: KeyKind::Epochs {
                what: "epochs over which the KD terms ramp in",
                set: |f, v| f.dkd_warmup = v,
            },
        },
        Key {
            name: "logit_norm",
            kind: KeyKind::LogitNorm,
        },
        Key {
            name: "zscore_temperature",
            kind: KeyKind::ZscoreTemperature,
        },
    ],
    settings_key: Some(("warmup", |f| serde_json::json!(f.dkd_warmup))),
};

/// `[grid.dist]`: β and γ (the inter- and intra-class relations' weights) and τ, default β = γ = 2,
/// τ = 4 (DIST's CIFAR settings).
static DIST_TABLE: Table = Table {
    name: "dist",
    keys: &[
        Key::axis("beta", Axis::Beta, Rule::Weight, Values::Of(&["2"])),
        Key::axis("gamma", Axis::Gamma, Rule::Weight, Values::Of(&["2"])),
        Key::axis(
            "temperature",
            Axis::Temperature,
            Rule::Temperature,
            Values::Of(&["4"]),
        ),
    ],
    settings_key: None,
};

/// `[grid.multi_t]`: sets of temperatures (one cell per set, default MLKD's {2, 3, 4, 5, 6}) and α
/// (default `[grid] alpha`).
static MULTI_T_TABLE: Table = Table {
    name: "multi_t",
    keys: &[
        Key::axis(
            "temperatures",
            Axis::Temperatures,
            Rule::TemperatureSets,
            Values::Sets(&[&["2", "3", "4", "5", "6"]]),
        ),
        Key::axis("alpha", Axis::Alpha, Rule::Fraction, Values::GridAlpha),
    ],
    settings_key: None,
};

/// `[grid.ctkd]`: α (default `[grid] alpha`), the learned temperature's range T_min + T_range·
/// sigmoid(θ) (default 1 + 20·sigmoid) and λ's ramp (default 10 epochs), CTKD's settings.
static CTKD_TABLE: Table = Table {
    name: "ctkd",
    keys: &[
        Key::axis("alpha", Axis::Alpha, Rule::Fraction, Values::GridAlpha),
        Key {
            name: "t_min",
            kind: KeyKind::Positive {
                set: |f, v| f.ctkd_t_min = v,
            },
        },
        Key {
            name: "t_range",
            kind: KeyKind::Positive {
                set: |f, v| f.ctkd_t_range = v,
            },
        },
        Key {
            name: "ramp_epochs",
            kind: KeyKind::Epochs {
                what: "epochs over which λ ramps in",
                set: |f, v| f.ctkd_ramp = v,
            },
        },
    ],
    settings_key: Some(("ctkd", |f| {
        serde_json::json!([f.ctkd_t_min, f.ctkd_t_range, f.ctkd_ramp])
    })),
};

/// `[grid.ttm]`: β and T (the teacher's temperature, γ = 1/T in the paper's power transform), default
/// β = 45, T = 10 (γ = 0.1: the TTM repository's example, vgg13 → vgg8 on CIFAR-100).
static TTM_TABLE: Table = Table {
    name: "ttm",
    keys: &[
        Key::axis("beta", Axis::Beta, Rule::Weight, Values::Of(&["45"])),
        Key::axis(
            "temperature",
            Axis::Temperature,
            Rule::Temperature,
            Values::Of(&["10"]),
        ),
    ],
    settings_key: None,
};

/// Settings of a method that are not grid axes (one value per sweep).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fixed {
    /// DKD: epochs over which the KD terms ramp in linearly (mdistiller: 20).
    pub dkd_warmup: u32,
    /// CTKD: T = t_min + t_range·sigmoid(θ), θ starting at 1.
    pub ctkd_t_min: f64,
    pub ctkd_t_range: f64,
    /// CTKD: epochs over which the reversed gradient's weight λ ramps from 0 to its full size.
    pub ctkd_ramp: u32,
}

impl Default for Fixed {
    fn default() -> Fixed {
        Fixed {
            dkd_warmup: 20,
            ctkd_t_min: 1.0,
            ctkd_t_range: 20.0,
            ctkd_ramp: 10,
        }
    }
}

/// What the teacher gives a step, as the method needs it.
pub enum TeacherOut {
    None,
    Logits(Tensor),
    Labels(Tensor),
    Features(Tensor),
}

/// A method's parameters of its own, trained with the student (built in the student's var store).
enum Extra {
    None,
    /// The feature method's 1×1 regressor from the student's channels to the teacher's.
    Regressor(nn::Conv2D),
    /// CTKD's θ.
    Theta(Tensor),
}

/// A method ready to train one student: its coordinate, the sweep's fixed settings and its own
/// parameters.
pub struct Distiller {
    coord: Coord,
    fixed: Fixed,
    extra: Extra,
    /// Epochs of the run (for schedules within it).
    epochs: u32,
    /// ε of every cross-entropy term (the role's `label_smoothing`).
    label_smoothing: f64,
}

impl Distiller {
    /// Plain cross-entropy (teachers and baselines).
    pub fn none() -> Distiller {
        Distiller {
            coord: Coord::of(Method::Logit),
            fixed: Fixed::default(),
            extra: Extra::None,
            epochs: 1,
            label_smoothing: 0.0,
        }
    }

    pub fn new(coord: &Coord, fixed: &Fixed, epochs: u32) -> Distiller {
        Distiller {
            coord: coord.clone(),
            fixed: fixed.clone(),
            extra: Extra::None,
            epochs,
            label_smoothing: 0.0,
        }
    }

    /// The same method with the cross-entropy terms label-smoothed by ε (the role's
    /// `label_smoothing`; `nn.CrossEntropyLoss(label_smoothing=ε)`).
    pub fn with_label_smoothing(self, label_smoothing: f64) -> Distiller {
        Distiller {
            label_smoothing,
            ..self
        }
    }

    pub fn label_smoothing(&self) -> f64 {
        self.label_smoothing
    }

    pub fn coord(&self) -> &Coord {
        &self.coord
    }

    /// What this run needs from its teacher in each step (a baseline: nothing).
    pub fn needs(&self) -> Needs {
        if self.is_plain() {
            Needs::Nothing
        } else {
            self.coord.method.needs()
        }
    }

    /// No teacher term: α = 0 of the methods weighted by α, which are plain cross-entropy then (as
    /// teachers and baselines).
    fn is_plain(&self) -> bool {
        let weighted = matches!(
            self.coord.method,
            Method::Logit | Method::Feature | Method::Imitation | Method::MultiT | Method::Ctkd
        );
        weighted && self.coord.alpha_value() == 0.0
    }

    /// Builds the method's own parameters in `p` (the student's var store, from a random stream of
    /// their own): the feature method's regressor from `channels` = (student's, teacher's), CTKD's θ.
    pub fn build(&mut self, p: &nn::Path, channels: (i64, i64), init: crate::model::Init) {
        self.extra = match self.coord.method {
            Method::Feature if !self.is_plain() => {
                let (s, t) = channels;
                Extra::Regressor(nn::conv2d(p / "regressor", s, t, 1, init.conv(s, 1, 0)))
            }
            Method::Ctkd if !self.is_plain() => {
                Extra::Theta(p.var("ctkd_theta", &[1], nn::Init::Const(1.0)))
            }
            _ => Extra::None,
        };
    }

    /// Whether the loss takes the student's feature map (the step then computes it apart from the
    /// logits).
    pub fn takes_features(&self) -> bool {
        matches!(self.extra, Extra::Regressor(_))
    }

    /// CTKD's temperature now (for the epoch's record); `None` for the other methods.
    pub fn learned_temperature(&self) -> Option<f64> {
        let _guard = tch::no_grad_guard();
        match &self.extra {
            Extra::Theta(theta) => Some(self.ctkd_temperature(theta, 1).double_value(&[0])),
            _ => None,
        }
    }

    /// T = t_min + t_range·sigmoid(GRL(θ, λ(epoch))).
    fn ctkd_temperature(&self, theta: &Tensor, epoch: u32) -> Tensor {
        let f = &self.fixed;
        let lambda = losses::ctkd_lambda(epoch, f.ctkd_ramp);
        let reversed = losses::gradient_reversal(theta, lambda);
        reversed.sigmoid() * f.ctkd_t_range + f.ctkd_t_min
    }

    /// The loss of a step: the student's `logits` (and its feature map when
    /// [`Distiller::takes_features`]), what the teacher gave, the labels, the epoch (1-based).
    pub fn loss(
        &self,
        logits: &Tensor,
        features: Option<&Tensor>,
        teacher: &TeacherOut,
        labels: &Tensor,
        epoch: u32,
    ) -> Tensor {
        let c = &self.coord;
        let (t, a) = (c.temperature_value(), c.alpha_value());
        let eps = self.label_smoothing;
        if self.is_plain() {
            return losses::ce(logits, labels, eps);
        }
        if let (Method::Imitation, TeacherOut::Labels(tl)) = (c.method, teacher) {
            return losses::imitation(logits, (labels, tl), a, eps);
        }
        // created where each method's reference creates it (see losses.rs)
        let ce = || losses::ce(logits, labels, eps);
        let z = |x: &Tensor| {
            if c.zscore {
                losses::zscore(x)
            } else {
                x.shallow_clone()
            }
        };
        match (c.method, teacher) {
            (Method::Logit, TeacherOut::Logits(tl)) if !c.zscore => {
                losses::kd(ce, logits, tl, t, a)
            }
            (Method::Logit, TeacherOut::Logits(tl)) => {
                losses::kd_standardized(ce, logits, tl, t, a)
            }
            (Method::Feature, TeacherOut::Features(tf)) => {
                let ce = ce();
                let Extra::Regressor(r) = &self.extra else {
                    panic!("the feature method's regressor is built before training")
                };
                let f = features.expect("the feature method takes the student's feature map");
                let regressed = f.apply(r).to_kind(Kind::Float);
                let (s, t) = losses::same_size(regressed, tf.shallow_clone());
                losses::feature(ce, &s, &t, a)
            }
            (Method::Dkd, TeacherOut::Logits(tl)) => {
                let b = c.beta.as_ref().map_or(0.0, |g| g.value);
                let w = (epoch as f64 / self.fixed.dkd_warmup.max(1) as f64).min(1.0);
                losses::dkd(ce, (&z(logits), &z(tl)), labels, (a, b, t), w)
            }
            (Method::Dist, TeacherOut::Logits(tl)) => {
                let b = c.beta.as_ref().map_or(0.0, |g| g.value);
                let g = c.gamma.as_ref().map_or(0.0, |g| g.value);
                losses::dist(ce, logits, tl, (b, g, t))
            }
            (Method::MultiT, TeacherOut::Logits(tl)) => {
                let ts: Vec<f64> = c.temperatures.iter().map(|g| g.value).collect();
                losses::multi_t(ce, logits, tl, &ts, a)
            }
            (Method::Ctkd, TeacherOut::Logits(tl)) => {
                let Extra::Theta(theta) = &self.extra else {
                    panic!("CTKD's temperature is built before training")
                };
                let temp = self.ctkd_temperature(theta, epoch);
                losses::kd_tensor_temperature(ce, logits, tl, &temp, a)
            }
            (Method::Ttm, TeacherOut::Logits(tl)) => {
                let b = c.beta.as_ref().map_or(0.0, |g| g.value);
                losses::ttm(ce, logits, tl, (b, t))
            }
            (m, _) => panic!(
                "{}: the teacher gave another signal than it needs",
                m.name()
            ),
        }
    }

    /// Epochs of the run this distiller trains.
    pub fn epochs(&self) -> u32 {
        self.epochs
    }
}

#[cfg(test)]
mod tests;

//! The roles' tables: [teacher] and [student] as [`Phase`]s, their models (kd-sweep's networks or
//! TorchScript files run once to check they fit the sweep), and `[grid] student_model`.

use super::{ModelCheck, Validator};
use crate::config::raw::RawPhase;
use crate::config::{ConfigError, Phase};
use crate::train::optim::{Recipe, RecipeKeys};
use std::path::Path;
use toml::Spanned;

impl Validator<'_> {
    /// A model name (`key` for errors), checked against what the sweep does with it; `None` for the
    /// role's tutorial network `default`.
    pub(super) fn model(
        &self,
        name: &Spanned<String>,
        key: &str,
        default: crate::model::Arch,
        check: &ModelCheck,
    ) -> Result<Option<crate::model::Arch>, ConfigError> {
        let arch = self.arch(name, key, check)?;
        Ok((arch != default).then_some(arch))
    }
    /// A model name (`key` for errors): a kd-sweep network, or a TorchScript file (relative to the
    /// sweep file) that is run once on the dataset's image shape to check it fits the sweep.
    pub(super) fn arch(
        &self,
        name: &Spanned<String>,
        key: &str,
        check: &ModelCheck,
    ) -> Result<crate::model::Arch, ConfigError> {
        use crate::model::Init;
        let base = self.file.parent().unwrap_or(Path::new(""));
        let arch = crate::model::Arch::parse_in(name.get_ref(), base)
            .map_err(|why| self.at(name, key, &why))?;
        let fail = |why: String| Err(self.at(name, key, &why));
        match (arch.script(), check.init) {
            (None, Init::AsSaved) => {
                return fail(format!(
                    "is not a TorchScript file, and init = \"as-saved\" keeps a TorchScript \
                     file's weights; use init = \"pytorch\" (the default) for \"{}\"",
                    name.get_ref()
                ))
            }
            (Some(_), Init::Kaiming) => {
                return fail(
                    "is a TorchScript file: its init is \"pytorch\" (re-initialised by PyTorch's \
                     default rules for each seed, the default) or \"as-saved\" (the file's weights)"
                        .into(),
                )
            }
            _ => {}
        }
        let Some(script) = arch.script() else {
            return Ok(arch);
        };
        let probe = match script.probe(check.shape) {
            Ok(p) => p,
            Err(why) => return fail(why),
        };
        let want = vec![2, check.classes];
        if probe.logits != want {
            return fail(format!(
                "forward returns a {:?} tensor for 2 images of {}×{}×{}; the dataset has {} classes, \
                 so it must return [2, {}] (logits)",
                probe.logits,
                check.shape[0],
                check.shape[1],
                check.shape[2],
                check.classes,
                check.classes
            ));
        }
        if check.features && probe.features.is_none() {
            return fail(
                "exports no features(x) method (its last feature map), which grid.method = \
                 \"feature\" needs; mark it @torch.jit.export in the network before scripting it \
                 (a student also needs head(f), with head(features(x)) = forward(x))"
                    .into(),
            );
        }
        if let (true, Some(why)) = (check.channels_last, &probe.channels_last_error) {
            return fail(format!(
                "fails on channels-last inputs, which channels_last = true gives it ({why}); a \
                 .view() of a convolution's output needs .reshape() or .flatten() in the network \
                 before scripting it, or remove channels_last"
            ));
        }
        if check.features && check.student && !probe.head {
            return fail(
                "exports features(x) but no head(f) with head(features(x)) = forward(x), which a \
                 student needs for grid.method = \"feature\"; mark both @torch.jit.export in the \
                 network before scripting it"
                    .into(),
            );
        }
        Ok(arch)
    }
    /// A role's table ([teacher] or [student]) as its [`Phase`], every key checked; `None` when one
    /// is wrong (each problem kept). Its model is checked against the sweep when `check` is known;
    /// `in_grid`: the role's models are `[grid] student_model`'s list.
    pub(super) fn phase(
        &self,
        role: &str,
        raw: &RawPhase,
        default_threads: u32,
        (default_model, in_grid, check): (crate::model::Arch, bool, Option<ModelCheck>),
    ) -> Option<Phase> {
        let RawPhase {
            batch_size: batch,
            lr,
            init: raw_init,
            threads,
            model,
            ..
        } = raw;
        let placed = match (&raw.cache_teacher_logits, role) {
            (Some(c), "teacher") => self.keep(Err(self.at(
                c,
                "teacher.cache_teacher_logits",
                "is the students' setting (how they get the teacher's logits); put it in [student]",
            ))),
            _ => Some(()),
        };
        let threads = match threads {
            None => Some(default_threads),
            Some(t) => {
                let key = format!("{role}.threads");
                let what = "intra-op threads of a run";
                self.keep(self.positive_at_most(t, &key, what, super::MOST_THREADS))
            }
        };
        let init = self.keep(self.init(role, raw_init));
        let model = match (model, init, check) {
            (None, _, _) => Some(None),
            (Some(m), Some(init), Some(check)) => {
                let channels_last = super::on(&raw.channels_last);
                let check = ModelCheck {
                    init,
                    channels_last,
                    ..check
                };
                self.keep(self.model(m, &format!("{role}.model"), default_model, &check))
            }
            // the init or the sweep's data and methods are wrong: reported already
            _ => None,
        };
        if let (Some(None), Some(i), Some(crate::model::Init::AsSaved)) = (model, raw_init, init) {
            if !in_grid {
                self.keep::<()>(Err(self.at(
                    i,
                    &format!("{role}.init"),
                    "\"as-saved\" keeps a TorchScript file's weights, and this role's model is \
                     kd-sweep's tutorial network; set model = \"torchscript:<file>\" or another init",
                )));
            }
        }
        let lr_ok = self.keep(self.lr(role, lr));
        let epochs = self.keep(self.epochs(role, raw));
        let arch = model.map(|m| m.unwrap_or(default_model));
        let weights = self.keep(self.weights_file(role, raw, arch, check.as_ref()));
        let augment = self.keep(self.augment(role, &raw.augment));
        let precision = self.keep(self.precision(role, &raw.precision));
        let label_smoothing = self.keep(self.label_smoothing(role, &raw.label_smoothing));
        let recipe = match epochs {
            Some(0) => self.untrained(role, raw).map(|()| Default::default()),
            e => e.and_then(|e| self.keep(self.recipe(role, raw, e))),
        };
        let batch_size =
            self.keep(self.positive(batch, &format!("{role}.batch_size"), "images per step"));
        placed?;
        Some(Phase {
            augment: augment?,
            precision: precision?,
            channels_last: super::on(&raw.channels_last),
            label_smoothing: label_smoothing?,
            recipe: recipe?,
            epochs: epochs?,
            batch_size: batch_size?,
            lr: lr_ok?,
            init: init?,
            threads: threads?,
            model: model?,
            weights: weights?,
        })
    }
    /// A role's learning rate: finite and positive.
    fn lr(&self, role: &str, lr: &Spanned<f64>) -> Result<f64, ConfigError> {
        let v = *lr.get_ref();
        if v.is_finite() && v > 0.0 {
            return Ok(v);
        }
        Err(self.at(
            lr,
            &format!("{role}.lr"),
            &format!(
                "must be a finite number > 0 (the learning rate, e.g. 0.001 for Adam), got {v}"
            ),
        ))
    }

    /// A role's `precision`, fp32 when absent.
    fn precision(
        &self,
        role: &str,
        raw: &Option<Spanned<String>>,
    ) -> Result<crate::train::Precision, ConfigError> {
        match raw {
            None => Ok(crate::train::Precision::Fp32),
            Some(p) => crate::train::Precision::parse(p.get_ref())
                .map_err(|why| self.at(p, &format!("{role}.precision"), &why)),
        }
    }

    /// A role's `init` (`raw`), PyTorch's rule when absent.
    pub(super) fn init(
        &self,
        role: &str,
        raw: &Option<Spanned<String>>,
    ) -> Result<crate::model::Init, ConfigError> {
        let Some(i) = raw else {
            return Ok(crate::model::Init::default());
        };
        crate::model::Init::parse(i.get_ref()).ok_or_else(|| {
            self.at(
                i,
                &format!("{role}.init"),
                &format!(
                    "unknown initialisation \"{}\"; allowed: {} (PyTorch's default, \
                     Kaiming-uniform with the ReLU gain, or a TorchScript file's own weights)",
                    i.get_ref(),
                    crate::model::Init::NAMES
                ),
            )
        })
    }
    /// A role's `label_smoothing`: ε in [0, 1), 0 when absent.
    fn label_smoothing(&self, role: &str, raw: &Option<Spanned<f64>>) -> Result<f64, ConfigError> {
        let Some(e) = raw else { return Ok(0.0) };
        let v = *e.get_ref();
        if (0.0..1.0).contains(&v) {
            return Ok(v);
        }
        Err(self.at(
            e,
            &format!("{role}.label_smoothing"),
            &format!(
                "must be in [0, 1) (ε of PyTorch's CrossEntropyLoss(label_smoothing=ε): the target \
                 is (1 − ε)·one-hot + ε/classes; 0.1 is usual), got {v}"
            ),
        ))
    }
    /// A role's `augment` (`raw`), none when absent.
    fn augment(
        &self,
        role: &str,
        raw: &Option<Spanned<String>>,
    ) -> Result<crate::train::augment::Augment, ConfigError> {
        use crate::train::augment::Augment;
        let Some(a) = raw else {
            return Ok(Augment::None);
        };
        Augment::parse(a.get_ref()).ok_or_else(|| {
            self.at(
                a,
                &format!("{role}.augment"),
                &format!(
                    "unknown augmentation \"{}\"; allowed: {} (a random crop of the image's \
                     size after 4 pixels of padding, and a horizontal flip)",
                    a.get_ref(),
                    Augment::NAMES
                ),
            )
        })
    }
    /// `[grid] student_model`: each model once; empty when absent, or when the models cannot be
    /// checked (`check` is `None`: the dataset or the methods are wrong) after the list's own rules.
    pub(super) fn student_models(
        &self,
        raw: &Option<Spanned<Vec<Spanned<String>>>>,
        student: &RawPhase,
        check: Option<&ModelCheck>,
    ) -> Result<Vec<crate::model::Arch>, ConfigError> {
        let Some(list) = raw else {
            return Ok(Vec::new());
        };
        let key = "grid.student_model";
        if list.get_ref().is_empty() {
            return Err(self.at(
                list,
                key,
                "is empty; give at least one model, e.g. [\"tutorial-student\", \"resnet8\"]",
            ));
        }
        if let Some(m) = &student.model {
            return Err(self.at(m, "student.model", "is set, and so is [grid] student_model: give the students' model in one place (the grid's list takes the place of [student] model)"));
        }
        let Some(check) = check else {
            return Ok(Vec::new());
        };
        let mut models = Vec::new();
        for m in list.get_ref() {
            let arch = self.arch(m, key, check)?;
            if models.contains(&arch) {
                return Err(self.at(
                    m,
                    key,
                    &format!("\"{}\" appears twice; list each model once", m.get_ref()),
                ));
            }
            models.push(arch);
        }
        Ok(models)
    }

    /// A role's optimizer and schedule, by the optimizer's own rules ([`Recipe::from_keys`]); a
    /// problem points at its key (or the list element) in the file.
    fn recipe(&self, role: &str, k: &RawPhase, epochs: u32) -> Result<Recipe, ConfigError> {
        let milestones: Option<Vec<i64>> = k
            .milestones
            .as_ref()
            .map(|m| m.get_ref().iter().map(|v| *v.get_ref()).collect());
        let keys = RecipeKeys {
            optimizer: k.optimizer.as_ref().map(|v| v.get_ref().as_str()),
            momentum: k.momentum.as_ref().map(|v| *v.get_ref()),
            nesterov: k.nesterov.as_ref().map(|v| *v.get_ref()),
            weight_decay: k.weight_decay.as_ref().map(|v| *v.get_ref()),
            schedule: k.schedule.as_ref().map(|v| v.get_ref().as_str()),
            milestones: milestones.as_deref(),
            gamma: k.gamma.as_ref().map(|v| *v.get_ref()),
            warmup_epochs: k.warmup_epochs.as_ref().map(|v| *v.get_ref()),
        };
        Recipe::from_keys(&keys, epochs).map_err(|p| {
            let span = match p.key {
                "optimizer" => k.optimizer.as_ref().map(|v| v.span()),
                "momentum" => k.momentum.as_ref().map(|v| v.span()),
                "nesterov" => k.nesterov.as_ref().map(|v| v.span()),
                "weight_decay" => k.weight_decay.as_ref().map(|v| v.span()),
                "schedule" => k.schedule.as_ref().map(|v| v.span()),
                "milestones" => k.milestones.as_ref().map(|m| match p.element {
                    Some(i) => m.get_ref()[i].span(),
                    None => m.span(),
                }),
                "gamma" => k.gamma.as_ref().map(|v| v.span()),
                "warmup_epochs" => k.warmup_epochs.as_ref().map(|v| v.span()),
                _ => None,
            };
            self.err(span, Some(&format!("{role}.{}", p.key)), &p.message)
        })
    }
}

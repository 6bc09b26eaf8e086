//! Stage 2: the grid becomes runs. Per seed: one teacher, one baseline student (α = 0, no teacher), and
//! per method one student per (T, α) for logit distillation, or per α for the methods without a
//! temperature (feature, imitation), each depending on its seed's teacher. Every run has a content key, a hash of
//! everything that determines its numbers, so records and cached teachers are reused exactly when valid.

pub mod search;

use crate::config::{Phase, Sweep};
use crate::distill::{Coord, Method};
use crate::model::{teacher_version, Arch, MODEL_VERSION};
use crate::platform::numerics::Numerics;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use crate::record::Role;

/// One training run of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// Readable and unique within a sweep: `teacher-s0`, `baseline-s0`, `student-T4-a0.5-s0`.
    pub id: String,
    pub role: Role,
    pub seed: u64,
    /// Hash of everything that determines this run's numbers (hex SHA-256).
    pub key: String,
    /// The teacher this run distils from: its index in [`Plan::runs`].
    pub teacher: Option<usize>,
    /// A baseline's seed's teacher (its index): not learned from, but the run is measured against it
    /// (agreement, KL), so it is scheduled after it — and runs even when that teacher failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<usize>,
    /// What the run is in the grid: a student's method and hyper-parameters; for every run its
    /// network when it is not its role's tutorial one (teachers and baselines: plain logit with no
    /// values).
    #[serde(flatten)]
    pub coord: Coord,
    /// A student's teacher's network when it is not the tutorial teacher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher_model: Option<Arch>,
    /// The CPU kernels the run computes with (the sweep's effective mode; see [`crate::platform::numerics`]).
    #[serde(
        default = "crate::platform::numerics::Numerics::native",
        skip_serializing_if = "Numerics::is_native"
    )]
    pub numerics: Numerics,
    /// GPU determinism asked for (`[schedule] deterministic`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deterministic: bool,
    /// GPU steps as CUDA graphs asked for (`[schedule] cuda_graphs`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cuda_graphs: bool,
    /// A teacher's snapshots (`[grid] teacher_epoch`): after which epochs its weights are cached,
    /// and the cache key of each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub snapshots: Vec<Snapshot>,
}

/// A teacher's weights after `epoch`, cached under `key` like a trained teacher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub epoch: u32,
    pub key: String,
}

impl RunSpec {
    pub fn phase<'a>(&self, sweep: &'a Sweep) -> &'a Phase {
        match self.role {
            Role::Teacher => &sweep.teacher,
            _ => &sweep.student,
        }
    }

    /// The network this run trains (the one place that maps a run to its model).
    pub fn arch(&self) -> Arch {
        self.coord.model.unwrap_or(match self.role {
            Role::Teacher => Arch::Teacher,
            Role::Baseline | Role::Student => Arch::Student,
        })
    }

    /// The network of the teacher a student learns from (the tutorial teacher unless the sweep says
    /// otherwise); `None` for teachers and baselines.
    pub fn teacher_arch(&self) -> Option<Arch> {
        (self.role == Role::Student).then(|| self.teacher_model.unwrap_or(Arch::Teacher))
    }

    /// The random stream the run draws its initial weights, dropout masks and batches from.
    pub fn stream(&self) -> &'static str {
        match self.role {
            Role::Teacher => crate::train::TEACHER_STREAM,
            Role::Baseline | Role::Student => crate::train::STUDENT_STREAM,
        }
    }

    /// A teacher's snapshot after `epoch` (`[grid] teacher_epoch`).
    pub fn snapshot(&self, epoch: u32) -> Option<&Snapshot> {
        self.snapshots.iter().find(|s| s.epoch == epoch)
    }

    /// The distillation method of a student (logit for teachers and baselines).
    pub fn method(&self) -> Method {
        self.coord.method
    }

    /// T of a student; 1 for runs without one.
    pub fn temperature_value(&self) -> f64 {
        self.coord.temperature_value()
    }

    /// α of a student; 0 (plain cross-entropy) for runs without one.
    pub fn alpha_value(&self) -> f64 {
        self.coord.alpha_value()
    }
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub runs: Vec<RunSpec>,
}

impl Plan {
    pub fn teachers(&self) -> impl Iterator<Item = &RunSpec> {
        self.runs.iter().filter(|r| r.role == Role::Teacher)
    }

    /// What run `i` distils from: its teacher's run, or — for a `[grid] teacher_epoch` cell — that
    /// teacher as its snapshot (the snapshot's cache key in place of the teacher's), so that
    /// everything that finds a teacher by its key finds the snapshot.
    pub fn teacher_of(&self, i: usize) -> Option<RunSpec> {
        let run = &self.runs[i];
        let teacher = &self.runs[run.teacher?];
        let Some(e) = run.coord.teacher_epoch else {
            return Some(teacher.clone());
        };
        let snapshot = teacher.snapshot(e)?;
        Some(RunSpec {
            id: format!("{}-epoch{e}", teacher.id),
            key: snapshot.key.clone(),
            snapshots: Vec::new(),
            ..teacher.clone()
        })
    }
}

/// What every run's key holds about how its numbers are computed, beside its own settings: the
/// numerics mode when portable and determinism when asked for. Native numerics without determinism
/// adds nothing, so every key written before these settings existed is a native key still.
fn how_computed(sweep: &Sweep, key: &mut serde_json::Value) {
    if !sweep.schedule.numerics.is_native() {
        key["numerics"] = sweep.schedule.numerics.name().into();
    }
    if sweep.schedule.deterministic {
        key["deterministic"] = true.into();
    }
    if sweep.schedule.cuda_graphs {
        key["cuda_graphs"] = true.into();
    }
}

fn key_of(value: &serde_json::Value) -> String {
    let mut value = value.clone();
    content_addressed(&mut value);
    crate::util::hex(&Sha256::digest(value.to_string().as_bytes()))
}

/// Puts a TorchScript model's content hash in place of its path and hash, so that moving the file
/// keeps its runs' keys and changing it does not.
fn content_addressed(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => {
            if let Some(script) = crate::model::script::Script::deserialize(s) {
                *s = format!("{}sha256:{}", crate::model::script::PREFIX, script.sha256);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(content_addressed),
        serde_json::Value::Object(map) => map.values_mut().for_each(content_addressed),
        _ => {}
    }
}

/// Expands the sweep into runs; `data_fingerprint` identifies the dataset files.
pub fn build(sweep: &Sweep, data_fingerprint: &str) -> Plan {
    build_at_version(sweep, data_fingerprint, MODEL_VERSION)
}

/// The students' networks: one (the [student] model), or the grid's student_model axis, whose runs'
/// ids then name their model — (model, the tag before the cell in run ids).
fn student_models(sweep: &Sweep) -> Vec<(Option<Arch>, String)> {
    if sweep.student_models.is_empty() {
        vec![(sweep.student.model, String::new())]
    } else {
        sweep
            .student_models
            .iter()
            .map(|&m| ((m != Arch::Student).then_some(m), format!("{}-", m.name())))
            .collect()
    }
}

/// A teacher's key: what it is trained on and how, at model version `model_version`.
fn teacher_key(
    sweep: &Sweep,
    data_fingerprint: &str,
    model_version: u32,
    seed: u64,
) -> serde_json::Value {
    let d = &sweep.data;
    let mut key = serde_json::json!({
        "kind": "teacher",
        "model_version": model_version,
        "dataset": d.dataset.name(),
        "data": data_fingerprint,
        "validation": d.validation,
        "train_subset": d.train_subset,
        "test_subset": d.test_subset,
        "split_seed": d.split_seed,
        "phase": sweep.teacher,
        "seed": seed,
    });
    if sweep.teacher.epochs == 0 {
        key["phase"] = as_loaded_phase(&sweep.teacher);
    }
    data_options(d, &mut key);
    how_computed(sweep, &mut key);
    key
}

/// What the data settings add to a key beyond the split, only when given, so that every key of a
/// sweep without them stays as it was: the given normalisation and a folder dataset's image size.
fn data_options(d: &crate::config::DataConfig, key: &mut serde_json::Value) {
    if let Some(n) = &d.normalize {
        key["normalize"] = serde_json::json!({ "mean": n.mean, "std": n.std });
    }
    if let Some(size) = d.image_size {
        key["image_size"] = serde_json::json!(size);
    }
}

/// A teacher used as it is (epochs = 0) in its key: only what its numbers depend on — its network,
/// its weights' content (not their path) and its thread count; lr and batch_size are not used, and
/// its init is a TorchScript file's own weights or none.
fn as_loaded_phase(p: &Phase) -> serde_json::Value {
    serde_json::json!({
        "epochs": 0,
        "threads": p.threads,
        "model": p.model,
        "weights": p.weights.as_ref().map(|w| format!("sha256:{}", w.sha256)),
    })
}

/// A teacher's snapshots (`[grid] teacher_epoch`), given its key as computed without them. A
/// snapshot's key is that of the teacher's training (whatever other snapshots it takes) and its epoch;
/// the teacher's own key then names the snapshots it must leave, so adding one to the list trains the
/// teacher again while the snapshots it had keep their keys (and so their students).
fn snapshots_of(sweep: &Sweep, teacher_key: &mut serde_json::Value) -> Vec<Snapshot> {
    let training = key_of(teacher_key);
    let snapshots: Vec<Snapshot> = (sweep.teacher_epochs.iter())
        .map(|&epoch| Snapshot {
            epoch,
            key: key_of(&serde_json::json!({"snapshot_of": training, "epoch": epoch})),
        })
        .collect();
    if !snapshots.is_empty() {
        teacher_key["snapshots"] = serde_json::json!(sweep.teacher_epochs);
    }
    snapshots
}

/// A seed's teacher's key and its snapshots', as keyed at `model_version`. The teacher's own are
/// those at [`crate::model::teacher_version`]; its students name it by those at their own version, so
/// under a version that changed students only the teacher keeps its older key (and its cache) while
/// every student's key still changes with the version.
fn teacher_keys(
    sweep: &Sweep,
    data_fingerprint: &str,
    model_version: u32,
    seed: u64,
) -> (String, Vec<Snapshot>) {
    let mut named = teacher_key(sweep, data_fingerprint, model_version, seed);
    let snapshots = snapshots_of(sweep, &mut named);
    (key_of(&named), snapshots)
}

/// [`build`] with the keys of model version `model_version` (tests check that keys of older versions
/// are computed as they were).
pub fn build_at_version(sweep: &Sweep, data_fingerprint: &str, model_version: u32) -> Plan {
    let d = &sweep.data;
    let mut runs = Vec::new();
    let seeds = sweep.all_seeds();
    let run = |id: String, role, seed, key: String, teacher, coord| RunSpec {
        id,
        role,
        seed,
        key,
        teacher,
        reference: None,
        coord,
        teacher_model: (role == Role::Student)
            .then_some(sweep.teacher.model)
            .flatten(),
        numerics: sweep.schedule.numerics,
        deterministic: sweep.schedule.deterministic,
        cuda_graphs: sweep.schedule.cuda_graphs,
        snapshots: Vec::new(),
    };
    let plain = |model: Option<Arch>| Coord {
        model,
        ..Coord::of(Method::Logit)
    };
    let mut teacher_of_seed = Vec::new();
    let mut named_teachers = Vec::new();
    for &seed in &seeds {
        let own = teacher_version(model_version);
        let (key, snapshots) = teacher_keys(sweep, data_fingerprint, own, seed);
        teacher_of_seed.push(runs.len());
        let id = format!("teacher-s{seed}");
        let coord = plain(sweep.teacher.model);
        named_teachers.push(teacher_keys(sweep, data_fingerprint, model_version, seed));
        runs.push(RunSpec {
            snapshots,
            ..run(id, Role::Teacher, seed, key, None, coord)
        });
    }
    let cells = sweep.cells();
    for ((&seed, &t), named) in seeds.iter().zip(&teacher_of_seed).zip(&named_teachers) {
        // The baseline shares the data identity with the teacher but not its weights.
        let mut data_identity = serde_json::json!({
            "model_version": model_version,
            "data": data_fingerprint,
            "validation": d.validation,
            "train_subset": d.train_subset,
            "test_subset": d.test_subset,
            "split_seed": d.split_seed,
        });
        data_options(d, &mut data_identity);
        for (model, tag) in student_models(sweep) {
            let phase = crate::config::Phase {
                model,
                ..sweep.student.clone()
            };
            if sweep.baseline {
                let mut key = serde_json::json!({
                    "kind": "baseline", "data": data_identity, "phase": phase, "seed": seed,
                });
                how_computed(sweep, &mut key);
                let id = format!("baseline-{tag}s{seed}");
                let baseline = run(id, Role::Baseline, seed, key_of(&key), None, plain(model));
                // measured against its seed's teacher (agreement, KL), not learning from it
                runs.push(RunSpec {
                    reference: Some(t),
                    ..baseline
                });
            }
            for cell in &cells {
                let coord = Coord {
                    model,
                    ..cell.clone()
                };
                // a snapshot student's teacher is the snapshot
                let teacher_key = match coord.teacher_epoch {
                    None => &named.0,
                    Some(e) => {
                        let s = named.1.iter().find(|s| s.epoch == e);
                        &s.expect("every teacher_epoch has its snapshot").key
                    }
                };
                let mut key = serde_json::json!({
                    "kind": "student",
                    "teacher": teacher_key,
                    "phase": phase,
                    "cache_teacher_logits": sweep.cache_teacher_logits,
                    "seed": seed,
                });
                // the cell's own fields: logit KD's keys are exactly those of before methods
                for (k, v) in coord.key_fields(&sweep.methods_fixed) {
                    key[k] = v;
                }
                how_computed(sweep, &mut key);
                let id = format!("student-{}-s{seed}", coord.id_part(&tag));
                runs.push(run(id, Role::Student, seed, key_of(&key), Some(t), coord));
            }
        }
    }
    Plan { runs }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn sweep(extra: &str) -> Sweep {
        let text = format!(
            "name = \"p\"\nseeds = [0, 1]\n[data]\ndataset = \"mnist\"\n[teacher]\nepochs = 1\nbatch_size = 8\nlr = 0.01\n\
             [student]\nepochs = 1\nbatch_size = 8\nlr = 0.01\n[grid]\ntemperature = [1, 4]\nalpha = [0.5, 0.9]\n{extra}"
        );
        crate::config::parse(&text, Path::new("p.toml")).unwrap()
    }

    #[test]
    fn grid_expands_per_seed_with_teacher_dependencies() {
        let p = build(&sweep(""), "fp");
        assert_eq!(p.runs.len(), 2 * (1 + 1 + 4));
        let ids: Vec<_> = p.runs.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(
            &ids[..4],
            [
                "teacher-s0",
                "teacher-s1",
                "baseline-s0",
                "student-T1-a0.5-s0"
            ]
        );
        for r in &p.runs {
            match r.role {
                Role::Student => assert_eq!(
                    p.runs[r.teacher.unwrap()].id,
                    format!("teacher-s{}", r.seed)
                ),
                _ => assert!(r.teacher.is_none()),
            }
        }
        let mut keys: Vec<_> = p.runs.iter().map(|r| &r.key).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), p.runs.len(), "every run has its own key");
    }

    #[test]
    fn feature_and_imitation_get_one_run_per_alpha_not_per_temperature() {
        let s = sweep("method = [\"logit\", \"feature\", \"imitation\"]");
        let p = build(&s, "fp");
        // per seed: teacher, baseline, 2 T × 2 α logit, 2 α feature, 2 α imitation
        assert_eq!(p.runs.len(), 2 * (1 + 1 + 4 + 2 + 2));
        let of = |m: Method| {
            p.runs
                .iter()
                .filter(|r| r.method() == m && r.role == Role::Student)
                .collect::<Vec<_>>()
        };
        for m in [Method::Feature, Method::Imitation] {
            let rs = of(m);
            assert_eq!(rs.len(), 4, "{m:?}: one run per α and seed");
            assert!(rs.iter().all(|r| r.coord.temperature.is_none()));
            let mut cells: Vec<_> = rs
                .iter()
                .map(|r| (r.seed, r.coord.alpha.as_ref().unwrap().text.clone()))
                .collect();
            cells.dedup();
            assert_eq!(cells.len(), 4, "no duplicates");
        }
        assert_eq!(of(Method::Logit).len(), 8);
        assert!(p.runs.iter().any(|r| r.id == "student-feature-a0.9-s1"));
        // adding methods leaves the logit runs' keys alone
        let plain = build(&sweep(""), "fp");
        for r in &plain.runs {
            assert!(
                p.runs.iter().any(|x| x.id == r.id && x.key == r.key),
                "{}",
                r.id
            );
        }
    }

    #[test]
    fn a_version_that_changed_students_only_keeps_every_teacher_s_key() {
        assert_eq!(
            [1, 2, 3, 4].map(teacher_version),
            [1, 2, 3, 3],
            "version 4 changed the students' losses only"
        );
        let text = "name = \"p\"\nseeds = [0, 1]\n[data]\ndataset = \"mnist\"\n\
            [teacher]\nepochs = 2\nbatch_size = 8\nlr = 0.01\n\
            [student]\nepochs = 1\nbatch_size = 8\nlr = 0.01\n\
            [grid]\ntemperature = [1, 4]\nalpha = [0.5, 0.9]\nteacher_epoch = [1, 2]\n";
        let s = crate::config::parse(text, Path::new("p.toml")).unwrap();
        let (v3, v4) = (build_at_version(&s, "fp", 3), build(&s, "fp"));
        assert_eq!(MODEL_VERSION, 4);
        assert_eq!(v3.runs.len(), v4.runs.len());
        let mut students = 0;
        for (a, b) in v3.runs.iter().zip(&v4.runs) {
            assert_eq!(a.id, b.id);
            match a.role {
                // the teacher, its snapshot and so its cache are version 3's
                Role::Teacher => assert_eq!((&a.key, &a.snapshots), (&b.key, &b.snapshots)),
                // every other run is version 4's own, whose numbers changed
                Role::Baseline | Role::Student => assert_ne!(a.key, b.key, "{}", a.id),
            }
            if b.role == Role::Student {
                students += 1;
                let teacher = v4.teacher_of(v4.runs.iter().position(|r| r.id == b.id).unwrap());
                let teacher = teacher.unwrap();
                let v3_teacher = v3.teacher_of(v3.runs.iter().position(|r| r.id == a.id).unwrap());
                assert_eq!(teacher.key, v3_teacher.unwrap().key, "{}", b.id);
            }
        }
        // every snapshot student: after epoch 1 and after epoch 2
        assert_eq!(students, 2 * 2 * 4);
        let mut keys: Vec<_> = v4.runs.iter().map(|r| &r.key).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), v4.runs.len(), "every run has its own key still");
    }

    #[test]
    fn a_teacher_used_as_it_is_is_keyed_by_its_weights_content_not_their_path_or_lr() {
        let as_loaded = |path: &str, sha: &str, lr: f64, batch_size: u32| {
            let mut s = sweep("");
            s.teacher.epochs = 0;
            (s.teacher.lr, s.teacher.batch_size) = (lr, batch_size);
            s.teacher.weights = Some(crate::model::weights::Weights {
                path: path.into(),
                sha256: sha.into(),
            });
            build(&s, "fp")
        };
        let a = as_loaded("a/t.pt", "aa", 0.01, 8);
        let moved = as_loaded("b/u.pt", "aa", 0.5, 64);
        let changed = as_loaded("a/t.pt", "bb", 0.01, 8);
        for ((x, y), z) in a.runs.iter().zip(&moved.runs).zip(&changed.runs) {
            assert_eq!(
                x.key, y.key,
                "{}: the path, lr and batch size are not used",
                x.id
            );
            assert_eq!(x.key == z.key, x.role == Role::Baseline, "{}", x.id);
        }
        // a trained teacher's key has no weights in it: sweeps without them keep their keys
        let trained = build(&sweep(""), "fp");
        for (x, y) in trained.runs.iter().zip(&a.runs) {
            assert_eq!(x.key == y.key, x.role == Role::Baseline, "{}", x.id);
        }
    }

    #[test]
    fn no_baseline_when_disabled() {
        let p = build(&sweep("baseline = false"), "fp");
        assert!(p.runs.iter().all(|r| r.role != Role::Baseline));
    }

    #[test]
    fn keys_follow_what_determines_the_run() {
        let a = build(&sweep(""), "fp");
        // a new temperature leaves every existing run's key alone
        let mut s = sweep("");
        s.temperatures.push(crate::distill::GridValue {
            text: "8".into(),
            value: 8.0,
        });
        let b = build(&s, "fp");
        for r in &a.runs {
            assert!(
                b.runs.iter().any(|x| x.id == r.id && x.key == r.key),
                "{} changed",
                r.id
            );
        }
        // other data changes every key
        let c = build(&sweep(""), "other");
        assert!(a.runs.iter().zip(&c.runs).all(|(x, y)| x.key != y.key));
        // student epochs change students and baselines, not teachers
        let mut s = sweep("");
        s.student.epochs = 2;
        let d = build(&s, "fp");
        for (x, y) in a.runs.iter().zip(&d.runs) {
            assert_eq!(x.key == y.key, x.role == Role::Teacher, "{}", x.id);
        }
        // the teacher's thread count and initialisation change the teacher and the students that
        // learn from it, not the baselines
        for change in [
            |s: &mut Sweep| s.teacher.threads += 1,
            |s: &mut Sweep| s.teacher.init = crate::model::Init::Kaiming,
            |s: &mut Sweep| s.teacher.recipe.optimizer = crate::train::optim::Algorithm::Sgd,
            |s: &mut Sweep| s.teacher.recipe.weight_decay = 5e-4,
            |s: &mut Sweep| s.teacher.recipe.schedule = crate::train::optim::Schedule::Cosine,
        ] {
            let mut s = sweep("");
            change(&mut s);
            let e = build(&s, "fp");
            for (x, y) in a.runs.iter().zip(&e.runs) {
                assert_eq!(x.key == y.key, x.role == Role::Baseline, "{}", x.id);
            }
        }
        // the students' thread count changes students and baselines
        let mut s = sweep("");
        s.student.threads = 2;
        let f = build(&s, "fp");
        for (x, y) in a.runs.iter().zip(&f.runs) {
            assert_eq!(x.key == y.key, x.role == Role::Teacher, "{}", x.id);
        }
    }
}

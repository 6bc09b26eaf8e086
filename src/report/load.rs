//! A sweep's results folder as `report`, `compare` and `status` read it: the manifest's context
//! ([`Meta`]) and the records of the runs its sweep file had the last time it ran.

use crate::record::RunRecord;
use serde::Serialize;

/// Context shown above the tables.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Meta {
    pub name: String,
    pub dataset: String,
    pub seeds: Vec<u64>,
    /// The search's confirmation seeds (empty: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub confirm_seeds: Vec<u64>,
    pub teacher_epochs: u32,
    pub student_epochs: u32,
    /// Test images each accuracy is measured on (the intervals' noise floor), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_images: Option<usize>,
    /// The dataset's image shape and classes (the sweep's, which a folder's or tensors file's
    /// manifest keeps), for the model sizes of the capacity chart.
    #[serde(skip)]
    pub input: Option<([i64; 3], i64)>,
    /// Runs the sweep's plan has, when known (a results folder's manifest, a running sweep).
    #[serde(skip)]
    pub planned: Option<usize>,
    /// A `[search]` sweep decides what to train as it goes: runs it does not choose never get a
    /// record, so a missing record does not mean it has not finished.
    #[serde(skip)]
    pub adaptive: bool,
}

impl Meta {
    /// `0, 1`, or `0, 1 (the best cells also 2, 3)` after a confirmation.
    pub fn seeds_text(&self) -> String {
        let list = crate::plan::search::seed_list;
        if self.confirm_seeds.is_empty() {
            list(&self.seeds)
        } else {
            format!(
                "{} (the best cells also {})",
                list(&self.seeds),
                list(&self.confirm_seeds)
            )
        }
    }

    /// The line under the title of `summary.md` and `index.html`: the dataset, seeds, epochs, and
    /// what the accuracies are (over how many test images, when known).
    pub fn context_line(&self) -> String {
        let on = self
            .test_images
            .map_or(String::new(), |n| format!(" on {n} test images"));
        // `[teacher] epochs = 0`: a trained teacher's file, evaluated and never trained here
        let teacher = match self.teacher_epochs {
            0 => "teacher used as loaded (trained elsewhere)".to_string(),
            n => format!("teacher {n} epochs"),
        };
        format!(
            "dataset {} · seeds {} · {teacher} · student {} epochs · accuracies are test accuracy \
             in %{on}, mean ± std over seeds",
            self.dataset,
            self.seeds_text(),
            self.student_epochs
        )
    }

    /// The context `summary.md` and the charts show for a sweep.
    pub fn of(sweep: &crate::config::Sweep) -> Meta {
        Meta {
            name: sweep.name.clone(),
            dataset: sweep.data.dataset.name().to_string(),
            seeds: sweep.seeds.clone(),
            confirm_seeds: sweep.search.confirm_seeds.clone(),
            teacher_epochs: sweep.teacher.epochs,
            student_epochs: sweep.student.epochs,
            test_images: sweep.data.test_subset,
            input: (sweep.data.image_shape()).zip(sweep.data.classes().map(|c| c as i64)),
            planned: None,
            adaptive: sweep.search.is_adaptive(),
        }
    }

    /// How far a sweep with `finished` records of its runs is from finishing: `None` when every
    /// run has one, when the plan is not known, or for a `[search]` sweep.
    pub fn unfinished(&self, finished: usize) -> Option<Unfinished> {
        let planned = self.planned.filter(|_| !self.adaptive)?;
        (finished < planned).then_some(Unfinished { finished, planned })
    }
}

/// A sweep some of whose runs have no record yet: stopped before the end, or still running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Unfinished {
    /// Runs with a record (done, failed or pruned).
    pub finished: usize,
    pub planned: usize,
}

impl Unfinished {
    /// The sentence `summary.md` and `index.html` open with.
    pub fn sentence(&self) -> String {
        format!(
            "this sweep has not finished: {} of its {} runs have no record yet (it was stopped, or \
             is still running), so the tables are over the {} finished so far; `kd-sweep status` \
             on this folder lists what is left, and running the sweep file again finishes it",
            self.planned - self.finished,
            self.planned,
            self.finished
        )
    }
}

/// A sweep folder as `report` and `compare` read it: the manifest's context and the records of the
/// runs its sweep file had the last time it ran.
pub struct Loaded {
    pub dir: std::path::PathBuf,
    pub meta: Meta,
    pub model_version: u64,
    pub records: Vec<RunRecord>,
    /// The sweep's settings beyond its grid, name and seeds ([`crate::config::settings`]), then the
    /// kd-sweep and libtorch versions it last ran with: what `compare` lists where sweeps differ.
    pub settings: Vec<(String, String)>,
    /// Runs the sweep's plan has (the records hold those finished so far).
    pub planned: usize,
}

/// Reads `<dir>/manifest.json` and the records it lists. Records that fail their checksum are skipped
/// with a warning through `warn`.
pub fn load(dir: &std::path::Path, warn: &dyn Fn(&str)) -> anyhow::Result<Loaded> {
    use anyhow::Context;
    let other = "no manifest.json; give a sweep's results folder (such as results/quick) written \
                 by `kd-sweep SWEEP.toml`";
    if let Some(why) = crate::store::folders::not_a_sweep(dir, other) {
        return Err(crate::util::UsageError(why).into());
    }
    let m = crate::store::Manifest::read(dir)
        .map_err(anyhow::Error::msg)
        .context("run the sweep again with this kd-sweep to refresh it")?;
    let meta = Meta {
        test_images: m.sweep.data.test_subset.or(Some(m.data.test_images)),
        planned: Some(m.plan.len()),
        ..Meta::of(&m.sweep)
    };
    let mut records = Vec::new();
    for run in &m.plan {
        let path = dir
            .join("records")
            .join(crate::store::record_file_name(&run.id, &run.key));
        // a record that is missing was not run yet (or never started): nothing to report
        if let Ok(b) = std::fs::read(&path) {
            match RunRecord::from_json(&b) {
                Ok(r) => records.push(r),
                Err(e) => warn(&format!("warning: {}: {e}; skipped", path.display())),
            }
        }
    }
    let mut settings = crate::config::settings(&m.sweep);
    settings.push(("kd-sweep version".into(), m.kd_sweep_version.clone()));
    settings.push(("libtorch version".into(), m.libtorch_version.clone()));
    Ok(Loaded {
        dir: dir.to_path_buf(),
        meta,
        model_version: m.model_version as u64,
        records,
        settings,
        planned: m.plan.len(),
    })
}

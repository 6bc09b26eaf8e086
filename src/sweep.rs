//! The pipeline end to end: config → data → plan → what is already on disk → schedule → outputs.

use crate::config::{self, Sweep};
use crate::data;
use crate::device::{self, Slot};
use crate::model::MODEL_VERSION;
use crate::plan::{self, Plan, Role};
use crate::progress::Progress;
use crate::report;
use crate::schedule;
use crate::store::{self, unix_now, Manifest, RunRecord, Status, Store, Stored};
use anyhow::Context;
use serde_json::json;
use std::path::{Path, PathBuf};

/// Command-line settings of a sweep.
#[derive(Debug, Clone)]
pub struct Options {
    pub results: PathBuf,
    /// `--devices`, `--workers-per-device`: validated like the sweep file's keys they replace.
    pub overrides: config::Overrides,
    pub quiet: bool,
    /// The executable started as worker processes (this binary).
    pub worker_exe: PathBuf,
}

/// A sweep ready to run: validated, its data checked, its plan built.
pub struct Prepared {
    pub sweep: Sweep,
    pub plan: Plan,
    pub store: Store,
    pub slots: Vec<Slot>,
    pub fingerprint: String,
    pub sizes: (usize, usize),
    /// An image's channels, height and width, and the number of classes, as the data has them.
    pub data_shape: [i64; 3],
    pub classes: i64,
}

pub const LIBTORCH_VERSION: &str = match option_env!("KD_SWEEP_LIBTORCH_VERSION") {
    Some(v) => v,
    None => "unknown",
};

/// Loads and checks everything that can be checked before training.
pub fn prepare(path: &Path, opts: &Options) -> anyhow::Result<Prepared> {
    let sweep = config::load_with(path, &opts.overrides)?;
    let raw = data::read(sweep.data.dataset, &sweep.data.path)?;
    data::check_sizes(&sweep, raw.train.n, raw.test.n)?;
    let plan = plan::build(&sweep, &raw.fingerprint);
    let resolved =
        device::resolve(&sweep.schedule.devices, &device::Probe::read()).map_err(|e| {
            // point at where the devices were asked for: the command line, or the file's key
            match opts.overrides.devices {
                Some(_) => config::ConfigError {
                    file: "--devices".into(),
                    at: None,
                    key: None,
                    message: e.to_string(),
                },
                None => sweep.source.error("schedule.devices", e.to_string()),
            }
        })?;
    if let (Some(note), false) = (&resolved.note, opts.quiet) {
        eprintln!("{note}");
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let slots = device::slots(
        &resolved.devices,
        sweep.schedule.workers_per_device,
        None,
        cores,
    );
    let store = Store::new(&opts.results, &sweep.name);
    Ok(Prepared {
        sizes: (raw.train.n, raw.test.n),
        data_shape: [raw.train.c as i64, raw.train.h as i64, raw.train.w as i64],
        classes: raw.classes as i64,
        fingerprint: raw.fingerprint,
        sweep,
        plan,
        store,
        slots,
    })
}

/// Which runs are finished, reporting (and scheduling for redo) corrupt records and cache entries.
/// A teacher counts as finished when its cache entry is intact; its record is copied into this
/// sweep's folder if this sweep has none yet (a teacher reused from another sweep).
pub fn finished(p: &Prepared, warn: &dyn Fn(&str)) -> Vec<bool> {
    let classes: Vec<&str> = p
        .slots
        .iter()
        .map(|s| store::device_class(&s.device.to_string()))
        .collect();
    // a finished run from another class of device (CPU vs GPU) is not mixed into this sweep
    let same_class = |r: &RunRecord| {
        let ok = classes.contains(&store::device_class(&r.device));
        if !ok {
            warn(&format!(
                "warning: {} was trained on {}, but this sweep runs on {}; it will be trained again \
                 (CPU and GPU numbers differ by float tolerance)",
                r.run_id,
                r.device,
                summarize_devices(&p.slots)
            ));
        }
        ok
    };
    p.plan
        .runs
        .iter()
        .map(|run| match run.role {
            Role::Teacher => match store::load_teacher(&p.store.teacher_dir(&run.key)) {
                Ok(Some(entry)) if !same_class(&entry.record) => false,
                Ok(Some(entry)) => {
                    if !matches!(p.store.load_record(run), Stored::Found(ref r) if r.status == Status::Done) {
                        if let Err(e) = p.store.save_record(&entry.record) {
                            warn(&format!("warning: cannot write the record of {}: {e}", run.id));
                        }
                    }
                    true
                }
                Ok(None) => false,
                Err(why) => {
                    warn(&format!("warning: cached teacher for {} is corrupt ({why}); it will be retrained", run.id));
                    false
                }
            },
            _ => match p.store.load_record(run) {
                Stored::Found(r) => r.status == Status::Done && same_class(&r),
                Stored::Missing => false,
                Stored::Corrupt(path, why) => {
                    warn(&format!("warning: {}: {why}; the run will be redone", path.display()));
                    false
                }
            },
        })
        .collect()
}

/// Refuses a results folder that holds a different study under the same name.
fn check_same_study(p: &Prepared) -> anyhow::Result<()> {
    let Ok(old) = Manifest::read(&p.store.dir) else {
        return Ok(());
    };
    let old_dataset = old.sweep.data.dataset;
    if old_dataset != p.sweep.data.dataset || old.model_version != MODEL_VERSION {
        anyhow::bail!(
            "{} holds another study named \"{}\" (dataset {}, model version {}); \
             give this sweep another `name`, or another results root with --results",
            p.store.dir.display(),
            p.sweep.name,
            old_dataset.name(),
            old.model_version
        );
    }
    Ok(())
}

/// Records of the plan's runs, in plan order (those that exist).
pub fn plan_records(p: &Prepared) -> Vec<RunRecord> {
    p.plan
        .runs
        .iter()
        .filter_map(|r| match p.store.load_record(r) {
            Stored::Found(rec) => Some(*rec),
            _ => None,
        })
        .collect()
}

/// Writes runs.csv and epochs.csv from records.
pub fn write_csvs(dir: &Path, records: &[&RunRecord]) -> anyhow::Result<()> {
    store::write_atomic(&dir.join("runs.csv"), &store::runs_csv(records)?)
        .context("writing runs.csv")?;
    store::write_atomic(&dir.join("epochs.csv"), &store::epochs_csv(records)?)
        .context("writing epochs.csv")?;
    Ok(())
}

/// The manifest of a sweep as its records stand now.
fn manifest_of(p: &Prepared, sweep_file: &Path, started: u64, records: &[RunRecord]) -> Manifest {
    let count = |st: Status| records.iter().filter(|r| r.status == st).count();
    Manifest {
        name: p.sweep.name.clone(),
        sweep_file: sweep_file.to_path_buf(),
        sweep_text: std::fs::read_to_string(sweep_file).ok(),
        sweep: p.sweep.clone(),
        kd_sweep_version: env!("CARGO_PKG_VERSION").into(),
        libtorch_version: LIBTORCH_VERSION.into(),
        model_version: MODEL_VERSION,
        data: store::ManifestData {
            fingerprint: p.fingerprint.clone(),
            train_images: p.sizes.0,
            test_images: p.sizes.1,
            hold_out: "seeded random draw of data.validation training images (not stratified), split_seed as above".into(),
        },
        devices: p.slots.clone(),
        plan: p
            .plan
            .runs
            .iter()
            .map(|r| store::PlannedRun {
                id: r.id.clone(),
                key: r.key.clone(),
            })
            .collect(),
        runs: store::RunCounts {
            planned: p.plan.runs.len(),
            done: count(Status::Done),
            failed: count(Status::Failed),
        },
        started_at: started,
        finished_at: unix_now(),
    }
}

/// Writes runs.csv, epochs.csv, the manifest, summary.md, the charts and index.html from the records.
pub fn write_outputs(
    p: &Prepared,
    sweep_file: &Path,
    started: u64,
) -> anyhow::Result<report::Summary> {
    let records = plan_records(p);
    let refs: Vec<&RunRecord> = records.iter().collect();
    let dir = &p.store.dir;
    write_csvs(dir, &refs)?;
    let manifest = manifest_of(p, sweep_file, started, &records);
    manifest.write(dir).context("writing manifest.json")?;
    // after the manifest: the page shows where the sweep ran and its file
    let summary = report::publish(dir, &report::Meta::of(&p.sweep), &refs)
        .context("writing summary.md, the charts and index.html")?;
    Ok(summary)
}

/// How a sweep ended, for the exit code.
#[derive(Debug)]
pub struct Finished {
    /// Runs of the plan without a finished record.
    pub failed: usize,
    /// Peak resident memory of each worker process, KiB.
    pub worker_peak_rss_kib: Vec<u64>,
    pub interrupted: bool,
    /// The stop came from SIGTERM.
    pub terminated: bool,
    pub summary: report::Summary,
}

/// Runs a sweep file to the end (or to Ctrl-C) and writes every output.
pub fn run(path: &Path, opts: &Options) -> anyhow::Result<Finished> {
    let p = prepare(path, opts)?;
    check_same_study(&p)?;
    std::fs::create_dir_all(p.store.records_dir()).with_context(|| {
        format!(
            "cannot create the results folder {}; choose another root with --results",
            p.store.dir.display()
        )
    })?;
    // one coordinator per sweep folder: a second `kd-sweep run` stops here, having touched nothing
    let lock = store::CoordinatorLock::acquire(&p.store.dir, &|m| eprintln!("{m}"))?;
    // what writers killed mid-write (kill -9, a crash) left behind
    store::remove_stale_temps(&p.store.records_dir());
    let cache = p.store.root.join(".cache").join("teachers");
    store::remove_stale_temps(&cache);
    for t in p.plan.teachers() {
        store::remove_stale_temps(&p.store.teacher_dir(&t.key));
    }
    let started = unix_now();
    // a manifest from the start, so that `kd-sweep status` and `report` can read a sweep in flight
    manifest_of(&p, path, started, &plan_records(&p))
        .write(&p.store.dir)
        .context("writing manifest.json")?;
    let labels: Vec<String> = p.slots.iter().map(|s| s.device.to_string()).collect();
    let quiet_warn = |m: &str| eprintln!("{m}");
    let done = finished(&p, &quiet_warn);
    let n_done = done.iter().filter(|d| **d).count();
    let progress = Progress::new(p.plan.runs.len(), n_done, labels, opts.quiet);
    progress.note(&format!(
        "{}: {} runs ({} already done) on {}; teachers first, {} thread(s) each, then students and \
         baselines, {} thread(s) each; results in {}",
        p.sweep.name,
        p.plan.runs.len(),
        n_done,
        summarize_devices(&p.slots),
        p.sweep.teacher.threads,
        p.sweep.student.threads,
        p.store.dir.display()
    ));
    // Ctrl-C once: running runs stop cleanly; twice: workers are killed (the coordinator checks every
    // 100 ms). After the second press SIGINT's default comes back, so a third ends the process even if
    // it is stuck writing outputs — nothing here calls exit.
    let _ = ctrlc::set_handler(|| {
        let n = schedule::INTERRUPTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if n >= 1 {
            // SAFETY: restoring the default disposition of a signal is always sound.
            unsafe { libc::signal(libc::SIGINT, libc::SIG_DFL) };
        }
    });
    schedule::handle_sigterm();
    let cx = schedule::Context {
        plan: &p.plan,
        sweep: &p.sweep,
        store: &p.store,
        exe: &opts.worker_exe,
        progress: &progress,
        heartbeat: &|| lock.refresh(),
    };
    let outcome = schedule::run(cx, &done, &p.slots)?;
    progress.finish();
    // what a writer killed before this run started (its coordinator was kill -9'ed) may have left
    // after the clean-up above
    store::remove_stale_temps(&p.store.records_dir());
    let summary = write_outputs(&p, path, started)?;
    if !opts.quiet {
        eprintln!(
            "\n{}",
            report::markdown(&report::Meta::of(&p.sweep), &summary)
        );
        eprintln!(
            "outputs: {}/{{runs.csv, epochs.csv, summary.md, manifest.json, charts/}}",
            p.store.dir.display()
        );
        if outcome.interrupted {
            eprintln!("interrupted: finished runs are saved; run the same command again to resume");
        }
    }
    // every run of the plan without a finished record counts, also one whose record could not be written
    let done = plan_records(&p)
        .iter()
        .filter(|r| r.status == Status::Done)
        .count();
    let failed = p.plan.runs.len() - done;
    Ok(Finished {
        failed,
        worker_peak_rss_kib: outcome.worker_peak_rss_kib.clone(),
        interrupted: outcome.interrupted,
        terminated: outcome.interrupted
            && schedule::TERMINATED.load(std::sync::atomic::Ordering::SeqCst),
        summary,
    })
}

fn summarize_devices(slots: &[Slot]) -> String {
    let mut out: Vec<String> = Vec::new();
    for s in slots {
        let n = slots.iter().filter(|x| x.device == s.device).count();
        let item = format!("{} ({n} worker{})", s.device, if n == 1 { "" } else { "s" });
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out.join(", ")
}

/// `kd-sweep plan`: the runs, what is already done, the devices and the work per device.
pub fn describe(path: &Path, opts: &Options) -> anyhow::Result<String> {
    let p = prepare(path, opts)?;
    let warnings = std::cell::RefCell::new(Vec::new());
    let done = finished(&p, &|m: &str| warnings.borrow_mut().push(m.to_string()));
    let mut out = String::new();
    for w in warnings.borrow().iter() {
        out.push_str(w);
        out.push('\n');
    }
    out.push_str(&format!(
        "sweep {} → {}\n",
        p.sweep.name,
        p.store.dir.display()
    ));
    out.push_str(&format!(
        "workers: {} on {}; teachers {} thread(s) each, students and baselines {}\n",
        p.slots.len(),
        summarize_devices(&p.slots),
        p.sweep.teacher.threads,
        p.sweep.student.threads
    ));
    // the networks of the plan, each measured once (parameters, multiply-adds per image)
    let shape = p.data_shape;
    let mut sizes: Vec<(crate::model::Arch, (i64, i64))> = Vec::new();
    for r in &p.plan.runs {
        if !sizes.iter().any(|(a, _)| *a == r.arch()) {
            sizes.push((r.arch(), r.arch().size(shape, p.classes)));
        }
    }
    // how each role trains, when not the default Adam at a constant rate on plain batches
    for (role, phase) in [("teacher", &p.sweep.teacher), ("student", &p.sweep.student)] {
        if !phase.recipe.is_default() {
            out.push_str(&format!(
                "{role}s train with {}\n",
                phase.recipe.describe(phase.lr)
            ));
        }
        if !phase.augment.is_none() {
            out.push_str(&format!(
                "{role}s train on augmented batches (random crop after 4 pixels of padding, horizontal flip)\n"
            ));
        }
    }
    if let (false, Some(teacher)) = (p.sweep.student.augment.is_none(), p.plan.teachers().next()) {
        out.push_str(&format!(
            "augmented students: the teacher's forward pass runs in every distilled student's step (its \
             cached logits and feature maps are of the plain images) — {:.2} M multiply-adds per image \
             beside the student's own forward and backward (below); they train unfused\n",
            macs_of(&sizes, teacher.arch()) / 1e6
        ));
    }
    // the networks, with their sizes for this dataset; fused training takes the tutorial student only
    let archs: Vec<crate::model::Arch> = sizes.iter().map(|(a, _)| *a).collect();
    for (a, (params, macs)) in &sizes {
        let (params, macs) = (*params, *macs);
        let macs = match a.script() {
            Some(_) => "(not counted for TorchScript)".to_string(),
            None => format!("{:>8.2} M", macs as f64 / 1e6),
        };
        out.push_str(&format!(
            "model {:<18} {:>7.3} M parameters, {macs} multiply-adds per image ({}×{}×{}, {} classes)\n",
            a.name(),
            params as f64 / 1e6,
            shape[0],
            shape[1],
            shape[2],
            p.classes
        ));
    }
    let unfused: Vec<String> = archs
        .iter()
        .filter(|a| !a.fusable())
        .filter(|a| {
            p.plan
                .runs
                .iter()
                .any(|r| r.role == Role::Student && r.arch() == **a)
        })
        .map(|a| a.name())
        .collect();
    let fuses = p.slots.iter().any(|s| p.sweep.schedule.fuse.on(s.device));
    if fuses && !unfused.is_empty() {
        out.push_str(&format!(
            "fuse: students of {} train one at a time (fused training takes tutorial-student only)\n",
            unfused.join(", ")
        ));
    }
    out.push('\n');
    let w = p
        .plan
        .runs
        .iter()
        .map(|r| r.id.len())
        .max()
        .unwrap_or(3)
        .max(28);
    out.push_str(&format!(
        "{:<w$} {:<9} {:>6} {:<10} {}\n",
        "run", "role", "epochs", "status", "needs"
    ));
    for (r, d) in p.plan.runs.iter().zip(&done) {
        let status = match (r.role, d) {
            (Role::Teacher, true) => "cached",
            (_, true) => "done",
            _ => "to run",
        };
        let needs = r
            .teacher
            .map(|t| p.plan.runs[t].id.clone())
            .unwrap_or_default();
        out.push_str(&format!(
            "{:<w$} {:<9} {:>6} {:<10} {}\n",
            r.id,
            r.role.name(),
            r.phase(&p.sweep).epochs,
            status,
            needs
        ));
    }
    let todo: Vec<_> = p
        .plan
        .runs
        .iter()
        .zip(&done)
        .filter(|(_, d)| !**d)
        .map(|(r, _)| r)
        .collect();
    let epochs = |role| {
        todo.iter()
            .filter(|r| r.role == role)
            .map(|r| r.phase(&p.sweep).epochs as usize)
            .sum::<usize>()
    };
    let n_train = p
        .sweep
        .data
        .train_subset
        .unwrap_or(p.sizes.0 - p.sweep.data.validation);
    out.push_str(&format!(
        "\n{} of {} runs to train: {} teacher epoch(s) and {} student epoch(s) over {} training images, \
         spread over {} worker(s) (about {} student epochs per worker)\n",
        todo.len(),
        p.plan.runs.len(),
        epochs(Role::Teacher),
        epochs(Role::Baseline) + epochs(Role::Student),
        n_train,
        p.slots.len(),
        (epochs(Role::Baseline) + epochs(Role::Student)).div_ceil(p.slots.len().max(1))
    ));
    let flop = work_flop(&p, &sizes, &todo, n_train);
    if flop > 0.0 {
        out.push_str(&format!(
            "work: {} of training (2 × multiply-adds: forward + backward ≈ 3 forwards per image and \
             epoch, plus the teacher's forward in each step of a student that runs it; TorchScript \
             networks not counted); time = work ÷ the rate your devices sustain on these networks\n",
            flop_text(flop)
        ));
    }
    Ok(out)
}

/// Floating-point operations the runs `todo` take to train on `n_train` images: per image and epoch
/// three forward passes of the run's network (forward and backward), and one of the teacher's where a
/// student runs it in its steps (augmented batches, or `cache_teacher_logits = false`).
fn work_flop(
    p: &Prepared,
    sizes: &[(crate::model::Arch, (i64, i64))],
    todo: &[&plan::RunSpec],
    n_train: usize,
) -> f64 {
    let live = !p.sweep.student.augment.is_none() || !p.sweep.cache_teacher_logits;
    todo.iter()
        .map(|r| {
            let mut per_image = 3.0 * macs_of(sizes, r.arch());
            if let (Some(t), true) = (r.teacher_arch(), live) {
                per_image += macs_of(sizes, t);
            }
            2.0 * per_image * n_train as f64 * r.phase(&p.sweep).epochs as f64
        })
        .sum()
}

/// Multiply-adds per image of `arch` among the plan's measured `sizes` (every run's network is
/// there, so a teacher's is too).
fn macs_of(sizes: &[(crate::model::Arch, (i64, i64))], arch: crate::model::Arch) -> f64 {
    sizes
        .iter()
        .find(|(a, _)| *a == arch)
        .map_or(0.0, |(_, (_, macs))| *macs as f64)
}

/// A FLOP count with an SI prefix (TFLOP, PFLOP, …).
fn flop_text(flop: f64) -> String {
    let (value, unit) = [
        (1e18, "EFLOP"),
        (1e15, "PFLOP"),
        (1e12, "TFLOP"),
        (1e9, "GFLOP"),
    ]
    .into_iter()
    .find(|(scale, _)| flop >= *scale)
    .map_or((flop, "FLOP"), |(scale, unit)| (flop / scale, unit));
    format!("{value:.1} {unit}")
}

/// `kd-sweep plan --json`: the plan's nodes (the ids `run --task` takes), what each needs, and whether
/// it is finished.
pub fn plan_json(path: &Path, opts: &Options) -> anyhow::Result<serde_json::Value> {
    let p = prepare(path, opts)?;
    let done = finished(&p, &|m: &str| eprintln!("{m}"));
    let nodes: Vec<serde_json::Value> = p
        .plan
        .runs
        .iter()
        .zip(&done)
        .map(|(r, d)| {
            json!({
                "id": r.id, "role": r.role.name(), "method": r.method.name(), "seed": r.seed,
                "temperature": r.temperature.as_ref().map(|g| g.text.clone()),
                "alpha": r.alpha.as_ref().map(|g| g.text.clone()),
                "key": r.key, "needs": r.teacher.map(|t| p.plan.runs[t].id.clone()), "done": d,
            })
        })
        .collect();
    Ok(json!({ "name": p.sweep.name, "results": p.store.dir, "workers": p.slots, "nodes": nodes }))
}

/// What `run --task` did.
#[derive(Debug, PartialEq, Eq)]
pub enum TaskOutcome {
    AlreadyDone,
    Done,
    Failed(String),
    /// Stopped by a signal after saving a checkpoint; `terminated`: the signal was SIGTERM.
    Stopped {
        terminated: bool,
    },
}

/// `kd-sweep run SWEEP --task ID`: trains exactly one node of the plan in this process, with the same
/// record and cache rules as a whole sweep: a finished node does nothing; a student waits for nobody —
/// it is refused while its teacher is unfinished. Concurrent tasks never write a record half-way
/// (records and cache entries are renamed into place).
pub fn run_task(path: &Path, opts: &Options, id: &str) -> anyhow::Result<TaskOutcome> {
    let p = prepare(path, opts)?;
    let Some(index) = p.plan.runs.iter().position(|r| r.id == id) else {
        let ids: Vec<&str> = p.plan.runs.iter().take(4).map(|r| r.id.as_str()).collect();
        anyhow::bail!("{}: the plan has no node {id:?} (ids look like {}…; `kd-sweep plan --json {}` lists them)", path.display(), ids.join(", "), path.display());
    };
    std::fs::create_dir_all(p.store.records_dir()).with_context(|| {
        format!(
            "cannot create the results folder {}; choose another root with --results",
            p.store.dir.display()
        )
    })?;
    let warn = |m: &str| eprintln!("{m}");
    let done = finished(&p, &warn);
    if done[index] {
        return Ok(TaskOutcome::AlreadyDone);
    }
    let run = &p.plan.runs[index];
    if let Some(t) = run.teacher {
        anyhow::ensure!(
            done[t],
            "{id} needs its teacher {}, which has not finished; run that task first",
            p.plan.runs[t].id
        );
    }
    // a node may be the first of its sweep on this machine: leave the manifest the report reads
    if !p.store.dir.join("manifest.json").exists() {
        write_outputs(&p, path, unix_now())?;
    }
    // SLURM's time limit or preemption (SIGTERM, ahead of the kill with --signal) or a Ctrl-C: the run
    // saves a checkpoint at its next step and stops; the resubmitted task continues from it
    schedule::handle_task_signals();
    let device = p
        .slots
        .first()
        .map_or(device::DeviceSpec::Cpu, |s| s.device);
    let job = crate::worker::Job::new(&p.plan, &p.sweep, &p.store.root, index, &[], device);
    let quiet = opts.quiet;
    let mut state = crate::exec::WorkerState::default();
    let of = run.phase(&p.sweep).epochs;
    let device = device.to_string();
    p.store
        .write_progress(&crate::store::InFlight::start(run, of, &device));
    let outcome = crate::exec::execute_job(&job, &mut state, &mut |_, e| {
        p.store
            .write_progress(&crate::store::InFlight::at_epoch(run, of, &device, e));
        if !quiet {
            eprintln!(
                "{id}: epoch {} loss {:.4} val {:.2}%",
                e.epoch, e.train_loss, e.val_acc
            );
        }
    });
    let record = match outcome.into_iter().next().map(|(_, o)| o) {
        Some(crate::worker::Outcome::Recorded(r)) => *r,
        _ => {
            p.store.clear_progress(&run.id, &run.key);
            let terminated = schedule::TERMINATED.load(std::sync::atomic::Ordering::SeqCst);
            return Ok(TaskOutcome::Stopped { terminated });
        }
    };
    Ok(match record.status {
        Status::Done => TaskOutcome::Done,
        Status::Failed => TaskOutcome::Failed(record.error.unwrap_or_default()),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn flop_counts_read_with_a_prefix() {
        assert_eq!(super::flop_text(80.6e15), "80.6 PFLOP");
        assert_eq!(super::flop_text(192.5e12), "192.5 TFLOP");
        assert_eq!(super::flop_text(2.0e9), "2.0 GFLOP");
        assert_eq!(super::flop_text(500.0), "500.0 FLOP");
    }
}

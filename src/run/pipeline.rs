//! The pipeline end to end: config → data → plan → what is already on disk → schedule → outputs.

use crate::config::{self, Sweep};
use crate::data;
use crate::files::{remove_stale_temps, unix_now};
use crate::model::MODEL_VERSION;
use crate::plan::{self, Plan, Role};
use crate::platform::device::{self, Slot};
use crate::platform::numerics::Numerics;
use crate::report;
use crate::run::coordinator as schedule;
use crate::run::progress::Progress;
use crate::store::{self, Manifest, RunRecord, Status, Store, Stored};
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
    let mut sweep = config::load_with(path, &opts.overrides)?;
    if opts.results.exists() && !opts.results.is_dir() {
        return Err(crate::util::UsageError(format!(
            "--results {}: is a file, not a folder; give the folder that holds (or will hold) the \
             sweeps' results",
            opts.results.display()
        ))
        .into());
    }
    // portable numerics where this machine has them, else native (recorded so, said once)
    let (numerics, why) = crate::platform::numerics::effective(sweep.schedule.numerics);
    sweep.schedule.numerics = numerics;
    if let (Some(why), false) = (why, opts.quiet) {
        eprintln!("{why}");
    }
    let cache = store::data_cache(&opts.results);
    let read = data::ReadOptions {
        progress: !opts.quiet,
        ..data::ReadOptions::of(&sweep.data, Some(cache))
    };
    let raw = data::read_with(sweep.data.dataset, &sweep.data.path, &read)?;
    config::check_data(&sweep, &raw)?;
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
    let p = Prepared {
        sizes: (raw.train.n, raw.test.n),
        data_shape: [raw.train.c as i64, raw.train.h as i64, raw.train.w as i64],
        classes: raw.classes as i64,
        fingerprint: raw.fingerprint,
        sweep,
        plan,
        store,
        slots,
    };
    // every command that plans here (run, a task, plan, slurm) refuses another study's folder
    check_same_study(&p)?;
    Ok(p)
}

/// Which runs are finished, reporting (and scheduling for redo) corrupt records and cache entries.
/// A teacher counts as finished when its cache entry is intact; its record is copied into this
/// sweep's folder if this sweep has none yet (a teacher reused from another sweep). `warn` gets what
/// is wrong, `note` each run reused from another sweep (progress, which `--quiet` leaves out).
/// `reused`: what to do with a run finished elsewhere (`plan` only says what a run would reuse).
pub fn finished(
    p: &Prepared,
    warn: &dyn Fn(&str),
    note: &dyn Fn(&str),
    reused: Reused,
) -> Vec<bool> {
    let classes: Vec<String> = (p.slots.iter())
        .map(|s| {
            let gpu = device::gpu_of(s.device);
            store::device_class(&s.device.to_string(), gpu.as_deref())
        })
        .collect();
    let ours = device::summary(&p.slots);
    // a finished run from another class of device (CPU or GPU; GPU model, TF32) is not mixed in
    let same_class = |r: &RunRecord| {
        let ok = classes.contains(&store::device_class(&r.device, r.gpu.as_deref()));
        if !ok {
            let gpu = r
                .gpu
                .as_ref()
                .map(|g| format!(" ({g})"))
                .unwrap_or_default();
            warn(&format!(
                "warning: {} was trained on {}{gpu}, but this sweep runs on {ours}; it will be \
                 trained again (numbers from other devices, GPU models or precision modes differ \
                 by float tolerance)",
                r.run_id, r.device,
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
                    if reused == Reused::Copy && !matches!(p.store.load_record(run), Stored::Found(ref r) if r.status == Status::Done) {
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
                Stored::Missing => reuse(p, run, &same_class, warn, note, reused),
                Stored::Corrupt(path, why) => {
                    warn(&format!("warning: {}: {why}; the run will be redone", path.display()));
                    false
                }
            },
        })
        .collect()
}

/// What [`finished`] does with a run finished in another sweep under the same root (and with a
/// cached teacher's record): copies the record into this sweep (a run), or only says so (`plan`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Reused {
    Copy,
    Report,
}

/// For [`finished`] where nothing it says is shown.
fn silent(_: &str) {}

/// A run finished in another sweep under the same results root (the same key: the same
/// computation) is reused, as a cached teacher is: its record is copied here under this sweep's run
/// id, saying where it came from (with `Reused::Report`, only said). Nothing trains twice.
fn reuse(
    p: &Prepared,
    run: &crate::plan::RunSpec,
    same_class: &dyn Fn(&RunRecord) -> bool,
    warn: &dyn Fn(&str),
    note: &dyn Fn(&str),
    reused: Reused,
) -> bool {
    let Some((from, mut r)) = p.store.find_elsewhere(run) else {
        return false;
    };
    if !same_class(&r) {
        return false;
    }
    if reused == Reused::Report {
        note(&format!(
            "{}: to be reused from sweep {from} (the same key: the same computation; the run \
             copies its record)",
            run.id
        ));
        return true;
    }
    r.run_id = run.id.clone();
    r.reused_from = Some(from.clone());
    match p.store.save_record(&r) {
        Ok(_) => {
            note(&format!(
                "{}: reused from sweep {from} (the same key: the same computation; record copied)",
                run.id
            ));
            true
        }
        Err(e) => {
            warn(&format!(
                "warning: cannot write the record of {}: {e}",
                run.id
            ));
            false
        }
    }
}

/// What `plan` and `run` say about records of this plan's unfinished runs that are not theirs: those
/// finished under the other numerics mode (the same runs computed with other CPU kernels), and those
/// of earlier settings of the sweep file (a run id's record under another key: a learning rate,
/// `precision`, `channels_last`, … changed since). Both are kept, never mixed in.
/// `last`: the sweep's manifest as it was before this command (`run` rewrites it before it speaks).
pub(super) fn record_notes(p: &Prepared, done: &[bool], last: Option<&Manifest>) -> Vec<String> {
    let other = match p.sweep.schedule.numerics {
        Numerics::Portable => Numerics::Native,
        Numerics::Native => Numerics::Portable,
    };
    let mut sweep = p.sweep.clone();
    sweep.schedule.numerics = other;
    let there = plan::build(&sweep, &p.fingerprint);
    let mut notes = Vec::new();
    let n = (there.runs.iter().zip(done))
        .filter(|(r, d)| {
            !**d && matches!(p.store.load_record(r), Stored::Found(rec) if rec.status == Status::Done)
        })
        .count();
    if n > 0 {
        notes.push(format!(
            "note: {n} run(s) of this plan finished earlier under numerics = \"{}\" (other CPU kernels, so other last bits); their records are kept and not mixed with numerics = \"{}\" ones — set `numerics = \"{}\"` in [schedule] (or --numerics {}) to use them",
            other.name(),
            p.sweep.schedule.numerics.name(),
            other.name(),
            other.name()
        ));
    }
    let n = earlier_settings(p, done, &there);
    if n > 0 {
        notes.push(format!(
            "note: {n} run(s) of this plan have records from earlier settings of this sweep file \
             ({}); those records are kept and not used, and these runs train anew",
            changed_since_last_run(p, last)
        ));
    }
    notes
}

/// The settings the sweep as it last ran here (its manifest) differs in, as `compare` names them
/// ("since it last ran: teacher.lr 0.001 → 0.003"); the kinds of change in general when that run
/// is not known or differs in none (the records are older than it).
fn changed_since_last_run(p: &Prepared, last: Option<&Manifest>) -> String {
    let general = "other keys: another learning rate, precision, channels_last, …";
    let Some(last) = last else {
        return general.into();
    };
    let lists = [&last.sweep, &p.sweep].map(crate::config::settings);
    let version = (last.model_version != MODEL_VERSION)
        .then(|| format!("model version {} → {MODEL_VERSION}", last.model_version));
    let changed: Vec<String> = (version.into_iter())
        .chain(
            (crate::config::differing(&lists).into_iter())
                .map(|(name, v)| format!("{name} {} → {}", v[0], v[1])),
        )
        .collect();
    if changed.is_empty() {
        return general.into();
    }
    format!("since it last ran here: {}", changed.join(", "))
}

/// Runs of the plan not finished here that have a record under another key (another file name
/// `<id>.<key>.json` of theirs) than theirs here or under the other numerics mode (`there`, said
/// apart by [`record_notes`]).
fn earlier_settings(p: &Prepared, done: &[bool], there: &Plan) -> usize {
    let Ok(entries) = std::fs::read_dir(p.store.records_dir()) else {
        return 0;
    };
    let names: std::collections::HashSet<String> = (entries.flatten())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let key_part = |n: &str| n.len() == 16 && n.bytes().all(|b| b.is_ascii_hexdigit());
    (p.plan.runs.iter().zip(&there.runs).zip(done))
        .filter(|((r, o), d)| {
            let mine = [
                store::record_file_name(&r.id, &r.key),
                store::record_file_name(&o.id, &o.key),
            ];
            !**d && names.iter().any(|n| {
                let rest = n.strip_prefix(&r.id).and_then(|n| n.strip_prefix('.'));
                let key = rest.and_then(|n| n.strip_suffix(".json"));
                key.is_some_and(key_part) && !mine.contains(n)
            })
        })
        .count()
}

/// Refuses a results folder that holds a different study under the same name: another dataset's, or
/// a newer kd-sweep's. One written at an older model version is the same study grown: the runs whose
/// keys the new version left alone (teachers, when it changed students only) are kept, the others
/// trained again beside their old records, as after any change of settings.
fn check_same_study(p: &Prepared) -> anyhow::Result<()> {
    let Ok(old) = Manifest::read(&p.store.dir) else {
        return Ok(());
    };
    let (dir, name) = (p.store.dir.display(), &p.sweep.name);
    let old_dataset = old.sweep.data.dataset;
    if old_dataset != p.sweep.data.dataset {
        anyhow::bail!(
            "{dir} holds another study named \"{name}\" (dataset {}, this sweep's is {}); give \
             this sweep another `name`, or another results root with --results",
            old_dataset.name(),
            p.sweep.data.dataset.name(),
        );
    }
    if old.model_version > MODEL_VERSION {
        anyhow::bail!(
            "{dir} holds another study named \"{name}\", written by a newer kd-sweep (model version \
             {}; this one's is {MODEL_VERSION}); run that kd-sweep, or give this sweep another \
             `name`, or another results root with --results",
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

/// The manifest of a sweep as its records stand now.
/// How the hold-out was made, for the manifest.
fn hold_out(d: &data::DataConfig) -> String {
    match &d.layout {
        Some(l) if l.own_validation => "the dataset's own validation split (a folder's validation/, a tensors file's x_val and y_val)".into(),
        _ => "seeded random draw of data.validation training images (not stratified), split_seed as above".into(),
    }
}

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
            hold_out: hold_out(&p.sweep.data),
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

/// A finished run's progress file can outlive it when the process that would have removed it was
/// killed in between (its record was written first): a sweep that ended uninterrupted removes those,
/// then the working folders left empty.
fn tidy_after_a_finished_sweep(p: &Prepared) {
    let done = finished(p, &silent, &silent, Reused::Copy);
    for (run, _) in p.plan.runs.iter().zip(&done).filter(|(_, d)| **d) {
        p.store.clear_progress(&run.id, &run.key);
    }
    remove_stale_temps(&p.store.progress_dir());
    p.store.remove_empty_work_dirs();
}

/// Writes every output of the sweep's folder from its records and a fresh manifest (runs.csv,
/// epochs.csv, manifest.json, summary.md, the charts, index.html: [`report::outputs`]).
pub fn write_outputs(
    p: &Prepared,
    sweep_file: &Path,
    started: u64,
) -> anyhow::Result<report::Summary> {
    let records = plan_records(p);
    let refs: Vec<&RunRecord> = records.iter().collect();
    let manifest = manifest_of(p, sweep_file, started, &records);
    let meta = report::Meta {
        test_images: p.sweep.data.test_subset.or(Some(p.sizes.1)),
        planned: Some(p.plan.runs.len()),
        ..report::Meta::of(&p.sweep)
    };
    report::write_all(&p.store.dir, &meta, &refs, Some(&manifest))
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

/// Removes what writers killed mid-write (kill -9, a crash) left behind in the sweep's folders and
/// the caches it uses.
fn remove_stale_writes(p: &Prepared) {
    for dir in [
        p.store.records_dir(),
        p.store.progress_dir(),
        p.store.checkpoints_dir(),
    ] {
        remove_stale_temps(&dir);
    }
    let cache = p.store.root.join(".cache").join("teachers");
    remove_stale_temps(&cache);
    remove_stale_temps(&store::data_cache(&p.store.root));
    for t in p.plan.teachers() {
        remove_stale_temps(&p.store.teacher_dir(&t.key));
    }
}

/// Ctrl-C once: running runs stop cleanly; twice: workers are killed (the coordinator checks every
/// 100 ms). After the second press SIGINT's default comes back, so a third ends the process even if
/// it is stuck writing outputs — nothing here calls exit. SIGTERM stops as the first Ctrl-C does.
fn handle_stops() {
    let _ = ctrlc::set_handler(|| {
        let n = schedule::INTERRUPTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if n >= 1 {
            // SAFETY: restoring the default disposition of a signal is always sound.
            unsafe { libc::signal(libc::SIGINT, libc::SIG_DFL) };
        }
    });
    schedule::handle_sigterm();
}

/// Runs a sweep file to the end (or to Ctrl-C) and writes every output.
pub fn run(path: &Path, opts: &Options) -> anyhow::Result<Finished> {
    let p = prepare(path, opts)?;
    p.store.create()?;
    // one coordinator per sweep folder: a second `kd-sweep run` stops here, having touched nothing
    let lock = store::CoordinatorLock::acquire(&p.store.dir, &|m| eprintln!("{m}"))?;
    remove_stale_writes(&p);
    let started = unix_now();
    // the settings it last ran with, for the notes below
    let last = Manifest::read(&p.store.dir).ok();
    // a manifest from the start, so that `kd-sweep status` and `report` can read a sweep in flight
    manifest_of(&p, path, started, &plan_records(&p))
        .write(&p.store.dir)
        .context("writing manifest.json")?;
    let say = |m: &str| eprintln!("{m}");
    let progress = |m: &str| {
        if !opts.quiet {
            say(m)
        }
    };
    let done = finished(&p, &say, &progress, Reused::Copy);
    for note in record_notes(&p, &done, last.as_ref()) {
        progress(&note);
    }
    let n_done = done.iter().filter(|d| **d).count();
    let intro = if p.sweep.search.is_adaptive() {
        search_intro(&p)
    } else {
        format!("{} runs ({n_done} already done)", p.plan.runs.len())
    };
    if !opts.quiet {
        eprintln!(
            "{}: {intro} on {}; teachers first, {} thread(s) each, then students and baselines, {} \
             thread(s) each; results in {}",
            p.sweep.name,
            device::summary(&p.slots),
            p.sweep.teacher.threads,
            p.sweep.student.threads,
            p.store.dir.display()
        );
    }
    handle_stops();
    let (outcome, tried) = run_steps(&p, opts, &lock, done, n_done)?;
    // what a writer killed before this run started (its coordinator was kill -9'ed) may have left
    // after the clean-up above
    remove_stale_temps(&p.store.records_dir());
    let summary = write_outputs(&p, path, started)?;
    if !outcome.interrupted {
        tidy_after_a_finished_sweep(&p);
    }
    if !opts.quiet {
        // the result, on stdout (`kd-sweep s.toml > result.md` keeps it, as `report` prints it);
        // progress and notes stay on stderr
        println!(
            "\n{}",
            report::markdown(&report::Meta::of(&p.sweep), &summary)
        );
        println!("outputs: {}", report::outputs::line(&p.store.dir));
        if outcome.interrupted {
            eprintln!("interrupted: finished runs are saved; run the same command again to resume");
        }
    }
    // every run the sweep (or its search) still wants without a finished record counts, also one
    // whose record could not be written
    let reached = reached_of(&p, &finished(&p, &silent, &silent, Reused::Copy), &tried);
    let still = crate::plan::search::decide(&p.plan, &p.sweep, &reached)
        .next
        .map_or(0, |s| s.runs.len());
    let failed = reached.iter().filter(|r| r.failed).count() + still;
    Ok(Finished {
        failed,
        worker_peak_rss_kib: outcome.worker_peak_rss_kib.clone(),
        interrupted: outcome.interrupted,
        terminated: outcome.interrupted
            && schedule::TERMINATED.load(std::sync::atomic::Ordering::SeqCst),
        summary,
    })
}

/// The search's steps (a grid is one): each is scheduled to its end, then the next is decided from
/// the records; a (run, pause) already tried in this process is not tried again. Returns what the
/// scheduler saw and the (run, pause) pairs tried.
#[allow(clippy::type_complexity)]
fn run_steps(
    p: &Prepared,
    opts: &Options,
    lock: &store::CoordinatorLock,
    mut done: Vec<bool>,
    n_done: usize,
) -> anyhow::Result<(
    schedule::Summary,
    std::collections::HashSet<(usize, Option<u32>)>,
)> {
    let labels: Vec<String> = p.slots.iter().map(|s| s.device.to_string()).collect();
    let mut tried: std::collections::HashSet<(usize, Option<u32>)> = Default::default();
    let mut outcome = schedule::Summary::default();
    loop {
        let reached = reached_of(p, &done, &tried);
        let Some(step) = crate::plan::search::decide(&p.plan, &p.sweep, &reached).next else {
            break;
        };
        if step.runs.iter().all(|r| tried.contains(r)) {
            break;
        }
        let mut mask = vec![true; p.plan.runs.len()];
        let mut until = vec![None; p.plan.runs.len()];
        for &(i, u) in &step.runs {
            mask[i] = false;
            until[i] = u;
        }
        let progress = if p.sweep.search.is_adaptive() {
            let progress = Progress::new(step.runs.len(), 0, labels.clone(), opts.quiet);
            progress.note(&format!("{}: {} runs", step.label, step.runs.len()));
            progress
        } else {
            Progress::new(p.plan.runs.len(), n_done, labels.clone(), opts.quiet)
        };
        let cx = schedule::Context {
            plan: &p.plan,
            sweep: &p.sweep,
            store: &p.store,
            exe: &opts.worker_exe,
            progress: &progress,
            heartbeat: &|| lock.refresh(),
            until: &until,
        };
        let summary = schedule::run(cx, &mask, &p.slots)?;
        progress.finish();
        tried.extend(step.runs.iter().copied());
        outcome.interrupted |= summary.interrupted;
        outcome.worker_peak_rss_kib = summary.worker_peak_rss_kib;
        if outcome.interrupted {
            break;
        }
        done = finished(p, &silent, &silent, Reused::Copy);
    }
    Ok((outcome, tried))
}

/// A search decides between its steps which runs train how far, from the records of the step before;
/// job arrays (and single nodes) fix their runs when they are submitted. So `slurm` and `run --task`
/// refuse an adaptive sweep, saying how to run it.
pub fn refuse_adaptive(p: &Prepared, path: &Path, command: &str) -> anyhow::Result<()> {
    if p.sweep.search.is_adaptive() {
        Err(crate::util::UsageError(format!(
            "{}: `{command}` cannot run a sweep with a [search] table (strategy = \"halving\" or \
             confirm_seeds): which runs train how far is decided between its steps from the records of \
             the step before, and job arrays fix their runs when they are submitted. Run it with \
             `kd-sweep run {}` on one node (inside one SLURM allocation: `srun kd-sweep run …`; it uses \
             every GPU there), or remove [search] to submit the whole grid",
            path.display(),
            path.display()
        )))?;
    }
    Ok(())
}

/// What each run of the plan has reached, for the search: finished (with its validation accuracies),
/// paused at a rung (a pruned record), failed in this process (`tried`; a failure from an earlier
/// process is tried again), or nothing yet.
pub(super) fn reached_of(
    p: &Prepared,
    done: &[bool],
    tried: &std::collections::HashSet<(usize, Option<u32>)>,
) -> Vec<crate::plan::search::Reached> {
    use crate::plan::search::Reached;
    let vals = |r: &RunRecord| r.history.iter().map(|e| e.val_acc).collect::<Vec<_>>();
    p.plan
        .runs
        .iter()
        .enumerate()
        .map(|(i, run)| {
            let record = match p.store.load_record(run) {
                Stored::Found(r) => Some(r),
                _ => None,
            };
            match record {
                _ if done[i] => Reached::done(record.map(|r| vals(&r)).unwrap_or_default()),
                Some(r) if r.status == Status::Pruned => Reached::paused(vals(&r)),
                Some(r) if r.status == Status::Failed && tried.iter().any(|(j, _)| *j == i) => {
                    Reached::failed()
                }
                _ => Reached::default(),
            }
        })
        .collect()
}

/// The first line of an adaptive sweep: what the search trains at most.
pub(super) fn search_intro(p: &Prepared) -> String {
    let b = crate::plan::search::budget(&p.plan, &p.sweep);
    let s = &p.sweep.search;
    let cells = b.rungs.first().map_or(0, |r| r.0);
    let mut out = match s.strategy {
        crate::config::Strategy::Halving => format!(
            "successive halving over {cells} cells (rungs end at epochs {}; at most {} of the grid's {} \
             student-epochs, {:.0} %)",
            b.rungs
                .iter()
                .map(|r| r.1.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            b.student_epochs,
            b.grid_epochs,
            100.0 * b.student_epochs as f64 / b.grid_epochs.max(1) as f64
        ),
        crate::config::Strategy::Grid => format!("the grid of {cells} cells"),
    };
    if !s.confirm_seeds.is_empty() {
        out.push_str(&format!(
            ", then the best {} cell(s) and the baseline with seed(s) {} (at most {} more runs)",
            s.confirm_top,
            crate::plan::search::seed_list(&s.confirm_seeds),
            b.confirm_runs
        ));
    }
    out
}

/// `kd-sweep plan --json`: the plan's nodes (the ids `run --task` takes), what each needs, and whether
/// it is finished.
pub fn plan_json(path: &Path, opts: &Options) -> anyhow::Result<serde_json::Value> {
    let p = prepare(path, opts)?;
    let say = |m: &str| eprintln!("{m}");
    let done = finished(&p, &say, &say, Reused::Report);
    let nodes: Vec<serde_json::Value> = p
        .plan
        .runs
        .iter()
        .zip(&done)
        .map(|(r, d)| {
            json!({
                "id": r.id, "role": r.role.name(), "method": r.method().name(), "seed": r.seed,
                "temperature": r.coord.temperature.as_ref().map(|g| g.text.clone()),
                "alpha": r.coord.alpha.as_ref().map(|g| g.text.clone()),
                "key": r.key, "needs": r.teacher.map(|t| p.plan.runs[t].id.clone()), "done": d,
            })
        })
        .collect();
    Ok(json!({ "name": p.sweep.name, "results": p.store.dir, "workers": p.slots, "nodes": nodes }))
}

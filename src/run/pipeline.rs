//! The pipeline end to end: config → data → plan → what is already on disk → schedule → outputs.

use crate::config::{self, Sweep};
use crate::data;
use crate::model::MODEL_VERSION;
use crate::plan::{self, Plan, Role};
use crate::platform::device::{self, Slot};
use crate::report;
use crate::run::coordinator as schedule;
use crate::run::progress::Progress;
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
    let mut sweep = config::load_with(path, &opts.overrides)?;
    // portable numerics where this machine has them, else native (recorded so, said once)
    let (numerics, why) = crate::platform::numerics::effective(sweep.schedule.numerics);
    sweep.schedule.numerics = numerics;
    if let (Some(why), false) = (why, opts.quiet) {
        eprintln!("{why}");
    }
    let raw = data::read(sweep.data.dataset, &sweep.data.path)?;
    config::check_sizes(&sweep, raw.train.n, raw.test.n)?;
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
    let classes: Vec<String> = (p.slots.iter())
        .map(|s| {
            let gpu = device::gpu_of(s.device);
            store::device_class(&s.device.to_string(), gpu.as_deref())
        })
        .collect();
    let ours = summarize_devices(&p.slots);
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

/// How the plan's numbers are computed, for `plan`: the numerics mode (with what of the user's own
/// environment portable numerics replaces) and GPU determinism.
fn describe_numerics(p: &Prepared) -> String {
    use crate::platform::numerics::Numerics;
    let mut out = match p.sweep.schedule.numerics {
        Numerics::Portable => {
            let replaced = crate::platform::numerics::overridden(|k| std::env::var(k).ok());
            format!(
                "numerics: portable — ATen, oneDNN and MKL at AVX2 in every worker, the same numbers on                  every x86-64 machine{}\n",
                if replaced.is_empty() {
                    String::new()
                } else {
                    format!(" (replaces your {})", replaced.join(", "))
                }
            )
        }
        Numerics::Native => format!(
            "numerics: native — libtorch's own kernels for this CPU (ATen: {}); numbers are              comparable only with machines that choose the same\n",
            crate::platform::torch_ext::cpu_capability().unwrap_or_else(|| "unknown".into())
        ),
    };
    if p.sweep.schedule.deterministic {
        out.push_str(
            "deterministic: GPU runs use cuDNN's deterministic algorithms without benchmark search              (repeatable bit for bit, slower)\n",
        );
    }
    out
}

/// Runs of the plan not finished here that have a finished record under the other numerics mode
/// (the same run computed with other CPU kernels): kept, never mixed in, named by `plan`.
pub fn other_numerics(
    p: &Prepared,
    done: &[bool],
) -> Option<(crate::platform::numerics::Numerics, usize)> {
    use crate::platform::numerics::Numerics;
    let other = match p.sweep.schedule.numerics {
        Numerics::Portable => Numerics::Native,
        Numerics::Native => Numerics::Portable,
    };
    let mut sweep = p.sweep.clone();
    sweep.schedule.numerics = other;
    let there = plan::build(&sweep, &p.fingerprint);
    let n = (there.runs.iter().zip(done))
        .filter(|(r, d)| {
            !**d && matches!(p.store.load_record(r), Stored::Found(rec) if rec.status == Status::Done)
        })
        .count();
    (n > 0).then_some((other, n))
}

/// The line `plan` and `run` say about [`other_numerics`].
fn other_numerics_note(p: &Prepared, done: &[bool]) -> Option<String> {
    let (other, n) = other_numerics(p, done)?;
    Some(format!(
        "note: {n} run(s) of this plan finished earlier under numerics = \"{}\" (other CPU kernels,          so other last bits); their records are kept and not mixed with numerics = \"{}\" ones —          set `numerics = \"{}\"` in [schedule] (or --numerics {}) to use them",
        other.name(),
        p.sweep.schedule.numerics.name(),
        other.name(),
        other.name()
    ))
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
    if let (Some(note), false) = (other_numerics_note(&p, &done), opts.quiet) {
        eprintln!("{note}");
    }
    let n_done = done.iter().filter(|d| **d).count();
    let adaptive = p.sweep.search.is_adaptive();
    let intro = if adaptive {
        search_intro(&p)
    } else {
        format!("{} runs ({n_done} already done)", p.plan.runs.len())
    };
    if !opts.quiet {
        eprintln!(
            "{}: {intro} on {}; teachers first, {} thread(s) each, then students and baselines, {} \
             thread(s) each; results in {}",
            p.sweep.name,
            summarize_devices(&p.slots),
            p.sweep.teacher.threads,
            p.sweep.student.threads,
            p.store.dir.display()
        );
    }
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
    // the search's steps (a grid is one): each is scheduled to its end, then the next is decided from
    // the records; a (run, pause) already tried in this process is not tried again
    let mut tried: std::collections::HashSet<(usize, Option<u32>)> = Default::default();
    let mut done = done;
    let mut outcome = schedule::Summary::default();
    loop {
        let reached = reached_of(&p, &done, &tried);
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
        let progress = if adaptive {
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
        done = finished(&p, &|_: &str| {});
    }
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
    // every run the sweep (or its search) still wants without a finished record counts, also one
    // whose record could not be written
    let reached = reached_of(&p, &finished(&p, &|_: &str| {}), &tried);
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
fn reached_of(
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
fn search_intro(p: &Prepared) -> String {
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

/// "cpu (2 workers)", "cuda:0 (1 worker; NVIDIA H200, sm_90, TF32), cuda:1 (…)".
fn summarize_devices(slots: &[Slot]) -> String {
    let mut devices: Vec<device::DeviceSpec> = slots.iter().map(|s| s.device).collect();
    devices.dedup(); // slots of one device are adjacent (device::slots)
    let items: Vec<String> = devices
        .into_iter()
        .map(|d| {
            let n = slots.iter().filter(|x| x.device == d).count();
            let gpu = device::gpu_of(d)
                .map(|g| format!("; {g}"))
                .unwrap_or_default();
            format!("{d} ({n} worker{}{gpu})", if n == 1 { "" } else { "s" })
        })
        .collect();
    items.join(", ")
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
    out.push_str(&describe_numerics(&p));
    if let Some(note) = other_numerics_note(&p, &done) {
        out.push_str(&note);
        out.push('\n');
    }
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
        if !phase.precision.is_fp32() {
            let on_cpu = p.slots.iter().any(|s| !s.device.is_cuda());
            out.push_str(&format!(
                "{role}s train in bf16 (autocast: convolutions and matrix products in bf16, float32 \
                 weights, the loss in float32){}\n",
                if on_cpu && !crate::platform::torch_ext::cpu_has_bf16() {
                    "; this CPU has no bf16 instructions (AVX512-BF16 or AMX), so on the CPU libtorch \
                     emulates them: slower than float32"
                } else {
                    ""
                }
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
    // what each run's record says it reached (paused runs show where); a search with nothing left to
    // decide: the runs it did not choose are not to run
    let reached = reached_of(&p, &done, &Default::default());
    let search_over = p.sweep.search.is_adaptive()
        && crate::plan::search::decide(&p.plan, &p.sweep, &reached)
            .next
            .is_none();
    out.push_str(&format!(
        "{:<w$} {:<9} {:>6} {:<10} {}\n",
        "run", "role", "epochs", "status", "needs"
    ));
    for ((r, d), reached) in p.plan.runs.iter().zip(&done).zip(&reached) {
        let pruned =
            (!d && !reached.val.is_empty()).then(|| format!("paused@{}", reached.val.len()));
        let status = match (r.role, d) {
            _ if pruned.is_some() => pruned.as_deref().unwrap_or_default(),
            (Role::Teacher, true) => "cached",
            (_, true) => "done",
            _ if search_over => "not chosen",
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
        .filter(|(_, d)| !**d && !search_over)
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
    if p.sweep.search.is_adaptive() {
        out.push_str(&search_lines(&p, &sizes, &todo, n_train));
    }
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

/// What an adaptive sweep trains at most: its rungs, its student-epochs beside the grid's, the
/// confirmation's runs, and the work of all that (the table above lists every run it may train).
fn search_lines(
    p: &Prepared,
    sizes: &[(crate::model::Arch, (i64, i64))],
    todo: &[&plan::RunSpec],
    n_train: usize,
) -> String {
    let b = crate::plan::search::budget(&p.plan, &p.sweep);
    let s = &p.sweep.search;
    let cells = b.rungs.first().map_or(0, |r| r.0);
    let mut out = String::new();
    let search_share = b.student_epochs as f64 / b.grid_epochs.max(1) as f64;
    if s.strategy == crate::config::Strategy::Halving {
        let rungs: Vec<String> = b
            .rungs
            .iter()
            .enumerate()
            .map(|(i, (n, e))| format!("rung {} → epoch {e}: {n} cells", i + 1))
            .collect();
        out.push_str(&format!(
            "search: successive halving over {cells} cells × {} seed(s), eta {} — {}; at most {} of the \
             grid's {} student-epochs ({:.0} %); baselines and teachers train in full\n",
            p.sweep.seeds.len(),
            s.eta,
            rungs.join(", "),
            b.student_epochs,
            b.grid_epochs,
            100.0 * search_share
        ));
    }
    let top = (s.confirm_top as usize).min(cells);
    if !s.confirm_seeds.is_empty() {
        out.push_str(&format!(
            "confirmation: the best {top} cell(s) by validation and the baseline with seed(s) {}: at most \
             {} more runs ({} student-epochs), each seed's teacher from the cache when it is there\n",
            crate::plan::search::seed_list(&s.confirm_seeds),
            b.confirm_runs,
            b.confirm_student_epochs
        ));
    }
    // the most it can train: the search's share of the searched students, the confirmed share of the
    // confirmation seeds' students, every teacher and baseline
    let confirm_share = top as f64 / cells.max(1) as f64;
    let most: f64 = todo
        .iter()
        .map(|r| {
            let share = match (r.role, s.confirm_seeds.contains(&r.seed)) {
                (Role::Student, false) => search_share,
                (Role::Student, true) => confirm_share,
                _ => 1.0,
            };
            share * work_flop(p, sizes, &[r], n_train)
        })
        .sum();
    if most > 0.0 {
        out.push_str(&format!(
            "at most {} of training for what is left of the search (the run counts above and the work \
             below are of every run in the table)\n",
            flop_text(most)
        ));
    }
    out
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
                "id": r.id, "role": r.role.name(), "method": r.method().name(), "seed": r.seed,
                "temperature": r.coord.temperature.as_ref().map(|g| g.text.clone()),
                "alpha": r.coord.alpha.as_ref().map(|g| g.text.clone()),
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
    // this process trains: it must have started with the numerics mode's environment
    crate::platform::numerics::reexec_with(p.sweep.schedule.numerics)?;
    refuse_adaptive(&p, path, "run --task")?;
    let Some(index) = p.plan.runs.iter().position(|r| r.id == id) else {
        let ids: Vec<&str> = p.plan.runs.iter().take(4).map(|r| r.id.as_str()).collect();
        return Err(crate::util::UsageError(format!("{}: the plan has no node {id:?} (ids look like {}…; `kd-sweep plan --json {}` lists them)", path.display(), ids.join(", "), path.display())).into());
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
    let job = crate::run::job::Job::new(&p.plan, &p.sweep, &p.store.root, index, &[], device);
    let quiet = opts.quiet;
    let mut state = crate::run::exec::WorkerState::default();
    let of = run.phase(&p.sweep).epochs;
    let device = device.to_string();
    p.store
        .write_progress(&crate::store::InFlight::start(run, of, &device));
    let outcome = crate::run::exec::execute_job(&job, &mut state, &mut |_, e| {
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
        Some(crate::run::job::Outcome::Recorded(r)) => *r,
        _ => {
            p.store.clear_progress(&run.id, &run.key);
            let terminated = schedule::TERMINATED.load(std::sync::atomic::Ordering::SeqCst);
            return Ok(TaskOutcome::Stopped { terminated });
        }
    };
    Ok(match record.status {
        Status::Done | Status::Pruned => TaskOutcome::Done,
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

//! `kd-sweep run SWEEP --task ID`: one node of the plan in this process (a SLURM array task), with
//! the pipeline's preparation and record rules.

use crate::config;
use crate::files::unix_now;
use crate::platform::device;
use crate::run::coordinator as schedule;
use crate::run::pipeline::{finished, prepare, refuse_adaptive, write_outputs, Options, Reused};
use crate::store::Status;
use std::path::Path;

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
    // this process trains under the numerics mode's environment: re-executed before it says anything
    let asked = config::load_with(path, &opts.overrides)?.schedule.numerics;
    crate::platform::numerics::reexec_with(crate::platform::numerics::effective(asked).0)?;
    crate::util::set_quiet(opts.quiet);
    let p = prepare(path, opts)?;
    refuse_adaptive(&p, path, "run --task")?;
    let Some(index) = p.plan.runs.iter().position(|r| r.id == id) else {
        let ids: Vec<&str> = p.plan.runs.iter().take(4).map(|r| r.id.as_str()).collect();
        return Err(crate::util::UsageError(format!("{}: the plan has no node {id:?} (ids look like {}…; `kd-sweep plan --json {}` lists them)", path.display(), ids.join(", "), path.display())).into());
    };
    p.store.create()?;
    let say = |m: &str| eprintln!("{m}");
    let note = |m: &str| {
        if !opts.quiet {
            eprintln!("{m}");
        }
    };
    let done = finished(&p, &say, &note, Reused::Copy);
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
    let recorded = match outcome.into_iter().next().map(|(_, o)| o) {
        Some(crate::run::job::Outcome::Recorded(r)) => Some(*r),
        _ => None,
    };
    // the task's progress file goes, and progress/ (checkpoints/) with it when it was the last
    p.store.clear_progress(&run.id, &run.key);
    p.store.remove_empty_work_dirs();
    let Some(record) = recorded else {
        let terminated = schedule::TERMINATED.load(std::sync::atomic::Ordering::SeqCst);
        return Ok(TaskOutcome::Stopped { terminated });
    };
    Ok(match record.status {
        Status::Done | Status::Pruned => TaskOutcome::Done,
        Status::Failed => TaskOutcome::Failed(record.error.unwrap_or_default()),
    })
}

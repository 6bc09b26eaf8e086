//! Stage 3, the coordinator: starts one worker process per [`Slot`] (this same binary, hidden
//! `__worker` command; the worker side is [`crate::run::worker`]), hands out jobs as the [`Dispatcher`]
//! decides, turns worker messages and exits into progress and records, and stops cleanly on Ctrl-C.
//!
//! Separate processes keep runs reproducible (libtorch's random generator is process-wide), let a
//! crash — even a segfault or an abort in libtorch — fail one run only, and hold the dataset once per
//! worker. A worker on a GPU is pinned to it with `CUDA_VISIBLE_DEVICES`.

use crate::config::Sweep;
use crate::plan::{Plan, Role, RunSpec};
use crate::platform::device::{DeviceSpec, Slot};
use crate::run::job::{self, Job, Outcome, WorkerMsg};
use crate::run::progress::Progress;
use crate::store::{RunRecord, Status, Store};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Pending,
    Running,
    Done,
    Failed,
}

/// Which run goes next: the first pending run (in plan order: teachers first) whose teacher is done.
/// A free worker takes work whenever any is runnable.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    deps: Vec<Option<usize>>,
    /// Runs that wait for another to end, done or failed (a baseline for its seed's teacher, which
    /// it is measured against).
    after: Vec<Option<usize>>,
    state: Vec<RunState>,
}

impl Dispatcher {
    pub fn new(plan: &Plan, done: &[bool]) -> Dispatcher {
        Dispatcher {
            deps: plan.runs.iter().map(|r| r.teacher).collect(),
            after: plan.runs.iter().map(|r| r.reference).collect(),
            state: done
                .iter()
                .map(|&d| if d { RunState::Done } else { RunState::Pending })
                .collect(),
        }
    }

    fn runnable(&self, i: usize) -> bool {
        self.state[i] == RunState::Pending
            && self.deps[i].is_none_or(|t| self.state[t] == RunState::Done)
            && self.after[i]
                .is_none_or(|t| matches!(self.state[t], RunState::Done | RunState::Failed))
    }

    /// Takes the next runnable run, marking it running.
    pub fn take_next(&mut self) -> Option<usize> {
        let i = (0..self.state.len()).find(|&i| self.runnable(i))?;
        self.state[i] = RunState::Running;
        Some(i)
    }

    /// After `take_next` gave `first`: also takes up to `max` more runnable runs for which
    /// `with(first, j)` holds (a fused group), marking them running.
    pub fn take_group(
        &mut self,
        first: usize,
        max: usize,
        with: &dyn Fn(usize, usize) -> bool,
    ) -> Vec<usize> {
        let mut group = Vec::new();
        for j in 0..self.state.len() {
            if group.len() >= max {
                break;
            }
            if j != first && self.runnable(j) && with(first, j) {
                self.state[j] = RunState::Running;
                group.push(j);
            }
        }
        group
    }

    pub fn finish(&mut self, i: usize, ok: bool) {
        self.state[i] = if ok { RunState::Done } else { RunState::Failed };
    }

    /// A running run that was stopped before it finished goes back to pending.
    pub fn requeue(&mut self, i: usize) {
        self.state[i] = RunState::Pending;
    }

    pub fn state(&self, i: usize) -> RunState {
        self.state[i]
    }

    /// Runnable runs for which `keep` holds.
    pub fn runnable_count(&self, keep: &dyn Fn(usize) -> bool) -> usize {
        (0..self.state.len())
            .filter(|&i| self.runnable(i) && keep(i))
            .count()
    }

    /// Pending runs that can never start because their teacher failed.
    pub fn blocked(&self) -> Vec<usize> {
        (0..self.state.len())
            .filter(|&i| {
                self.state[i] == RunState::Pending
                    && self.deps[i].is_some_and(|t| self.state[t] == RunState::Failed)
            })
            .collect()
    }

    pub fn running(&self) -> usize {
        self.state
            .iter()
            .filter(|s| **s == RunState::Running)
            .count()
    }
}

/// How many students a fused group may take so that every idle fusing worker gets some: the runnable
/// fusable students spread evenly over the idle fusing workers, at most `fuse_max`. (8 GPUs and 2 seeds
/// × 20 students: groups of 5, all 8 GPUs busy — not one group of 20 per seed and 6 GPUs idle.)
pub fn group_size(runnable: usize, idle_fusing_workers: usize, fuse_max: u32) -> usize {
    runnable
        .div_ceil(idle_fusing_workers.max(1))
        .clamp(1, fuse_max.max(1) as usize)
}

struct Worker {
    slot: Slot,
    child: Child,
    stdin: ChildStdin,
    /// Runs it is training (several when fused).
    busy: Vec<usize>,
    /// Kept idle while the CPU worker with this index trains a run whose threads need this core.
    held_by: Option<usize>,
    generation: usize,
}

/// CPU workers a run with `threads` intra-op threads occupies (itself and the ones kept idle beside it)
/// among `cpu_workers`: every core its threads use, so that a teacher with all the machine's cores
/// never shares them with students.
pub fn cpu_workers_needed(threads: u32, cpu_workers: usize) -> usize {
    (threads.max(1) as usize).min(cpu_workers.max(1))
}

enum Event {
    Msg {
        worker: usize,
        generation: usize,
        msg: WorkerMsg,
    },
    Exited {
        worker: usize,
        generation: usize,
    },
}

/// The environment of a worker on `device`: a GPU worker sees exactly its GPU (through the user's
/// own `CUDA_VISIBLE_DEVICES`, if any), as `cuda:0`.
pub fn worker_env(device: DeviceSpec, visible: Option<&str>) -> Vec<(&'static str, String)> {
    match device {
        DeviceSpec::Cpu => Vec::new(),
        DeviceSpec::Cuda(i) => vec![
            (
                "CUDA_VISIBLE_DEVICES",
                crate::platform::device::physical_gpu(i, visible),
            ),
            (crate::platform::device::PINNED_ENV, "1".into()),
        ],
    }
}

/// The environment every worker of a sweep needs before libtorch starts: portable numerics'
/// variables ([`crate::platform::numerics`]), and for deterministic GPU runs cuBLAS's fixed workspace
/// (`CUBLAS_WORKSPACE_CONFIG`, which cuBLAS reads when it starts and PyTorch's reproducibility notes
/// require for deterministic matrix products on CUDA ≥ 10.2).
pub fn sweep_env(schedule: &crate::config::ScheduleConfig) -> Vec<(&'static str, String)> {
    let mut env = crate::platform::numerics::worker_env(schedule.numerics);
    if schedule.deterministic {
        env.push(("CUBLAS_WORKSPACE_CONFIG", ":4096:8".into()));
    }
    env
}

fn spawn(
    cx: &Context,
    slot: &Slot,
    id: usize,
    generation: usize,
    tx: &mpsc::Sender<Event>,
) -> std::io::Result<Worker> {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(cx.exe);
    cmd.arg("__worker")
        .arg("--threads")
        .arg(slot.threads.to_string());
    if cx.progress.is_quiet() {
        cmd.arg("--quiet");
    }
    let visible = std::env::var("CUDA_VISIBLE_DEVICES").ok();
    cmd.envs(worker_env(slot.device, visible.as_deref()));
    cmd.envs(sweep_env(&cx.sweep.schedule));
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // Own process group: a Ctrl-C on the terminal reaches the coordinator only, which decides.
    cmd.process_group(0);
    // SAFETY: prctl and pthread_sigmask are async-signal-safe. The kernel kills the worker if the
    // coordinator dies; SIGTERM waits for the worker's handler (the mask survives exec).
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            mask_sigterm(libc::SIG_BLOCK)
        });
    }
    let mut child = cmd.spawn()?;
    let stdin = child
        .stdin
        .take()
        .ok_or_else(|| std::io::Error::other("no stdin"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("no stdout"))?;
    let tx = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // Anything else a library prints to stdout is passed through to stderr.
            match job::parse_line(&line) {
                Some(msg) => {
                    let ev = Event::Msg {
                        worker: id,
                        generation,
                        msg,
                    };
                    if tx.send(ev).is_err() {
                        return;
                    }
                }
                None => eprintln!("{line}"),
            }
        }
        let _ = tx.send(Event::Exited {
            worker: id,
            generation,
        });
    });
    Ok(Worker {
        slot: slot.clone(),
        child,
        stdin,
        busy: Vec::new(),
        held_by: None,
        generation,
    })
}

/// How the schedule ended.
#[derive(Debug, Default)]
pub struct Summary {
    pub trained: usize,
    pub failed: usize,
    pub interrupted: bool,
    /// Records that could not be written (each also counts as failed).
    pub unwritten: usize,
    /// Peak resident memory (VmHWM, KiB) of each worker process still alive at the end.
    pub worker_peak_rss_kib: Vec<u64>,
}

/// Peak resident memory of a process in KiB, from /proc (Linux).
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Ctrl-C presses (and SIGTERMs) seen by the coordinator.
pub static INTERRUPTS: AtomicUsize = AtomicUsize::new(0);

/// Set when the stop came from SIGTERM (SLURM's time limit or preemption, `scancel`, a container
/// stop): the process then exits with 143, not 130.
pub static TERMINATED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_sigterm_coordinator(_: libc::c_int) {
    TERMINATED.store(true, Ordering::SeqCst);
    INTERRUPTS.fetch_add(1, Ordering::SeqCst);
}

extern "C" fn on_stop_signal_in_task(sig: libc::c_int) {
    if sig == libc::SIGTERM {
        TERMINATED.store(true, Ordering::SeqCst);
    }
    crate::train::STOP.store(true, Ordering::SeqCst);
}

/// The coordinator's SIGTERM: like a first Ctrl-C (workers checkpoint at their next step and stop),
/// remembered for the exit status. Install after the Ctrl-C handler, which it replaces for SIGTERM.
pub fn handle_sigterm() {
    // SAFETY: the handler only touches atomics, which is async-signal-safe.
    unsafe {
        libc::signal(
            libc::SIGTERM,
            on_sigterm_coordinator as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
}

/// SIGTERM held (`libc::SIG_BLOCK`) or let through (`libc::SIG_UNBLOCK`) by the calling thread;
/// async-signal-safe (called between fork and exec). A worker starts with it held ([`spawn`]) and
/// lets it through once its handler is in place ([`let_sigterm_through`]): the coordinator's
/// SIGTERM to a worker still starting (loading libtorch, initialising CUDA) then stops its run at
/// its first step, rather than killing it and making its runs look crashed.
fn mask_sigterm(how: libc::c_int) -> std::io::Result<()> {
    // SAFETY: sigemptyset/sigaddset fill a local set; pthread_sigmask changes this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        match libc::pthread_sigmask(how, &set, std::ptr::null_mut()) {
            0 => Ok(()),
            e => Err(std::io::Error::from_raw_os_error(e)),
        }
    }
}

/// A SIGTERM is pending, held by the mask (sent while the worker started).
pub fn sigterm_held() -> bool {
    // SAFETY: sigpending fills a local set; sigismember reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigpending(&mut set) == 0 && libc::sigismember(&set, libc::SIGTERM) == 1
    }
}

/// In a worker, after its SIGTERM handler is installed: a SIGTERM the coordinator sent while it
/// started, held until now, is delivered to the handler.
pub fn let_sigterm_through() {
    let _ = mask_sigterm(libc::SIG_UNBLOCK);
}

/// In `run --task` (a SLURM task trains in-process): SIGINT and SIGTERM stop the run at its next step,
/// after it saves a checkpoint.
pub fn handle_task_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only touches atomics, which is async-signal-safe.
        unsafe {
            libc::signal(
                sig,
                on_stop_signal_in_task as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
    }
}

/// What the coordinator needs to know about the sweep.
pub struct Context<'a> {
    pub plan: &'a Plan,
    pub sweep: &'a Sweep,
    pub store: &'a Store,
    pub exe: &'a PathBuf,
    pub progress: &'a Progress,
    /// Called about once a minute while the sweep runs (refreshes the coordinator lock).
    pub heartbeat: &'a dyn Fn(),
    /// Per plan index, the epoch after which its run pauses (a search rung); empty: none pauses.
    pub until: &'a [Option<u32>],
}

/// The coordinator's state while a sweep runs: the dispatcher, the workers and what they are doing.
struct Coordinator<'a> {
    cx: Context<'a>,
    disp: Dispatcher,
    workers: Vec<Worker>,
    tx: mpsc::Sender<Event>,
    summary: Summary,
    stopping: bool,
}

impl<'a> Coordinator<'a> {
    /// Whether run `j` may be trained in a fused group.
    fn fusable(&self, j: usize) -> bool {
        fusable(self.cx.sweep, &self.cx.plan.runs[j])
    }

    fn fuses(&self, w: &Worker) -> bool {
        self.cx.sweep.schedule.fuse.on(w.slot.device)
    }

    fn idle(&self, wi: usize) -> bool {
        let w = &self.workers[wi];
        w.busy.is_empty() && w.held_by.is_none()
    }

    /// Gives every idle worker the next runnable run (with its fused group where the device fuses).
    /// A CPU run with more threads than one waits until as many CPU workers are idle, keeps the others
    /// idle while it trains, and nothing else starts on the CPU before it.
    fn assign(&mut self) -> anyhow::Result<()> {
        let cpu_workers = self
            .workers
            .iter()
            .filter(|w| w.slot.device == DeviceSpec::Cpu)
            .count();
        let mut cpu_waits = false;
        for wi in 0..self.workers.len() {
            let on_cpu = self.workers[wi].slot.device == DeviceSpec::Cpu;
            if !self.idle(wi) || (on_cpu && cpu_waits) {
                continue;
            }
            let Some(i) = self.disp.take_next() else {
                break;
            };
            if on_cpu {
                let threads = self.cx.plan.runs[i].phase(self.cx.sweep).threads;
                let need = cpu_workers_needed(threads, cpu_workers);
                let others: Vec<usize> = (0..self.workers.len())
                    .filter(|&o| {
                        o != wi && self.workers[o].slot.device == DeviceSpec::Cpu && self.idle(o)
                    })
                    .take(need - 1)
                    .collect();
                if others.len() + 1 < need {
                    self.disp.requeue(i);
                    cpu_waits = true;
                    continue;
                }
                for o in others {
                    self.workers[o].held_by = Some(wi);
                }
            }
            let also = if self.fuses(&self.workers[wi]) && self.fusable(i) {
                self.take_group(i)
            } else {
                Vec::new()
            };
            let w = &self.workers[wi];
            let mut job = Job::new(
                self.cx.plan,
                self.cx.sweep,
                &self.cx.store.root,
                i,
                &also,
                w.slot.device,
            );
            job.until = self.cx.until.get(i).copied().flatten();
            self.send(wi, &job)?;
        }
        Ok(())
    }

    /// The rest of a fused group led by run `first`: runnable logit students of the same teacher, sized
    /// so that the other idle fusing workers get students too.
    fn take_group(&mut self, first: usize) -> Vec<usize> {
        let idle = (0..self.workers.len())
            .filter(|&w| self.idle(w) && self.fuses(&self.workers[w]))
            .count();
        let runnable = 1 + self.disp.runnable_count(&|j| self.fusable(j));
        let size = group_size(runnable, idle, self.cx.sweep.schedule.fuse_max);
        let plan = self.cx.plan;
        let fusable: Vec<bool> = (0..plan.runs.len()).map(|j| self.fusable(j)).collect();
        let until = |j: usize| self.cx.until.get(j).copied().flatten();
        self.disp.take_group(first, size - 1, &|a, b| {
            let (ra, rb) = (&plan.runs[a], &plan.runs[b]);
            fusable[b]
                && (ra.teacher, ra.coord.teacher_epoch) == (rb.teacher, rb.coord.teacher_epoch)
                && until(a) == until(b)
        })
    }

    fn send(&mut self, wi: usize, job: &Job) -> anyhow::Result<()> {
        let w = &mut self.workers[wi];
        w.busy = job.members();
        let label = if job.also.is_empty() {
            job.run.id.clone()
        } else {
            format!("{} (+{} fused)", job.run.id, job.also.len())
        };
        self.cx.progress.started(wi, &label);
        for i in job.members() {
            let run = &self.cx.plan.runs[i];
            let of = run.phase(self.cx.sweep).epochs;
            let started = crate::store::InFlight::start(run, of, &job.device.to_string());
            self.cx.store.write_progress(&started);
        }
        let line = serde_json::to_string(job)? + "\n";
        // A worker that died before taking the job fails its runs through its exit event.
        let _ = w
            .stdin
            .write_all(line.as_bytes())
            .and_then(|_| w.stdin.flush());
        Ok(())
    }

    fn on_message(&mut self, worker: usize, msg: WorkerMsg) {
        match msg {
            WorkerMsg::Epoch { index, of, stats } => {
                let run = &self.cx.plan.runs[index];
                self.cx.progress.epoch(worker, &run.id, &stats, of);
                let device = self.workers[worker].slot.device.to_string();
                let p = crate::store::InFlight::at_epoch(run, of, &device, &stats);
                self.cx.store.write_progress(&p);
            }
            WorkerMsg::Finished { index, outcome } => {
                self.workers[worker].busy.retain(|&b| b != index);
                if self.workers[worker].busy.is_empty() {
                    self.release(worker);
                }
                match outcome {
                    Outcome::Interrupted => {
                        let run = &self.cx.plan.runs[index];
                        self.cx.store.clear_progress(&run.id, &run.key);
                        self.disp.requeue(index)
                    }
                    Outcome::Recorded(record) => {
                        // the worker cleared the run's progress file when it saved the record, but
                        // its last epoch's message may have been handled after that and written
                        // the file again: the run is over, so it goes now
                        let run = &self.cx.plan.runs[index];
                        self.cx.store.clear_progress(&run.id, &run.key);
                        self.finished(worker, index, &record)
                    }
                }
            }
            WorkerMsg::Poisoned { reason } => self.cx.progress.note(&format!(
                "worker {worker} on {} is replaced: its CUDA context is unusable ({reason})",
                self.workers[worker].slot.device
            )),
        }
    }

    /// The workers kept idle for `worker`'s run are free again.
    fn release(&mut self, worker: usize) {
        for w in &mut self.workers {
            if w.held_by == Some(worker) {
                w.held_by = None;
            }
        }
    }

    fn finished(&mut self, worker: usize, index: usize, record: &RunRecord) {
        self.disp.finish(index, record.status != Status::Failed);
        match record.status {
            Status::Done | Status::Pruned => self.summary.trained += 1,
            Status::Failed => self.summary.failed += 1,
        }
        self.cx.progress.finished(worker, record);
    }

    /// Writes a failed record for a run the coordinator ends (its worker died, its teacher failed).
    fn fail(&mut self, worker: usize, index: usize, reason: &str, device: &str) {
        let run = &self.cx.plan.runs[index];
        let record = RunRecord::failed(run, run.phase(self.cx.sweep).epochs, reason, 0.0, device);
        if let Err(e) = self.cx.store.save_record(&record) {
            self.summary.unwritten += 1;
            self.cx.progress.note(&format!(
                "warning: cannot write the record of {}: {e}",
                run.id
            ));
        }
        self.finished(worker, index, &record);
    }

    /// A worker process ended: the runs it held fail with how it died, and a fresh worker takes its
    /// place unless the sweep is stopping.
    fn on_exit(&mut self, worker: usize) -> anyhow::Result<()> {
        let status = self.workers[worker].child.wait().ok();
        let how = match status {
            Some(s) => match std::os::unix::process::ExitStatusExt::signal(&s) {
                Some(sig) => format!("killed by signal {sig}"),
                None => format!("exited with {s}"),
            },
            None => "vanished".into(),
        };
        let device = self.workers[worker].slot.device.to_string();
        for i in std::mem::take(&mut self.workers[worker].busy) {
            let reason = format!("worker process crashed ({how}) during this run");
            self.fail(worker, i, &reason, &device);
        }
        self.release(worker);
        if !self.stopping {
            let w = &self.workers[worker];
            let (slot, generation) = (w.slot.clone(), w.generation + 1);
            self.workers[worker] = spawn(&self.cx, &slot, worker, generation, &self.tx)?;
        }
        Ok(())
    }

    /// Ctrl-C: the first press lets running runs stop at their next step (they are redone later),
    /// the second kills the workers. Returns true when the loop must end now.
    fn on_interrupt(&mut self, presses: usize) -> bool {
        if presses >= 2 {
            for w in &mut self.workers {
                let _ = w.child.kill();
            }
            self.summary.interrupted = true;
            return true;
        }
        if presses == 1 && !self.stopping {
            self.stopping = true;
            self.summary.interrupted = true;
            let why = if TERMINATED.load(Ordering::SeqCst) {
                "SIGTERM"
            } else {
                "Ctrl-C"
            };
            self.cx.progress.note(&format!(
                "stopping ({why}): letting {} running run(s) checkpoint and stop at their next step; press Ctrl-C again to stop now",
                self.disp.running()
            ));
            for w in self.workers.iter().filter(|w| !w.busy.is_empty()) {
                // SAFETY: sending a signal to our own child process.
                unsafe { libc::kill(w.child.id() as i32, libc::SIGTERM) };
            }
        }
        false
    }

    /// Runs whose teacher failed are recorded as failed, with the reason.
    fn record_blocked(&mut self) {
        for i in self.disp.blocked() {
            let teacher = self.cx.plan.runs[i]
                .teacher
                .map(|t| self.cx.plan.runs[t].id.clone())
                .unwrap_or_default();
            self.fail(
                usize::MAX,
                i,
                &format!("not run: its teacher {teacher} failed"),
                "",
            );
        }
    }
}

/// Runs every pending run of the plan on `slots`. Records are written by the workers (or, for a worker
/// that died, by the coordinator) the moment each run ends.
pub fn run(cx: Context, done: &[bool], slots: &[Slot]) -> anyhow::Result<Summary> {
    let (tx, rx) = mpsc::channel();
    let pending = done.iter().filter(|d| !**d).count();
    let mut workers = Vec::new();
    for (i, slot) in slots.iter().enumerate().take(pending.max(1)) {
        workers.push(spawn(&cx, slot, i, 0, &tx)?);
    }
    let mut c = Coordinator {
        disp: Dispatcher::new(cx.plan, done),
        cx,
        workers,
        tx,
        summary: Summary::default(),
        stopping: false,
    };
    let mut beat = std::time::Instant::now();
    loop {
        if beat.elapsed() > Duration::from_secs(60) {
            (c.cx.heartbeat)();
            beat = std::time::Instant::now();
        }
        // a reader gone from our output (`| head`) stops the sweep as a first Ctrl-C does
        let presses = INTERRUPTS.load(Ordering::Relaxed);
        let presses = presses.max(usize::from(crate::util::output_closed()));
        if c.on_interrupt(presses) {
            break;
        }
        if !c.stopping {
            c.assign()?;
        }
        if c.disp.running() == 0 {
            break;
        }
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(Event::Msg {
                worker,
                generation,
                msg,
            }) if c.workers[worker].generation == generation => c.on_message(worker, msg),
            Ok(Event::Exited { worker, generation })
                if c.workers[worker].generation == generation =>
            {
                c.on_exit(worker)?
            }
            Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {} // a replaced worker's last words
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    c.record_blocked();
    c.summary.worker_peak_rss_kib = c
        .workers
        .iter()
        .filter_map(|w| peak_rss_kib(w.child.id()))
        .collect();
    end_workers(c.workers);
    Ok(c.summary)
}

/// Whether run `r` of `sweep` can train in a fused group: a logit student of the tutorial network on
/// cached teacher logits and plain batches, in the default layout (the fused model's convolutions
/// run in that layout only; the tutorial student's one-channel 28×28 convolutions gain nothing from
/// channels-last).
fn fusable(sweep: &Sweep, r: &RunSpec) -> bool {
    r.role == Role::Student
        && r.coord.fusable()
        && r.arch().fusable()
        && sweep.cache_teacher_logits
        && sweep.student.augment.is_none()
        && !sweep.student.channels_last
}

/// Ends the workers and waits for them: closing its stdin ends an idle worker, and one still alive
/// after a few seconds is killed. Waiting matters where one process runs several sweeps (`bench`,
/// a halving search's rungs): a worker never waited for stays a zombie until that process exits.
fn end_workers(workers: Vec<Worker>) {
    let children: Vec<Child> = (workers.into_iter())
        .map(|w| {
            drop(w.stdin);
            w.child
        })
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    for mut child in children {
        let _ = crate::util::wait_or_kill(&mut child, deadline);
    }
}

#[cfg(test)]
mod tests;

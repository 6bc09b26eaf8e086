//! Stage 3: devices, workers and dispatch. Each worker is a separate process (this same binary, hidden
//! `__worker` command) bound to one device, with a fixed number of intra-op threads. Separate processes
//! keep runs reproducible (libtorch's random generator is process-wide), let a crash — even a segfault
//! or an abort in libtorch — fail one run only, and hold the dataset once per worker.
//!
//! The coordinator sends [`Job`]s as JSON lines on the worker's stdin and reads [`WorkerMsg`]s, one JSON
//! line each prefixed by `KDSWEEP `, from its stdout. The [`Dispatcher`] decides what runs next.

use crate::config::{Devices, Sweep};
use crate::exec::{self, Job, WorkerState};
use crate::plan::Plan;
use crate::progress::Progress;
use crate::store::{RunRecord, Status, Store};
use crate::train::EpochStats;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// One worker's place: a device and its intra-op threads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Slot {
    pub device: String,
    pub threads: u32,
}

/// The devices a sweep runs on: `auto` is every CUDA device libtorch sees, else the CPU.
pub fn resolve_devices(devices: &Devices, cuda_count: usize) -> Result<Vec<String>, String> {
    match devices {
        Devices::Auto if cuda_count > 0 => {
            Ok((0..cuda_count).map(|i| format!("cuda:{i}")).collect())
        }
        Devices::Auto | Devices::Cpu => Ok(vec!["cpu".into()]),
        Devices::List(list) => {
            for d in list {
                if let Some(i) = d
                    .strip_prefix("cuda:")
                    .and_then(|i| i.parse::<usize>().ok())
                {
                    if i >= cuda_count {
                        return Err(format!("{d} is not available: libtorch sees {cuda_count} CUDA device(s); use \"auto\" or \"cpu\""));
                    }
                }
            }
            Ok(list.clone())
        }
    }
}

/// Workers for the devices: on the CPU one per core with one thread each by default (measured: two
/// single-thread workers beat one two-thread worker on students), on a GPU one per device.
/// Threads per worker are fixed so that a run's numbers never depend on how many workers there are.
pub fn slots(
    devices: &[String],
    workers_per_device: Option<u32>,
    threads: Option<u32>,
    cores: usize,
) -> Vec<Slot> {
    let mut out = Vec::new();
    for d in devices {
        let n = workers_per_device.unwrap_or(if d == "cpu" { cores.max(1) as u32 } else { 1 });
        for _ in 0..n {
            out.push(Slot {
                device: d.clone(),
                threads: threads.unwrap_or(1),
            });
        }
    }
    out
}

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
    pub state: Vec<RunState>,
}

impl Dispatcher {
    pub fn new(plan: &Plan, done: &[bool]) -> Dispatcher {
        Dispatcher {
            deps: plan.runs.iter().map(|r| r.teacher).collect(),
            state: done
                .iter()
                .map(|&d| if d { RunState::Done } else { RunState::Pending })
                .collect(),
        }
    }

    fn runnable(&self, i: usize) -> bool {
        self.state[i] == RunState::Pending
            && self.deps[i].is_none_or(|t| self.state[t] == RunState::Done)
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

/// A worker's report to the coordinator.
#[derive(Debug, Serialize, Deserialize)]
pub enum WorkerMsg {
    Epoch {
        index: usize,
        of: u32,
        stats: EpochStats,
    },
    Finished {
        index: usize,
        record: Box<RunRecord>,
    },
}

const PREFIX: &str = "KDSWEEP ";

/// The worker process's main loop: jobs in on stdin, messages out on stdout.
pub fn worker_main(threads: i32) -> anyhow::Result<()> {
    tch::set_num_threads(threads);
    tch::set_num_interop_threads(1);
    // SIGTERM (from the coordinator's first Ctrl-C) stops the current run at its next step.
    let _ = ctrlc::set_handler(|| crate::train::STOP.store(true, Ordering::Relaxed));
    let stdout = std::io::stdout();
    let send = |msg: &WorkerMsg| {
        let mut out = stdout.lock();
        // The coordinator going away ends the worker through PDEATHSIG; nothing to do on error here.
        let _ = writeln!(
            out,
            "{PREFIX}{}",
            serde_json::to_string(msg).unwrap_or_default()
        );
        let _ = out.flush();
    };
    let mut state = WorkerState::default();
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let job: Job = serde_json::from_str(&line)?;
        let of = job.run.phase(&job.sweep).epochs;
        let index = job.index;
        if job.also.is_empty() {
            let record = exec::execute(&job, &mut state, &mut |stats| {
                send(&WorkerMsg::Epoch {
                    index,
                    of,
                    stats: stats.clone(),
                })
            });
            send(&WorkerMsg::Finished {
                index,
                record: Box::new(record),
            });
        } else {
            let records = exec::execute_fused(&job, &mut state, &mut |i, stats| {
                send(&WorkerMsg::Epoch {
                    index: i,
                    of,
                    stats: stats.clone(),
                })
            });
            for (i, record) in records {
                send(&WorkerMsg::Finished {
                    index: i,
                    record: Box::new(record),
                });
            }
        }
        if crate::train::STOP.load(Ordering::Relaxed) {
            break;
        }
    }
    Ok(())
}

struct Worker {
    slot: Slot,
    child: Child,
    stdin: ChildStdin,
    /// Runs it is training (several when fused).
    busy: Vec<usize>,
    generation: usize,
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

fn spawn(
    exe: &PathBuf,
    slot: &Slot,
    id: usize,
    generation: usize,
    tx: &mpsc::Sender<Event>,
) -> std::io::Result<Worker> {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(exe);
    cmd.arg("__worker")
        .arg("--threads")
        .arg(slot.threads.to_string());
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // Own process group: a Ctrl-C on the terminal reaches the coordinator only, which decides.
    cmd.process_group(0);
    // SAFETY: prctl is async-signal-safe; it makes the kernel kill the worker if the coordinator dies.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
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
            match line
                .strip_prefix(PREFIX)
                .map(serde_json::from_str::<WorkerMsg>)
            {
                Some(Ok(msg)) => {
                    if tx
                        .send(Event::Msg {
                            worker: id,
                            generation,
                            msg,
                        })
                        .is_err()
                    {
                        return;
                    }
                }
                _ => eprintln!("{line}"),
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
        generation,
    })
}

/// How the schedule ended.
#[derive(Debug, Default)]
pub struct Outcome {
    pub trained: usize,
    pub failed: usize,
    pub interrupted: bool,
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

/// Ctrl-C presses seen by the coordinator.
pub static INTERRUPTS: AtomicUsize = AtomicUsize::new(0);

/// Runs every pending run of `plan` on `slots`. Records are written by the workers (or, for a worker
/// that died, by the coordinator) the moment each run ends.
pub fn run(
    plan: &Plan,
    sweep: &Sweep,
    done: &[bool],
    slots: &[Slot],
    store: &Store,
    exe: &PathBuf,
    progress: &Progress,
) -> anyhow::Result<Outcome> {
    let job_of = |i: usize, device: &str| Job {
        index: i,
        run: plan.runs[i].clone(),
        teacher: plan.runs[i].teacher.map(|t| plan.runs[t].clone()),
        sweep: sweep.clone(),
        results_root: store.root.clone(),
        device: device.to_string(),
        also: Vec::new(),
    };
    let epochs_of = |i: usize| plan.runs[i].phase(sweep).epochs;
    let mut disp = Dispatcher::new(plan, done);
    let mut outcome = Outcome::default();
    let (tx, rx) = mpsc::channel();
    let mut workers: Vec<Worker> = Vec::new();
    let pending = done.iter().filter(|d| !**d).count();
    for (i, slot) in slots.iter().enumerate().take(pending.max(1)) {
        workers.push(spawn(exe, slot, i, 0, &tx)?);
    }
    let mut stopping = false;
    loop {
        let presses = INTERRUPTS.load(Ordering::Relaxed);
        if presses >= 2 {
            for w in &mut workers {
                let _ = w.child.kill();
            }
            outcome.interrupted = true;
            break;
        }
        if presses == 1 && !stopping {
            stopping = true;
            outcome.interrupted = true;
            progress.note(&format!(
                "stopping: letting {} running run(s) stop cleanly; press Ctrl-C again to stop now",
                disp.running()
            ));
            for w in &workers {
                if !w.busy.is_empty() {
                    // SAFETY: sending a signal to our own child process.
                    unsafe { libc::kill(w.child.id() as i32, libc::SIGTERM) };
                }
            }
        }
        if !stopping {
            for (wi, w) in workers.iter_mut().enumerate() {
                if !w.busy.is_empty() {
                    continue;
                }
                let Some(i) = disp.take_next() else { break };
                let mut job = job_of(i, &w.slot.device);
                // a fused group: the runnable logit students of the same seed (same teacher)
                let fusable = |j: usize| {
                    let r = &plan.runs[j];
                    r.role == crate::plan::Role::Student
                        && r.method == crate::config::Method::Logit
                        && sweep.cache_teacher_logits
                };
                if sweep.schedule.fuse.on(&w.slot.device) && fusable(i) {
                    let max = sweep.schedule.fuse_max.saturating_sub(1) as usize;
                    let group = disp.take_group(i, max, &|a, b| {
                        fusable(b) && plan.runs[a].teacher == plan.runs[b].teacher
                    });
                    job.also = group.iter().map(|&j| (j, plan.runs[j].clone())).collect();
                }
                w.busy = std::iter::once(i)
                    .chain(job.also.iter().map(|(j, _)| *j))
                    .collect();
                let label = if job.also.is_empty() {
                    plan.runs[i].id.clone()
                } else {
                    format!("{} (+{} fused)", plan.runs[i].id, job.also.len())
                };
                progress.started(wi, &label);
                let line = serde_json::to_string(&job)? + "\n";
                if w.stdin
                    .write_all(line.as_bytes())
                    .and_then(|_| w.stdin.flush())
                    .is_err()
                {
                    // the worker died before taking the job; its exit event fails the run
                }
            }
        }
        if disp.running() == 0 {
            break;
        }
        let ev = match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(ev) => ev,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        match ev {
            Event::Msg {
                worker,
                generation,
                msg,
            } if workers[worker].generation == generation => match msg {
                WorkerMsg::Epoch { index, of, stats } => {
                    progress.epoch(worker, &plan.runs[index].id, &stats, of)
                }
                WorkerMsg::Finished { index, record } => {
                    workers[worker].busy.retain(|&b| b != index);
                    let interrupted = stopping
                        && record.status == Status::Failed
                        && record.error.as_deref() == Some("interrupted");
                    if interrupted {
                        disp.state[index] = RunState::Pending;
                        continue;
                    }
                    disp.finish(index, record.status == Status::Done);
                    match record.status {
                        Status::Done => outcome.trained += 1,
                        Status::Failed => outcome.failed += 1,
                    }
                    progress.finished(worker, &record);
                }
            },
            Event::Exited { worker, generation } if workers[worker].generation == generation => {
                let w = &mut workers[worker];
                let status = w.child.wait().ok();
                for i in std::mem::take(&mut w.busy) {
                    let how = match status {
                        Some(s) => match std::os::unix::process::ExitStatusExt::signal(&s) {
                            Some(sig) => format!("killed by signal {sig}"),
                            None => format!("exited with {s}"),
                        },
                        None => "vanished".into(),
                    };
                    let run = &plan.runs[i];
                    let epochs = epochs_of(i);
                    let record = RunRecord::failed(
                        run,
                        epochs,
                        &format!("worker process crashed ({how}) during this run"),
                        0.0,
                        &w.slot.device,
                    );
                    if let Err(e) = store.save_record(&record) {
                        progress.note(&format!(
                            "warning: cannot write the record of {}: {e}",
                            run.id
                        ));
                    }
                    disp.finish(i, false);
                    outcome.failed += 1;
                    progress.finished(worker, &record);
                }
                if !stopping {
                    let slot = w.slot.clone();
                    let next_gen = w.generation + 1;
                    workers[worker] = spawn(exe, &slot, worker, next_gen, &tx)?;
                }
            }
            _ => {} // from a worker that has since been replaced
        }
    }
    // Runs whose teacher failed are recorded as failed, with the reason.
    for i in disp.blocked() {
        let run = &plan.runs[i];
        let teacher = run
            .teacher
            .map(|t| plan.runs[t].id.clone())
            .unwrap_or_default();
        let epochs = epochs_of(i);
        let record = RunRecord::failed(
            run,
            epochs,
            &format!("not run: its teacher {teacher} failed"),
            0.0,
            "",
        );
        let _ = store.save_record(&record);
        outcome.failed += 1;
        progress.finished(usize::MAX, &record);
    }
    outcome.worker_peak_rss_kib = workers
        .iter()
        .filter_map(|w| peak_rss_kib(w.child.id()))
        .collect();
    drop(workers); // closing stdin ends idle workers
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Role;
    use std::path::Path;

    fn plan(seeds: &str) -> Plan {
        let text = format!(
            "name = \"p\"\nseeds = {seeds}\n[data]\ndataset = \"mnist\"\n[teacher]\nepochs = 1\nbatch_size = 8\nlr = 0.01\n\
             [student]\nepochs = 1\nbatch_size = 8\nlr = 0.01\n[grid]\ntemperature = [1, 4]\nalpha = [0.5]\n"
        );
        crate::plan::build(
            &crate::config::parse(&text, Path::new("p.toml")).unwrap(),
            "fp",
        )
    }

    #[test]
    fn devices_resolve() {
        assert_eq!(resolve_devices(&Devices::Auto, 0).unwrap(), ["cpu"]);
        assert_eq!(
            resolve_devices(&Devices::Auto, 2).unwrap(),
            ["cuda:0", "cuda:1"]
        );
        assert_eq!(resolve_devices(&Devices::Cpu, 2).unwrap(), ["cpu"]);
        let list = Devices::List(vec!["cuda:0".into(), "cuda:2".into()]);
        assert_eq!(resolve_devices(&list, 3).unwrap(), ["cuda:0", "cuda:2"]);
        assert!(resolve_devices(&list, 0)
            .unwrap_err()
            .contains("cuda:0 is not available"));
    }

    #[test]
    fn slots_default_to_one_per_core_on_cpu_and_one_per_gpu() {
        let s = slots(&["cpu".into()], None, None, 2);
        assert_eq!(
            s,
            vec![
                Slot {
                    device: "cpu".into(),
                    threads: 1
                };
                2
            ]
        );
        let s = slots(&["cuda:0".into(), "cuda:2".into()], None, None, 16);
        assert_eq!(
            s.iter().map(|s| s.device.as_str()).collect::<Vec<_>>(),
            ["cuda:0", "cuda:2"]
        );
        assert_eq!(slots(&["cuda:0".into()], Some(3), None, 16).len(), 3);
    }

    #[test]
    fn teachers_first_and_students_wait_for_their_teacher() {
        let p = plan("[0, 1]");
        let mut d = Dispatcher::new(&p, &vec![false; p.runs.len()]);
        // two devices: both teachers start at once, then the baselines (no teacher needed)
        let a = d.take_next().unwrap();
        let b = d.take_next().unwrap();
        assert_eq!(
            (p.runs[a].id.as_str(), p.runs[b].id.as_str()),
            ("teacher-s0", "teacher-s1")
        );
        let c = d.take_next().unwrap();
        assert_eq!(p.runs[c].role, Role::Baseline);
        let e = d.take_next().unwrap();
        assert_eq!(p.runs[e].role, Role::Baseline);
        assert_eq!(d.take_next(), None, "students must wait for their teacher");
        d.finish(b, true); // seed 1's teacher finishes first: its students become runnable
        let s = d.take_next().unwrap();
        assert_eq!((p.runs[s].role, p.runs[s].seed), (Role::Student, 1));
    }

    #[test]
    fn a_free_worker_never_idles_while_work_is_runnable() {
        // simulate 3 workers over the whole plan; at every step, if a worker is free and anything is
        // runnable, it must have been given work
        let p = plan("[0, 1, 2]");
        let mut d = Dispatcher::new(&p, &vec![false; p.runs.len()]);
        let mut busy: Vec<Option<usize>> = vec![None; 3];
        let mut finished = 0;
        while finished < p.runs.len() {
            for w in busy.iter_mut().filter(|w| w.is_none()) {
                *w = d.take_next();
            }
            let runnable_left = (0..p.runs.len()).any(|i| d.runnable(i));
            assert!(
                !(busy.iter().any(|w| w.is_none()) && runnable_left),
                "idle worker with runnable work"
            );
            // finish the lowest-index running run
            let (wi, i) = busy
                .iter()
                .enumerate()
                .filter_map(|(wi, r)| r.map(|i| (wi, i)))
                .min_by_key(|x| x.1)
                .unwrap();
            d.finish(i, true);
            busy[wi] = None;
            finished += 1;
        }
    }

    #[test]
    fn a_fused_group_takes_the_runnable_students_of_one_teacher_up_to_the_cap() {
        let p = plan("[0, 1]");
        let mut d = Dispatcher::new(&p, &vec![false; p.runs.len()]);
        let t0 = d.take_next().unwrap();
        let t1 = d.take_next().unwrap();
        d.finish(t0, true);
        d.finish(t1, true);
        let same = |a: usize, b: usize| {
            p.runs[b].role == Role::Student && p.runs[a].teacher == p.runs[b].teacher
        };
        // the baselines come first in plan order and are not grouped
        let b0 = d.take_next().unwrap();
        assert_eq!(p.runs[b0].role, Role::Baseline);
        let first = d.take_next().unwrap();
        assert_eq!(p.runs[first].id, "student-T1-a0.5-s0");
        let group = d.take_group(first, 8, &same);
        let ids: Vec<&str> = group.iter().map(|&i| p.runs[i].id.as_str()).collect();
        assert_eq!(ids, ["student-T4-a0.5-s0"], "only seed 0's students join");
        let again = d.take_next().unwrap();
        assert_eq!(p.runs[again].role, Role::Baseline);
        let s1 = d.take_next().unwrap();
        assert!(d.take_group(s1, 0, &same).is_empty(), "the cap holds");
    }

    #[test]
    fn failed_teacher_blocks_only_its_students_and_retry_reruns_failed() {
        let p = plan("[0, 1]");
        let mut d = Dispatcher::new(&p, &vec![false; p.runs.len()]);
        let t0 = d.take_next().unwrap();
        let t1 = d.take_next().unwrap();
        d.finish(t0, false);
        d.finish(t1, true);
        while let Some(i) = d.take_next() {
            assert!(
                p.runs[i].seed == 1 || p.runs[i].role == Role::Baseline,
                "{} ran without its teacher",
                p.runs[i].id
            );
            d.finish(i, true);
        }
        let blocked: Vec<_> = d.blocked().iter().map(|&i| p.runs[i].id.clone()).collect();
        assert_eq!(blocked, ["student-T1-a0.5-s0", "student-T4-a0.5-s0"]);
        // a rerun: everything done stays done, the failed teacher and its students run again
        let done: Vec<bool> = d.state.iter().map(|s| *s == RunState::Done).collect();
        let mut again = Dispatcher::new(&p, &done);
        assert_eq!(again.take_next(), Some(t0));
        assert_eq!(again.take_next(), None);
        again.finish(t0, true);
        assert_eq!(p.runs[again.take_next().unwrap()].id, "student-T1-a0.5-s0");
    }
}

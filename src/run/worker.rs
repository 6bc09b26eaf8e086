//! The worker side of the job protocol ([`super::job`]): jobs in on stdin, messages out on stdout.
//! [`main`] is the loop of a worker process (the hidden `kd-sweep __worker` command); the
//! coordinator's side is [`super::coordinator`].
//!
//! A worker is bound to one device and a fixed number of intra-op threads for its whole life. On a GPU
//! the coordinator pins it with `CUDA_VISIBLE_DEVICES`, so it sees its GPU as `cuda:0` and creates no
//! context on any other. A job ends in exactly one [`Outcome`] per run.

use super::exec::{self, WorkerState};
use super::job::{Job, Outcome, WorkerMsg, PREFIX};
use std::io::{BufRead, Write};
use std::sync::atomic::Ordering;

fn send(msg: &WorkerMsg) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    // The coordinator going away ends the worker through PDEATHSIG; nothing to do on error here.
    let _ = writeln!(
        out,
        "{PREFIX}{}",
        serde_json::to_string(msg).unwrap_or_default()
    );
    let _ = out.flush();
}

/// Testing hook: `KD_SWEEP_SLOW_WORKER_START=<ms>` makes a worker wait that long before it can take
/// a signal, as one loading libtorch or initialising CUDA does.
fn slow_start() {
    if let Some(ms) = std::env::var("KD_SWEEP_SLOW_WORKER_START")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

/// The worker process's main loop: jobs in on stdin, messages out on stdout.
pub fn main(threads: i32) -> anyhow::Result<()> {
    tch::set_num_threads(threads);
    tch::set_num_interop_threads(1);
    slow_start();
    // SIGTERM (from the coordinator's first Ctrl-C) stops the current run at its next step; one
    // sent before this point was held (the coordinator starts workers with it blocked) and arrives now
    let _ = ctrlc::set_handler(|| crate::train::STOP.store(true, Ordering::Relaxed));
    // a held one is a stop now, not whenever the handler's thread takes it
    if super::coordinator::sigterm_held() {
        crate::train::STOP.store(true, Ordering::Relaxed);
    }
    super::coordinator::let_sigterm_through();
    let mut state = WorkerState::default();
    for line in std::io::stdin().lock().lines() {
        let job: Job = serde_json::from_str(&line?)?;
        if crate::train::STOP.load(Ordering::Relaxed) {
            // stopped before it began: nothing loaded, nothing recorded; each run goes again later
            for (index, _) in job.runs() {
                send(&WorkerMsg::Finished {
                    index,
                    outcome: Outcome::Interrupted,
                });
            }
            break;
        }
        let of = job.run.phase(&job.sweep).epochs;
        let results = exec::execute_job(&job, &mut state, &mut |index, stats| {
            send(&WorkerMsg::Epoch {
                index,
                of,
                stats: stats.clone(),
            })
        });
        let mut poisoned = None;
        for (index, outcome) in results {
            if let Outcome::Recorded(r) = &outcome {
                if job.device.is_cuda() {
                    poisoned = poisoned.or_else(|| {
                        r.error
                            .as_deref()
                            .filter(|e| crate::platform::device::poisons_context(e))
                            .map(String::from)
                    });
                }
            }
            send(&WorkerMsg::Finished { index, outcome });
        }
        if let Some(reason) = poisoned {
            send(&WorkerMsg::Poisoned { reason });
            break;
        }
        if crate::train::STOP.load(Ordering::Relaxed) {
            break;
        }
    }
    Ok(())
}

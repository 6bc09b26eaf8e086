//! Progress behind one small interface. On a terminal: an overall bar (runs done / total, elapsed,
//! ETA) and one line per worker; otherwise one plain line per finished run; with `--quiet`, nothing.
//! Training code reports events here; it never formats terminal output itself.

use crate::store::{RunRecord, Status};
use crate::train::EpochStats;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};

enum Mode {
    Bars {
        multi: MultiProgress,
        overall: ProgressBar,
        workers: Vec<ProgressBar>,
    },
    Plain,
    Quiet,
}

pub struct Progress {
    mode: Mode,
    total: usize,
    done: AtomicUsize,
}

impl Progress {
    /// `--quiet`: nothing but errors and warnings.
    pub fn is_quiet(&self) -> bool {
        matches!(self.mode, Mode::Quiet)
    }

    /// `total` runs in the plan, `done` of them already finished; one worker line per device entry.
    pub fn new(total: usize, done: usize, devices: Vec<String>, quiet: bool) -> Progress {
        let mode = if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{bar:30.cyan/blue} {pos}/{len} runs  {elapsed_precise} elapsed  ETA {eta}  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            let overall = multi.add(ProgressBar::new(total as u64).with_style(style));
            overall.set_position(done as u64);
            let line = ProgressStyle::with_template("  {prefix:>8} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            let workers = devices
                .iter()
                .map(|d| {
                    let b = multi.add(ProgressBar::new(1).with_style(line.clone()));
                    b.set_prefix(d.clone());
                    b.set_message("idle");
                    b
                })
                .collect();
            Mode::Bars {
                multi,
                overall,
                workers,
            }
        } else {
            Mode::Plain
        };
        Progress {
            mode,
            total,
            done: AtomicUsize::new(done),
        }
    }

    /// A message that must not be lost among the bars (warnings, notices).
    pub fn note(&self, msg: &str) {
        match &self.mode {
            Mode::Bars { multi, .. } => {
                let _ = multi.println(msg);
            }
            Mode::Plain => eprintln!("{msg}"),
            Mode::Quiet => {
                if msg.starts_with("warning") || msg.starts_with("error") {
                    eprintln!("{msg}");
                }
            }
        }
    }

    pub fn started(&self, worker: usize, run_id: &str) {
        if let Mode::Bars { workers, .. } = &self.mode {
            if let Some(b) = workers.get(worker) {
                b.set_message(format!("{run_id}: starting"));
            }
        }
    }

    pub fn epoch(&self, worker: usize, run_id: &str, s: &EpochStats, of: u32) {
        if let Mode::Bars { workers, .. } = &self.mode {
            if let Some(b) = workers.get(worker) {
                b.set_message(format!(
                    "{run_id}: epoch {}/{of}  loss {:.4}  val {:.2}%",
                    s.epoch, s.train_loss, s.val_acc
                ));
            }
        }
    }

    pub fn finished(&self, worker: usize, r: &RunRecord) {
        let n = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let line = match r.status {
            // a teacher used as it is ([teacher] epochs = 0)
            Status::Done if r.epochs == 0 => format!(
                "[{n}/{}] {} evaluated as loaded in {:.1}s on {}: validation {:.2}%, test {:.2}%",
                self.total,
                r.run_id,
                r.seconds,
                r.device,
                r.val_acc.unwrap_or(f64::NAN),
                r.test_acc.unwrap_or(f64::NAN)
            ),
            Status::Done => format!(
                "[{n}/{}] {} done in {:.1}s on {}: test {:.2}% (at best val epoch {}: {:.2}%)",
                self.total,
                r.run_id,
                r.seconds,
                r.device,
                r.test_acc.unwrap_or(f64::NAN),
                r.best_epoch.unwrap_or(0),
                r.test_acc_at_best.unwrap_or(f64::NAN)
            ),
            Status::Pruned => format!(
                "[{n}/{}] {} reached epoch {} in {:.1}s on {}: validation {:.2}%",
                self.total,
                r.run_id,
                r.epochs,
                r.seconds,
                r.device,
                r.val_acc.unwrap_or(f64::NAN)
            ),
            Status::Failed => format!(
                "[{n}/{}] {} FAILED: {}",
                self.total,
                r.run_id,
                r.error.as_deref().unwrap_or("?")
            ),
        };
        match &self.mode {
            Mode::Bars {
                multi,
                overall,
                workers,
            } => {
                overall.inc(1);
                if let Some(b) = workers.get(worker) {
                    b.set_message("idle");
                }
                if r.status == Status::Failed {
                    let _ = multi.println(line);
                }
            }
            Mode::Plain => eprintln!("{line}"),
            Mode::Quiet => {
                if r.status == Status::Failed {
                    eprintln!("{line}");
                }
            }
        }
    }

    pub fn finish(&self) {
        if let Mode::Bars {
            overall, workers, ..
        } = &self.mode
        {
            for b in workers {
                b.finish_and_clear();
            }
            overall.finish();
        }
    }
}

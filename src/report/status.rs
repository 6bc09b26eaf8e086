//! `kd-sweep status`: what a sweep folder holds right now — runs done, failed (with reasons), running
//! (what they last reported), pending — the cells finished so far with the current best, and an ETA
//! from the measured run times. It reads the manifest, the records and the progress files that
//! coordinators and `run --task` keep, so it works from another terminal or node while `kd-sweep run`
//! or a SLURM job array is writing the folder. It never writes anything.

use crate::plan::Role;
use crate::report::{self, Meta};
use crate::store::{self, InFlight, Manifest, RunRecord, Status, Store};
use std::fmt::Write as _;
use std::path::Path;

/// A run's state as `status` sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    Done(Box<RunRecord>),
    Failed(Box<RunRecord>),
    /// Paused by a halving search at a rung: pruned, unless a later rung promotes it.
    Pruned(Box<RunRecord>),
    Running(InFlight),
    /// A progress file whose writer is gone (killed, or a node that stopped): it will be redone.
    Stalled(InFlight),
    Pending,
}

/// One look at a sweep folder.
pub struct Snapshot {
    pub manifest: Manifest,
    /// The plan's runs in order: (id, role, state).
    pub runs: Vec<(String, Option<Role>, Seen)>,
    pub now: u64,
    /// Runs not in flight that have a checkpoint to continue from.
    pub resumable: usize,
}

fn role_of(id: &str) -> Option<Role> {
    [Role::Teacher, Role::Baseline, Role::Student]
        .into_iter()
        .find(|r| id.starts_with(&format!("{}-", r.name())))
}

/// Reads a sweep's results folder as it is now.
pub fn read(dir: &Path) -> anyhow::Result<Snapshot> {
    let other = "no manifest.json: not a sweep's results folder, or the sweep has not started yet \
                 (it is written when `kd-sweep run` or the first `run --task` starts)";
    if let Some(why) = store::folders::not_a_sweep(dir, other) {
        return Err(crate::util::UsageError(why).into());
    }
    let manifest = Manifest::read(dir).map_err(anyhow::Error::msg)?;
    let st = Store {
        root: dir.parent().unwrap_or(Path::new(".")).to_path_buf(),
        dir: dir.to_path_buf(),
    };
    let progress = st.read_progress();
    let now = crate::files::unix_now();
    let runs = manifest
        .plan
        .iter()
        .map(|r| {
            let path = dir
                .join("records")
                .join(store::record_file_name(&r.id, &r.key));
            let record = std::fs::read(&path)
                .ok()
                .and_then(|b| RunRecord::from_json(&b).ok());
            let state = match record {
                Some(rec) if rec.status == Status::Done => Seen::Done(Box::new(rec)),
                Some(rec) => match progress.iter().find(|p| p.key == r.key) {
                    // a failed run being retried, or a paused one promoted
                    Some(p) if p.alive(now) => Seen::Running(p.clone()),
                    _ if rec.status == Status::Pruned => Seen::Pruned(Box::new(rec)),
                    _ => Seen::Failed(Box::new(rec)),
                },
                None => match progress.iter().find(|p| p.key == r.key) {
                    Some(p) if p.alive(now) => Seen::Running(p.clone()),
                    Some(p) => Seen::Stalled(p.clone()),
                    None => Seen::Pending,
                },
            };
            (r.id.clone(), role_of(&r.id), state)
        })
        .collect::<Vec<_>>();
    let resumable = (manifest.plan.iter().zip(&runs))
        .filter(|(_, (_, _, s))| matches!(s, Seen::Pending | Seen::Stalled(_)))
        .filter(|(r, _)| store::checkpoint::reached(&st, &r.id, &r.key).is_some())
        .count();
    Ok(Snapshot {
        manifest,
        runs,
        now,
        resumable,
    })
}

fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

impl Snapshot {
    fn count(&self, f: impl Fn(&Seen) -> bool) -> usize {
        self.runs.iter().filter(|(_, _, s)| f(s)).count()
    }

    /// Seconds left: the mean measured time of a finished run of each role, for every pending run and
    /// the unfinished part of every running one, spread over the sweep's workers. `None` until a run
    /// of every role that is still to do has finished.
    pub fn eta_secs(&self) -> Option<f64> {
        let mean = |role: Option<Role>| {
            let xs: Vec<f64> = self
                .runs
                .iter()
                .filter_map(|(_, r, s)| match s {
                    Seen::Done(rec) if *r == role => Some(rec.seconds),
                    _ => None,
                })
                .collect();
            (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
        };
        let mut left = 0.0;
        for (_, role, s) in &self.runs {
            left += match s {
                Seen::Pending | Seen::Stalled(_) => mean(*role)?,
                Seen::Running(p) => {
                    let done = p.epoch as f64 / p.of.max(1) as f64;
                    mean(*role)? * (1.0 - done)
                }
                _ => 0.0,
            };
        }
        Some(left / self.manifest.devices.len().max(1) as f64)
    }

    /// The failures grouped by reason, then each run in flight with where it is.
    fn failures_and_running(&self) -> String {
        let mut o = String::new();
        // failures, grouped by reason
        let mut reasons: Vec<(String, usize)> = Vec::new();
        for (_, _, s) in &self.runs {
            if let Seen::Failed(r) = s {
                let why = r.error.clone().unwrap_or_default();
                match reasons.iter_mut().find(|(w, _)| *w == why) {
                    Some((_, n)) => *n += 1,
                    None => reasons.push((why, 1)),
                }
            }
        }
        for (why, n) in &reasons {
            let _ = writeln!(o, "  failed ×{n}: {why}");
        }
        for (id, _, s) in &self.runs {
            if let Seen::Running(p) = s {
                let val = p
                    .val_acc
                    .map(|v| format!(", val {v:.2}%"))
                    .unwrap_or_default();
                let _ = writeln!(
                    o,
                    "  running: {id} on {} ({}), epoch {}/{}{val}, {} so far",
                    p.device,
                    p.host,
                    p.epoch,
                    p.of,
                    duration(self.now.saturating_sub(p.started_at) as f64)
                );
            }
        }
        o
    }

    pub fn render(&self) -> String {
        let mut o = String::new();
        let m = &self.manifest;
        let total = self.runs.len();
        let done = self.count(|s| matches!(s, Seen::Done(_)));
        let failed = self.count(|s| matches!(s, Seen::Failed(_)));
        let running = self.count(|s| matches!(s, Seen::Running(_)));
        let stalled = self.count(|s| matches!(s, Seen::Stalled(_)));
        let pending = self.count(|s| matches!(s, Seen::Pending));
        let pruned = self.count(|s| matches!(s, Seen::Pruned(_)));
        let pruned_text = if pruned > 0 {
            format!(", {pruned} paused or pruned by the search")
        } else {
            String::new()
        };
        let adaptive = m.sweep.search.is_adaptive();
        // a search with nothing in flight: its untrained runs are the ones it did not choose (or,
        // after an interruption, has not reached yet) — not work waiting in a queue
        let (waiting, word) = if adaptive && running == 0 && stalled == 0 {
            (pending, "not trained")
        } else {
            (pending + stalled, "pending")
        };
        let _ = writeln!(
            o,
            "{} ({}): {total} runs — {done} done, {failed} failed{pruned_text}, {running} running, {waiting} {word}",
            m.name,
            m.sweep.data.dataset.name(),
        );
        if adaptive && word == "not trained" && waiting > 0 {
            o.push_str(
                "  (a [search] sweep: runs it did not choose are never trained; if it was interrupted, \
                 `kd-sweep run` takes it up where it stopped)\n",
            );
        } else if adaptive {
            o.push_str(
                "  (a [search] sweep: the runs it does not choose are never trained and stay pending; no ETA)\n",
            );
        }
        if self.resumable > 0 && running + stalled + pending > 0 {
            let _ = writeln!(
                o,
                "  ({} of the runs not in flight continue from their checkpoints when the sweep runs again)",
                self.resumable
            );
        }
        if stalled > 0 {
            let _ = writeln!(
                o,
                "  ({stalled} of the pending were started by a process that is gone; they run again on the next `kd-sweep run`)"
            );
        }
        o.push_str(&self.failures_and_running());
        // runs still to train (a failed run waits for the next `kd-sweep run`, not for this one)
        let left = waiting + running > 0;
        match self.eta_secs().filter(|_| !adaptive) {
            _ if adaptive => {}
            Some(s) if left => {
                let _ = writeln!(
                    o,
                    "ETA: about {} (measured run times, {} worker(s))",
                    duration(s),
                    m.devices.len().max(1)
                );
            }
            None if left => {
                o.push_str("ETA: unknown until a run of each remaining role has finished\n");
            }
            _ => {}
        }
        // the cells finished so far
        let records: Vec<&RunRecord> = self
            .runs
            .iter()
            .filter_map(|(_, _, s)| match s {
                Seen::Done(r) => Some(&**r),
                _ => None,
            })
            .collect();
        let s = report::summarize(
            &records,
            m.sweep.data.test_subset.or(Some(m.data.test_images)),
        );
        if !s.cells.is_empty() {
            o.push('\n');
            // nothing in flight or waiting (a search's unchosen runs never train): final, not "so far"
            let over = running + stalled == 0 && (adaptive || pending == 0);
            o.push_str(&cells_so_far(&Meta::of(&m.sweep), &s, over));
        }
        o
    }
}

/// The finished cells, best by validation first (at most 10), and the current best.
fn cells_so_far(meta: &Meta, s: &report::Summary, over: bool) -> String {
    let so_far = if over { "" } else { " so far" };
    let mut o = String::new();
    for (name, st) in [("teacher", s.teacher), ("baseline", s.baseline)] {
        if let Some(st) = st {
            let _ = writeln!(o, "{name}: test {} % ({} seed(s))", st.show(), st.n);
        }
    }
    let mut order: Vec<usize> = (0..s.cells.len()).collect();
    order.sort_by(|&a, &b| s.cells[b].val.mean.total_cmp(&s.cells[a].val.mean));
    let _ = writeln!(
        o,
        "cells with a finished run: {} (of the seeds {:?})",
        s.cells.len(),
        meta.seeds
    );
    o.push_str("  setting              val %    test %          gain  seeds\n");
    for &i in order.iter().take(10) {
        let c = &s.cells[i];
        let gain = c
            .gain
            .map(|g| format!("{:+.2}", g.mean))
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "  {:<18} {:>7.2}  {:>14}  {:>6}  {}{}",
            c.label(),
            c.val.mean,
            c.test.show(),
            gain,
            c.test.n,
            if Some(i) == s.chosen {
                format!("  ◀ best{so_far}")
            } else {
                String::new()
            }
        );
    }
    if s.cells.len() > 10 {
        let _ = writeln!(o, "  … {} more", s.cells.len() - 10);
    }
    let _ = writeln!(o, "verdict{so_far}: {}", s.verdict);
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(5.4), "5s");
        assert_eq!(duration(75.0), "1m15s");
        assert_eq!(duration(3.0 * 3600.0 + 125.0), "3h02m");
    }

    #[test]
    fn roles_come_from_run_ids() {
        assert_eq!(role_of("teacher-s0"), Some(Role::Teacher));
        assert_eq!(role_of("student-T4-a0.5-s1"), Some(Role::Student));
        assert_eq!(role_of("baseline-s3"), Some(Role::Baseline));
    }
}

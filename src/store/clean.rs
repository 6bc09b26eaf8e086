//! `kd-sweep clean`: removes from a sweep's folder what is no longer needed, and nothing that is.
//!
//! Removed: the checkpoints of runs whose record says they finished (`Store::save_record` removes
//! them itself; a process killed between the two leaves them) and of runs a search pruned — unless
//! the sweep, as its manifest last described it, would train them further (a search stopped before
//! its end, or a grid run after a search: [`crate::plan::search::decide`] says which); progress files
//! whose writer is gone ([`InFlight::alive`]); `checkpoints/` and `progress/` once empty. Never
//! touched: records, `runs.csv`, `epochs.csv`, the manifest, the reports and charts, the teacher
//! cache, SLURM's folder, and writers' temporary files (removed by the next run that finds their
//! writer gone). The folder's coordinator lock is held while cleaning, so no sweep starts meanwhile,
//! and a sweep that runs there makes `clean` refuse (in a results root: skip that folder, said).
//! `--dry-run` writes nothing, the lock included: it only reads whether a live sweep holds it.

use super::folders::{classify, Folder};
use super::{CoordinatorLock, InFlight, LockError, Manifest, RunRecord, Status, MANIFEST};
use crate::files::unix_now;
use crate::util::UsageError;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// One file or folder that goes, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    pub path: PathBuf,
    pub bytes: u64,
    pub why: &'static str,
}

/// What cleaning one sweep's folder removed (or, in a dry run, would remove).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cleaned {
    pub dir: PathBuf,
    pub removed: Vec<Removal>,
    /// Checkpoints of pruned runs kept because the sweep trains them further.
    pub kept_paused: usize,
}

const FINISHED: &str = "checkpoint of a finished run";
const PRUNED: &str = "checkpoint of a run the search pruned";
const STALE: &str = "progress file of a run no longer in flight";
const EMPTY: &str = "empty folder";

/// Cleans `target` — a sweep's folder, or a results root (every sweep in it) — removing nothing
/// when `dry_run`. Refused, with nothing removed, while a sweep runs in the sweep's folder; in a
/// results root, the folders where one runs are left alone (and `warn` says so).
pub fn clean(target: &Path, dry_run: bool, warn: &dyn Fn(&str)) -> anyhow::Result<Vec<Cleaned>> {
    // (the folders, whether `target` is one sweep's)
    let (dirs, one): (Vec<PathBuf>, bool) = match classify(target) {
        Folder::Sweep => (vec![target.to_path_buf()], true),
        Folder::Root(names) => (names.iter().map(|n| target.join(n)).collect(), false),
        Folder::Missing => {
            return Err(UsageError(format!("{}: no such folder", target.display())).into())
        }
        Folder::Other => {
            return Err(UsageError(format!(
                "{}: neither a sweep's results folder (it would hold {MANIFEST}) nor a results \
                 root (its folders would be sweeps'); give one of those, such as results/quick \
                 or results",
                target.display()
            ))
            .into())
        }
    };
    // every lock first: in a sweep's folder a running sweep stops it before anything is removed;
    // in a results root that sweep's folder is left alone and said, the others cleaned
    let mut locks = Vec::new();
    let mut cleanable = Vec::new();
    for d in &dirs {
        // a dry run only reads the lock: a dead owner's is left for the next sweep to take over
        let lock = match dry_run {
            true => CoordinatorLock::check(d).map(|()| None),
            false => CoordinatorLock::acquire(d, warn).map(Some),
        };
        match lock {
            Ok(l) => {
                locks.extend(l);
                cleanable.push(d.clone());
            }
            Err(LockError::Held { owner, age, .. }) => {
                let running = format!(
                    "{}: a sweep is running there (kd-sweep {})",
                    d.display(),
                    owner.held(age)
                );
                if one {
                    anyhow::bail!("{running}; clean it once that has ended, or stop it first");
                }
                warn(&format!(
                    "{running}: left as it is; clean it once that has ended"
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let dirs = cleanable;
    let mut out = Vec::new();
    for d in &dirs {
        let (removed, kept_paused) = what_goes(d);
        if !dry_run {
            for r in &removed {
                let gone = match r.why {
                    EMPTY => std::fs::remove_dir(&r.path),
                    _ => std::fs::remove_file(&r.path),
                };
                // a file already gone (a SLURM task's run finished meanwhile) is fine
                if let Err(e) = gone.or_else(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => Ok(()),
                    _ => Err(e),
                }) {
                    anyhow::bail!("cannot remove {}: {e}", r.path.display());
                }
            }
        }
        out.push(Cleaned {
            dir: d.clone(),
            removed,
            kept_paused,
        });
    }
    drop(locks);
    Ok(out)
}

/// What goes in the sweep folder `dir`, and how many pruned runs' checkpoints stay.
fn what_goes(dir: &Path) -> (Vec<Removal>, usize) {
    let continued = continued(dir);
    let mut out = Vec::new();
    let mut kept_paused = 0;
    let records = dir.join("records");
    let checkpoints = dir.join("checkpoints");
    for (path, stem) in files(&checkpoints) {
        let Some(stem) = stem
            .strip_suffix(".json")
            .or_else(|| stem.strip_suffix(".safetensors"))
        else {
            continue;
        };
        let record = std::fs::read(records.join(format!("{stem}.json")))
            .ok()
            .and_then(|b| RunRecord::from_json(&b).ok());
        let why = match record {
            Some(r) if r.status == Status::Done => FINISHED,
            Some(r) if r.status == Status::Pruned => match &continued {
                Some(keys) if !keys.contains(&r.key) => PRUNED,
                _ => {
                    // the sweep goes on with it (or its plan cannot be read back): kept
                    kept_paused += path.extension().is_some_and(|e| e == "json") as usize;
                    continue;
                }
            },
            // in flight, interrupted, or failed (a retry continues from it)
            _ => continue,
        };
        out.push(removal(path, why));
    }
    let now = unix_now();
    let progress = dir.join("progress");
    for (path, _) in files(&progress) {
        let report: Option<InFlight> = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        // written atomically: one that does not parse is no live writer's
        if !report.is_some_and(|p| p.alive(now)) {
            out.push(removal(path, STALE));
        }
    }
    for folder in [checkpoints, progress] {
        let left = std::fs::read_dir(&folder).map(|rd| {
            rd.flatten()
                .filter(|e| !out.iter().any(|r| r.path == e.path()))
                .count()
        });
        if left.is_ok_and(|n| n == 0) {
            out.push(Removal {
                path: folder,
                bytes: 0,
                why: EMPTY,
            });
        }
    }
    (out, kept_paused)
}

/// The keys of the runs the sweep would train next, as its manifest last described it; `None` when
/// that cannot be worked out (then no pruned run's checkpoint is removed).
fn continued(dir: &Path) -> Option<HashSet<String>> {
    use crate::plan::search::{decide, Reached};
    let m = Manifest::read(dir).ok()?;
    let plan = crate::plan::build_at_version(&m.sweep, &m.data.fingerprint, m.model_version);
    let same = plan.runs.len() == m.plan.len()
        && plan
            .runs
            .iter()
            .zip(&m.plan)
            .all(|(a, b)| a.id == b.id && a.key == b.key);
    if !same {
        return None;
    }
    let reached: Vec<Reached> = plan
        .runs
        .iter()
        .map(|r| {
            let path = dir
                .join("records")
                .join(super::record_file_name(&r.id, &r.key));
            let record = std::fs::read(path)
                .ok()
                .and_then(|b| RunRecord::from_json(&b).ok());
            let vals = |r: &RunRecord| r.history.iter().map(|e| e.val_acc).collect();
            match record {
                Some(rec) if rec.status == Status::Done => Reached::done(vals(&rec)),
                Some(rec) if rec.status == Status::Pruned => Reached::paused(vals(&rec)),
                _ => Reached::default(),
            }
        })
        .collect();
    let next = decide(&plan, &m.sweep, &reached).next;
    Some(
        next.map(|s| {
            s.runs
                .iter()
                .map(|&(i, _)| plan.runs[i].key.clone())
                .collect()
        })
        .unwrap_or_default(),
    )
}

/// The plain files of `dir` (writers' hidden temporary files left out), with their names, sorted.
fn files(dir: &Path) -> Vec<(PathBuf, String)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<(PathBuf, String)> = rd
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| (e.path(), e.file_name().to_string_lossy().into_owned()))
        .filter(|(_, n)| !n.starts_with('.'))
        .collect();
    v.sort();
    v
}

fn removal(path: PathBuf, why: &'static str) -> Removal {
    let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    Removal { path, bytes, why }
}

/// Bytes as people read them: `532 B`, `4.0 KiB`, `12.3 MiB`, `1.50 GiB`.
pub fn size(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..=1023 => format!("{bytes} B"),
        1024..=1_048_575 => format!("{:.1} KiB", b / 1024.0),
        1_048_576..=1_073_741_823 => format!("{:.1} MiB", b / 1_048_576.0),
        _ => format!("{:.2} GiB", b / 1_073_741_824.0),
    }
}

/// What `kd-sweep clean` prints: each removal, then per sweep and in all what was freed.
pub fn render(cleaned: &[Cleaned], dry_run: bool) -> String {
    use std::fmt::Write;
    let (verb, freed) = match dry_run {
        true => ("would remove", "would free"),
        false => ("removed", "freed"),
    };
    let mut o = String::new();
    let mut total = 0;
    for c in cleaned {
        for r in &c.removed {
            let what = match r.why {
                EMPTY => r.why.to_string(),
                _ => format!("{}, {}", size(r.bytes), r.why),
            };
            let _ = writeln!(o, "{verb} {} ({what})", r.path.display());
        }
        let bytes: u64 = c.removed.iter().map(|r| r.bytes).sum();
        total += bytes;
        let files = c.removed.iter().filter(|r| r.why != EMPTY).count();
        let folders = c.removed.len() - files;
        let _ = match files {
            0 if folders > 0 => writeln!(
                o,
                "{}: {verb} {folders} empty folder(s), no files",
                c.dir.display()
            ),
            0 => writeln!(o, "{}: nothing to remove", c.dir.display()),
            n => writeln!(
                o,
                "{}: {verb} {n} file(s), {freed} {bytes} bytes ({})",
                c.dir.display(),
                size(bytes)
            ),
        };
        if c.kept_paused > 0 {
            let _ = writeln!(
                o,
                "{}: kept the checkpoints of {} paused run(s) the sweep trains further",
                c.dir.display(),
                c.kept_paused
            );
        }
    }
    if cleaned.len() > 1 {
        let _ = writeln!(
            o,
            "{} sweeps: {freed} {total} bytes ({})",
            cleaned.len(),
            size(total)
        );
    }
    o
}

//! Stage 5: what lands on disk. One JSON record per finished run, written atomically (temporary file,
//! fsync, rename) the moment the run ends and carrying its own checksum; a content-addressed cache of
//! trained teachers (weights and training-set logits) shared by every sweep under a results root;
//! `runs.csv`, `epochs.csv` and `manifest.json`, always derived from the records.
//!
//! ```text
//! <results>/.cache/teachers/<key>/{weights.safetensors, logits.safetensors, entry.json}
//! <results>/<name>/records/<run id>.<key prefix>.json
//! <results>/<name>/{runs.csv, epochs.csv, manifest.json, charts/}
//! ```

pub mod checkpoint;
pub mod clean;
pub mod folders;
mod progress;

use crate::files::{host, tmp_tag, unix_now, write_atomic, writer_alive};
use crate::plan::RunSpec;
pub use crate::record::{device_class, RunRecord, Status};
use crate::train::{EpochStats, Fitted};
use crate::util::hex;
pub use progress::InFlight;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

impl RunRecord {
    fn base(run: &RunSpec, epochs: u32, seconds: f64, device: &str) -> RunRecord {
        RunRecord {
            run_id: run.id.clone(),
            role: run.role,
            method: run.method(),
            seed: run.seed,
            temperature: run.coord.temperature.as_ref().map(|g| g.text.clone()),
            alpha: run.coord.alpha.as_ref().map(|g| g.text.clone()),
            beta: run.coord.beta.as_ref().map(|g| g.text.clone()),
            gamma: run.coord.gamma.as_ref().map(|g| g.text.clone()),
            temperatures: run
                .coord
                .temperatures
                .iter()
                .map(|g| g.text.clone())
                .collect(),
            zscore: run.coord.zscore,
            agreement: None,
            kl_to_teacher: None,
            key: run.key.clone(),
            epochs,
            status: Status::Done,
            error: None,
            history: Vec::new(),
            val_acc: None,
            test_acc: None,
            best_epoch: None,
            best_val_acc: None,
            test_acc_at_best: None,
            seconds,
            device: device.to_string(),
            gpu: None,
            cpu: None,
            earlier_machines: Vec::new(),
            threads: None,
            model: run.coord.model,
            teacher_epoch: run.coord.teacher_epoch,
            snapshots: Vec::new(),
            teacher_model: run.teacher_model,
            numerics: run.numerics,
            deterministic: run.deterministic,
            cuda_graphs: run.cuda_graphs,
            reused_from: None,
            finished_at: unix_now(),
            checksum: String::new(),
        }
    }

    /// A finished run: its last epoch, its best epoch (the first with the highest validation
    /// accuracy) and the test accuracies measured once at the end, of both.
    pub fn done(run: &RunSpec, epochs: u32, fit: Fitted, seconds: f64, device: &str) -> RunRecord {
        let mut r = Self::base(run, epochs, seconds, device);
        if let Some(last) = fit.history.last() {
            r.val_acc = Some(last.val_acc);
            r.test_acc = Some(fit.test_acc);
        }
        if let Some(b) = fit.history.iter().find(|e| e.epoch == fit.best_epoch) {
            r.best_epoch = Some(b.epoch);
            r.best_val_acc = Some(b.val_acc);
            r.test_acc_at_best = Some(fit.test_acc_at_best);
        }
        if let (None, Some(a)) = (fit.history.last(), fit.as_loaded) {
            // evaluated as loaded: its one evaluation is its last and its best (epoch 0)
            r.val_acc = Some(a.val_acc);
            r.test_acc = Some(fit.test_acc);
            r.best_epoch = Some(0);
            r.best_val_acc = Some(a.val_acc);
            r.test_acc_at_best = Some(fit.test_acc_at_best);
        }
        if let Some(i) = fit.imitation {
            r.agreement = Some(i.agreement);
            r.kl_to_teacher = Some(i.kl);
        }
        r.history = fit.history;
        r
    }

    /// A run a halving search stopped after epoch `history.len()`: its epochs and its best one so
    /// far, no test accuracy (the test set is evaluated only for runs that finish).
    pub fn pruned(
        run: &RunSpec,
        history: Vec<EpochStats>,
        seconds: f64,
        device: &str,
    ) -> RunRecord {
        let mut r = Self::base(run, history.len() as u32, seconds, device);
        r.status = Status::Pruned;
        r.val_acc = history.last().map(|e| e.val_acc);
        if let Some(b) = crate::train::best_index(&history).map(|i| &history[i]) {
            r.best_epoch = Some(b.epoch);
            r.best_val_acc = Some(b.val_acc);
        }
        r.history = history;
        r
    }

    pub fn failed(
        run: &RunSpec,
        epochs: u32,
        reason: &str,
        seconds: f64,
        device: &str,
    ) -> RunRecord {
        let mut r = Self::base(run, epochs, seconds, device);
        r.status = Status::Failed;
        r.error = Some(reason.to_string());
        r
    }
}

/// What is on disk for one run.
#[derive(Debug)]
pub enum Stored {
    Missing,
    Found(Box<RunRecord>),
    /// A record that exists but cannot be trusted; it will be redone.
    Corrupt(PathBuf, String),
}

/// Where a folder dataset's decoded images are cached under the results root `root`
/// (`<root>/.cache/data/`, beside the teacher cache).
pub fn data_cache(root: &Path) -> PathBuf {
    root.join(".cache").join("data")
}

/// The results folder of one sweep, and the cache shared under its root.
#[derive(Debug, Clone)]
pub struct Store {
    pub root: PathBuf,
    pub dir: PathBuf,
}

impl Store {
    pub fn new(root: &Path, name: &str) -> Store {
        Store {
            root: root.to_path_buf(),
            dir: root.join(name),
        }
    }

    pub fn records_dir(&self) -> PathBuf {
        self.dir.join("records")
    }

    pub fn record_path(&self, run: &RunSpec) -> PathBuf {
        self.records_dir().join(record_file_name(&run.id, &run.key))
    }

    pub fn load_record(&self, run: &RunSpec) -> Stored {
        let path = self.record_path(run);
        match std::fs::read(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Stored::Missing,
            Err(e) => Stored::Corrupt(path, format!("unreadable ({e})")),
            Ok(bytes) => match RunRecord::from_json(&bytes) {
                Ok(r) if r.key == run.key && r.run_id == run.id => Stored::Found(Box::new(r)),
                Ok(_) => Stored::Corrupt(path, "belongs to another run".into()),
                Err(e) => Stored::Corrupt(path, e),
            },
        }
    }

    /// A finished record of `run` (the same key) in another sweep under this results root, with
    /// that sweep's folder name: the first in name order. Unreadable or unfinished records are
    /// passed over.
    pub fn find_elsewhere(&self, run: &RunSpec) -> Option<(String, RunRecord)> {
        let suffix = format!(".{}.json", &run.key[..run.key.len().min(16)]);
        let mut sweeps: Vec<PathBuf> = std::fs::read_dir(&self.root)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .filter(|d| *d != self.dir && d.is_dir())
            .filter(|d| {
                !d.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        sweeps.sort();
        for sweep in sweeps {
            let Ok(entries) = std::fs::read_dir(sweep.join("records")) else {
                continue;
            };
            for e in entries.flatten() {
                if !e.file_name().to_string_lossy().ends_with(&suffix) {
                    continue;
                }
                let Ok(Ok(r)) = std::fs::read(e.path()).map(|b| RunRecord::from_json(&b)) else {
                    continue;
                };
                if r.key == run.key && r.status == Status::Done {
                    let name = sweep.file_name()?.to_string_lossy().into_owned();
                    return Some((name, r));
                }
            }
        }
        None
    }

    pub fn save_record(&self, record: &RunRecord) -> std::io::Result<PathBuf> {
        let path = self
            .records_dir()
            .join(record_file_name(&record.run_id, &record.key));
        write_atomic(&path, &record.to_json())?;
        self.clear_progress(&record.run_id, &record.key);
        // a failed run keeps its checkpoint: a retry after a crash continues from it
        if record.status == Status::Done {
            checkpoint::remove(self, &record.run_id, &record.key);
        }
        Ok(path)
    }

    /// Checkpoints of runs in flight (see [`crate::store::checkpoint`]).
    pub fn checkpoints_dir(&self) -> PathBuf {
        self.dir.join("checkpoints")
    }

    /// Creates the sweep's folder (and its records/), or says which and what to do.
    pub fn create(&self) -> anyhow::Result<()> {
        let records = self.records_dir();
        std::fs::create_dir_all(&records).map_err(|e| {
            // a file where a folder must be: named, not the system's "Not a directory"
            let why = match records.ancestors().find(|a| a.is_file()) {
                Some(file) => format!("{} is a file, not a folder", file.display()),
                None => e.to_string(),
            };
            anyhow::anyhow!(
                "cannot create the results folder {}: {why}; choose another root with --results",
                self.dir.display()
            )
        })
    }

    pub fn progress_dir(&self) -> PathBuf {
        self.dir.join("progress")
    }

    /// Removes `checkpoints/` and `progress/` when they are empty (a finished sweep's working
    /// folders); a folder that still holds something (a paused run's checkpoint) stays.
    pub fn remove_empty_work_dirs(&self) {
        for d in [self.checkpoints_dir(), self.progress_dir()] {
            // remove_dir refuses a folder that is not empty: exactly the rule
            let _ = std::fs::remove_dir(d);
        }
    }

    fn progress_path(&self, id: &str, key: &str) -> PathBuf {
        self.progress_dir().join(record_file_name(id, key))
    }

    /// Best effort: progress is for people watching, never a reason to fail a run.
    pub fn write_progress(&self, p: &InFlight) {
        let _ = write_atomic(
            &self.progress_path(&p.run_id, &p.key),
            &serde_json::to_vec(p).unwrap_or_default(),
        );
    }

    pub fn clear_progress(&self, id: &str, key: &str) {
        let _ = std::fs::remove_file(self.progress_path(id, key));
    }

    /// Every progress file of the sweep that parses.
    pub fn read_progress(&self) -> Vec<InFlight> {
        let Ok(entries) = std::fs::read_dir(self.progress_dir()) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
            .collect()
    }

    pub fn teacher_dir(&self, key: &str) -> PathBuf {
        self.root.join(".cache").join("teachers").join(key)
    }
}

/// The file name of a run's record: `<run id>.<first 16 hex digits of its key>.json`. The key prefix
/// keeps a record of an edited run (same id, other settings) apart from the old one.
pub fn record_file_name(id: &str, key: &str) -> String {
    format!("{id}.{}.json", &key[..key.len().min(16)])
}

/// `manifest.json`: what a results folder is (the sweep as validated, where and with what it ran,
/// the plan's runs) so that `report` and `compare` need nothing else. Written and read through this
/// one type.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub sweep_file: PathBuf,
    /// The sweep file's text as it was when the sweep last ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep_text: Option<String>,
    pub sweep: crate::config::Sweep,
    pub kd_sweep_version: String,
    pub libtorch_version: String,
    pub model_version: u32,
    pub data: ManifestData,
    pub devices: Vec<crate::platform::device::Slot>,
    pub plan: Vec<PlannedRun>,
    pub runs: RunCounts,
    pub started_at: u64,
    pub finished_at: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestData {
    pub fingerprint: String,
    pub train_images: usize,
    pub test_images: usize,
    pub hold_out: String,
}

/// A run of the plan, as the manifest lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlannedRun {
    pub id: String,
    pub key: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunCounts {
    pub planned: usize,
    pub done: usize,
    pub failed: usize,
}

pub const MANIFEST: &str = "manifest.json";

impl Manifest {
    pub fn read(dir: &Path) -> Result<Manifest, String> {
        let path = dir.join(MANIFEST);
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| format!("{}: not a kd-sweep manifest ({e})", path.display()))
    }

    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        write_atomic(&dir.join(MANIFEST), &bytes)
    }
}

/// The one coordinator of a sweep folder: `<sweep>/.coordinator.lock`, created exclusively, holding
/// who owns it. A second `kd-sweep run` of the same folder refuses to start while the owner lives; a
/// lock left by a dead process (same host, pid gone — or, from another host, not refreshed for
/// [`CoordinatorLock::STALE_SECS`]) is taken over with a warning. `run --task`, `report`, `plan`,
/// `status` and `compare` never take it. Removed when the coordinator ends.
#[derive(Debug)]
pub struct CoordinatorLock {
    path: PathBuf,
    owner: LockOwner,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockOwner {
    pub host: String,
    pub pid: u32,
    pub since: u64,
}

impl LockOwner {
    /// Who holds a lock whose file changed `age` seconds ago, in words (a lock refreshes while its
    /// sweep runs; one that does not read yet is being written).
    pub fn held(&self, age: u64) -> String {
        match self.pid {
            0 => format!("its lock file, written {age} s ago, does not read yet"),
            pid => format!(
                "pid {pid} on host {}, its lock refreshed {age} s ago",
                self.host
            ),
        }
    }
}

/// Why a sweep folder cannot be coordinated by this process.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another kd-sweep ({by}) is running this sweep in {dir}; \
         wait for it, or stop it first (a second coordinator would train every run twice). \
         `kd-sweep status {dir}` shows its progress",
        by = .owner.held(*.age), dir = .dir.display()
    )]
    Held {
        owner: LockOwner,
        dir: PathBuf,
        age: u64,
    },
    #[error("cannot take the coordinator lock {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A lock file's owner: none, a live one (why `acquire` refuses), or a dead one (its lock, when it
/// reads, to be taken over).
enum LockState {
    Free,
    Held(LockError),
    Dead(Option<LockOwner>),
}

impl CoordinatorLock {
    /// A lock from another host not refreshed for this long is taken for its owner's (a lost node's).
    pub const STALE_SECS: u64 = 600;
    const FILE: &'static str = ".coordinator.lock";

    /// Takes the lock of `dir`; `warn` hears of a dead owner's lock taken over.
    pub fn acquire(dir: &Path, warn: &dyn Fn(&str)) -> Result<CoordinatorLock, LockError> {
        let path = dir.join(Self::FILE);
        let owner = LockOwner {
            host: host(),
            pid: std::process::id(),
            since: unix_now(),
        };
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        for _ in 0..3 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    f.write_all(&serde_json::to_vec(&owner).unwrap_or_default())
                        .and_then(|_| f.sync_all())
                        .map_err(io)?;
                    return Ok(CoordinatorLock { path, owner });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match Self::state(dir) {
                    LockState::Held(e) => return Err(e),
                    LockState::Free => {}
                    LockState::Dead(held) => {
                        if let Some(o) = &held {
                            warn(&format!(
                                "warning: taking over the sweep from kd-sweep pid {} on {}, which is gone",
                                o.pid, o.host
                            ));
                        }
                        let _ = std::fs::remove_file(&path);
                    }
                },
                Err(e) => return Err(io(e)),
            }
        }
        Err(io(std::io::Error::other("the lock kept changing hands")))
    }

    /// Whether a live sweep holds `dir`'s lock, reading only: `Err(Held)` while one does (as
    /// [`CoordinatorLock::acquire`] would refuse); a dead owner's lock is left where it is, for
    /// the next `acquire` to take over. For commands that must write nothing (`clean --dry-run`).
    pub fn check(dir: &Path) -> Result<(), LockError> {
        match Self::state(dir) {
            LockState::Held(e) => Err(e),
            LockState::Free | LockState::Dead(_) => Ok(()),
        }
    }

    /// What `dir`'s lock file says of its owner.
    fn state(dir: &Path) -> LockState {
        let path = dir.join(Self::FILE);
        let Ok(meta) = std::fs::metadata(&path) else {
            return LockState::Free;
        };
        let held: Option<LockOwner> = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let age = meta
            .modified()
            .ok()
            .and_then(|t| t.elapsed().ok())
            .map_or(0, |d| d.as_secs());
        let gone = match &held {
            None => age > 5, // half-written by a writer that died at once
            Some(o) => writer_alive(&o.host, o.pid).map_or(age > Self::STALE_SECS, |alive| !alive),
        };
        if gone {
            return LockState::Dead(held);
        }
        let owner = held.unwrap_or(LockOwner {
            host: "?".into(),
            pid: 0,
            since: 0,
        });
        LockState::Held(LockError::Held {
            owner,
            dir: dir.to_path_buf(),
            age,
        })
    }

    /// Marks the lock as alive (its modification time), for coordinators on other hosts to see.
    pub fn refresh(&self) {
        let _ = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .and_then(|f| f.set_modified(std::time::SystemTime::now()));
    }
}

impl Drop for CoordinatorLock {
    fn drop(&mut self) {
        // only our own lock: a coordinator that took over from us (we were thought dead) keeps its
        let ours = std::fs::read(&self.path)
            .ok()
            .and_then(|b| serde_json::from_slice::<LockOwner>(&b).ok())
            .is_some_and(|o| o == self.owner);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A cached teacher: where its files are and the record of its training.
#[derive(Debug, Serialize, Deserialize)]
pub struct TeacherEntry {
    pub record: RunRecord,
    pub weights_sha256: String,
    pub logits_sha256: String,
}

pub const WEIGHTS: &str = "weights.safetensors";
pub const LOGITS: &str = "logits.safetensors";
const ENTRY: &str = "entry.json";

fn sha_file(path: &Path) -> std::io::Result<String> {
    Ok(hex(&Sha256::digest(std::fs::read(path)?)))
}

/// Checks a cached teacher: the entry parses, its record's checksum holds, both files hash as recorded.
pub fn load_teacher(dir: &Path) -> Result<Option<TeacherEntry>, String> {
    let entry_path = dir.join(ENTRY);
    let bytes = match std::fs::read(&entry_path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !dir.exists() => return Ok(None),
        Err(e) => return Err(format!("{}: unreadable ({e})", entry_path.display())),
        Ok(b) => b,
    };
    // the record is checked over its bytes as written: a newer build's fields are covered too
    #[derive(Deserialize)]
    struct Written<'a> {
        #[serde(borrow)]
        record: &'a serde_json::value::RawValue,
        weights_sha256: String,
        logits_sha256: String,
    }
    let written = serde_json::from_slice::<Written>(&bytes)
        .map_err(|e| format!("{}: unreadable ({e})", entry_path.display()))?;
    let entry = TeacherEntry {
        record: RunRecord::from_json(written.record.get().as_bytes())
            .map_err(|e| format!("{}: its record: {e}", entry_path.display()))?,
        weights_sha256: written.weights_sha256,
        logits_sha256: written.logits_sha256,
    };
    for (file, want) in [
        (WEIGHTS, &entry.weights_sha256),
        (LOGITS, &entry.logits_sha256),
    ] {
        let p = dir.join(file);
        match sha_file(&p) {
            Ok(got) if &got == want => {}
            Ok(_) => {
                return Err(format!(
                    "{}: checksum mismatch (changed or truncated)",
                    p.display()
                ))
            }
            Err(e) => return Err(format!("{}: unreadable ({e})", p.display())),
        }
    }
    Ok(Some(entry))
}

/// Publishes a trained teacher: files are written into a private folder that is then renamed into
/// place, so a reader never sees half an entry. `write_files` writes the weights and logits files.
pub fn save_teacher(
    dir: &Path,
    record: &RunRecord,
    write_files: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), String> {
    let parent = dir.parent().ok_or("teacher cache folder has no parent")?;
    std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{name}.{}", tmp_tag()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let publish = || -> Result<(), String> {
        write_files(&tmp)?;
        let mut record = record.clone();
        record.checksum = record.digest();
        let entry = TeacherEntry {
            record,
            weights_sha256: sha_file(&tmp.join(WEIGHTS)).map_err(|e| e.to_string())?,
            logits_sha256: sha_file(&tmp.join(LOGITS)).map_err(|e| e.to_string())?,
        };
        let json = serde_json::to_vec_pretty(&entry).map_err(|e| e.to_string())?;
        write_atomic(&tmp.join(ENTRY), &json).map_err(|e| e.to_string())?;
        // a corrupt entry being replaced moves out of the way first
        if dir.exists() {
            let old = parent.join(crate::files::old_name(&name));
            std::fs::rename(dir, &old).map_err(|e| e.to_string())?;
            let _ = std::fs::remove_dir_all(&old);
        }
        std::fs::rename(&tmp, dir).map_err(|e| format!("{}: {e}", dir.display()))
    };
    let result = publish();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

pub const FEATURES: &str = "features.safetensors";
const FEATURES_SHA: &str = "features.sha256";

/// A cached teacher's feature maps on the training images (computed on first use by a feature-method
/// student), if present and intact.
pub fn load_features(dir: &Path) -> Option<tch::Tensor> {
    let want = std::fs::read_to_string(dir.join(FEATURES_SHA)).ok()?;
    let got = sha_file(&dir.join(FEATURES)).ok()?;
    if want.trim() != got {
        return None;
    }
    tch::Tensor::read_safetensors(dir.join(FEATURES))
        .ok()?
        .into_iter()
        .next()
        .map(|(_, t)| t)
}

/// Stores feature maps beside a cached teacher: the checksum first, then the file (written whole or
/// not at all), so a reader sees the whole file with its checksum, or a mismatch it recomputes.
pub fn save_features(dir: &Path, maps: &tch::Tensor) -> Result<(), String> {
    crate::files::write_atomic_with(&dir.join(FEATURES), |tmp| {
        tch::Tensor::write_safetensors(&[("features", maps)], tmp)
            .map_err(std::io::Error::other)?;
        let sha = sha_file(tmp)?;
        write_atomic(&dir.join(FEATURES_SHA), sha.as_bytes())
    })
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;

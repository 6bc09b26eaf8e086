//! Epoch checkpoints: a run in flight keeps its training state (`train::TrainState`: weights, Adam's
//! moments, the best epoch's weights, its position in the batch order, its epochs and step losses so
//! far) in `<sweep>/checkpoints/`, one pair of files per run: `<run>.<key16>.safetensors` (the tensors)
//! and `<run>.<key16>.json` (the rest, the tensors' SHA-256, and the JSON's own checksum). Both are
//! written atomically, tensors first, so a crash leaves the previous pair or the new one. A checkpoint
//! that does not verify, or belongs to another key, is ignored with a warning and never loaded. The
//! pair is removed when the run's record is written (`Store::save_record`), so disk use is bounded by
//! one checkpoint per run in flight.

use crate::files::{write_atomic, write_atomic_with};
use crate::store::{record_file_name, Store};
use crate::train::{Checkpoints, EpochStats, TrainState};
use crate::util::hex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;
use tch::Tensor;

/// Bumped when the checkpoint layout changes: another version is ignored. A field added without a
/// bump must mean nothing to a build that does not know it (`machines` is such a field): builds from
/// 71c915d on accept it under the checksum over the file as written.
const FORMAT: u32 = 1;

/// A machine a checkpoint's epochs were computed on whose kind nobody recorded: a checkpoint written
/// before kd-sweep kept them, or a machine [`crate::record::machine_kind`] cannot name.
pub const UNRECORDED: &str = "not recorded";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Meta {
    format: u32,
    run_id: String,
    key: String,
    epoch: u32,
    step: usize,
    order: u64,
    adam_steps: u64,
    history: Vec<EpochStats>,
    step_losses: Vec<f64>,
    seconds: f64,
    tensors_sha256: String,
    /// The kinds of machine ([`crate::record::machine_kind`], or [`UNRECORDED`]) that computed its
    /// epochs, oldest first, consecutive repeats merged (absent in checkpoints written before
    /// kd-sweep kept them: [`Meta::kinds`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    machines: Vec<String>,
    #[serde(default)]
    checksum: String,
}

impl Meta {
    fn digest(&self) -> String {
        let mut c = self.clone();
        c.checksum.clear();
        hex(&Sha256::digest(serde_json::to_vec(&c).unwrap_or_default()))
    }

    /// The kinds of machine that computed its epochs: [`UNRECORDED`] when it does not say.
    fn kinds(&self) -> Vec<String> {
        match self.machines.is_empty() {
            true => vec![UNRECORDED.to_string()],
            false => self.machines.clone(),
        }
    }

    /// Its checksum holds over what this build reads of it, or over its file as written (a later
    /// build's checkpoint, with fields this one does not know, is still used).
    fn verifies(&self, bytes: &[u8]) -> bool {
        self.checksum == self.digest()
            || crate::record::digest_as_written(bytes).as_deref() == Some(self.checksum.as_str())
    }
}

/// `machines` and then `here`, a repeat of the last one merged.
fn then(mut machines: Vec<String>, here: &str) -> Vec<String> {
    if machines.last().is_none_or(|m| m != here) {
        machines.push(here.to_string());
    }
    machines
}

/// The kinds before `here` of the `machines` that computed a run's checkpoint, oldest first: what
/// its record keeps when it continued from there (nothing when `here` computed it all).
fn before(mut machines: Vec<String>, here: &str) -> Vec<String> {
    if machines.last().is_some_and(|m| m == here) {
        machines.pop();
    }
    machines
}

/// The checkpoint of one run (`id`, `key`) of a sweep.
pub struct RunCheckpoint {
    json: PathBuf,
    tensors: PathBuf,
    run_id: String,
    key: String,
    every: Option<Duration>,
    /// The run has a record saying a search paused it: continuing is its promotion, not a recovery.
    paused: bool,
    /// Where warnings go (the worker's stderr).
    warn: fn(&str),
    /// Where notes go (the worker's stderr, unless the sweep runs with `--quiet`).
    info: fn(&str),
    /// The kind of machine this process computes on ([`crate::record::machine_kind`], or
    /// [`UNRECORDED`]).
    machine: String,
    /// The kinds that computed the epochs of the checkpoint it continued from.
    earlier: Mutex<Vec<String>>,
}

fn to_stderr(m: &str) {
    eprintln!("{m}");
}

fn unless_quiet(m: &str) {
    if !crate::util::quiet() {
        eprintln!("{m}");
    }
}

impl RunCheckpoint {
    /// The checkpoint of `run_id`/`key` in `store`, also saved within an epoch every `every`.
    pub fn new(store: &Store, run_id: &str, key: &str, every: Option<Duration>) -> RunCheckpoint {
        let (json, tensors) = paths(store, run_id, key);
        let record = store
            .records_dir()
            .join(super::record_file_name(run_id, key));
        let paused = std::fs::read(record)
            .ok()
            .and_then(|b| crate::record::RunRecord::from_json(&b).ok())
            .is_some_and(|r| r.status == crate::record::Status::Pruned);
        RunCheckpoint {
            json,
            tensors,
            run_id: run_id.into(),
            key: key.into(),
            every,
            paused,
            warn: to_stderr,
            info: unless_quiet,
            machine: UNRECORDED.to_string(),
            earlier: Mutex::default(),
        }
    }

    /// The same, kept as computed on `machine` (its checkpoints name the kinds that computed them).
    pub fn on(self, machine: Option<String>) -> RunCheckpoint {
        let machine = machine.unwrap_or_else(|| UNRECORDED.to_string());
        RunCheckpoint { machine, ..self }
    }

    fn ignore(&self, why: &str) -> Option<TrainState> {
        (self.warn)(&format!(
            "warning: {}: checkpoint {} ignored ({why}); the run starts from its beginning",
            self.run_id,
            self.json.display()
        ));
        None
    }

    fn try_save(&self, state: &TrainState) -> Result<(), String> {
        let named: Vec<(&str, &Tensor)> =
            state.tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
        // tch writes safetensors to a path only: written in place of write_atomic's temporary file,
        // and hashed from there before it is renamed into place
        let mut digest = String::new();
        write_atomic_with(&self.tensors, |tmp| {
            Tensor::write_safetensors(&named, tmp).map_err(std::io::Error::other)?;
            digest = hex(&Sha256::digest(std::fs::read(tmp)?));
            Ok(())
        })
        .map_err(|e| e.to_string())?;
        let mut meta = Meta {
            format: FORMAT,
            run_id: self.run_id.clone(),
            key: self.key.clone(),
            epoch: state.epoch,
            step: state.step,
            order: state.order,
            adam_steps: state.adam_steps,
            history: state.history.clone(),
            step_losses: state.step_losses.clone(),
            seconds: state.seconds,
            tensors_sha256: digest,
            machines: then(self.earlier_machines(), &self.machine),
            checksum: String::new(),
        };
        meta.checksum = meta.digest();
        let text = serde_json::to_vec(&meta).map_err(|e| e.to_string())?;
        write_atomic(&self.json, &text).map_err(|e| e.to_string())
    }

    fn earlier_machines(&self) -> Vec<String> {
        self.earlier.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// The kinds of machine before this one ([`crate::record::machine_kind`]) that computed the
    /// epochs of the checkpoint this run continued from — what [`Checkpoints::load`] accepted,
    /// oldest first; empty when it continued from none (never loaded, or rejected: a stale file
    /// left beside the run lends it nothing) or this kind computed it all.
    pub fn machines_before(&self) -> Vec<String> {
        before(self.earlier_machines(), &self.machine)
    }
}

fn paths(store: &Store, run_id: &str, key: &str) -> (PathBuf, PathBuf) {
    let json = store.checkpoints_dir().join(record_file_name(run_id, key));
    let tensors = json.with_extension("safetensors");
    (json, tensors)
}

/// The epoch (and steps into the next) a run's checkpoint reached, read from its description alone:
/// what `plan` and `status` show. `None`: no checkpoint, or one a run would ignore for its
/// description (a run also checks its tensors when it continues).
pub fn reached(store: &Store, run_id: &str, key: &str) -> Option<(u32, usize)> {
    let meta = described(store, run_id, key)?;
    Some((meta.epoch, meta.step))
}

/// A run's checkpoint description, when it verifies and is this run's.
fn described(store: &Store, run_id: &str, key: &str) -> Option<Meta> {
    let (json, _) = paths(store, run_id, key);
    let bytes = std::fs::read(json).ok()?;
    let meta: Meta = serde_json::from_slice(&bytes).ok()?;
    let usable = meta.format == FORMAT
        && meta.verifies(&bytes)
        && meta.run_id == run_id
        && meta.key == key
        && meta.history.len() == meta.epoch as usize
        && meta.step_losses.len() >= meta.step;
    usable.then_some(meta)
}

/// Removes a run's checkpoint (after its record is written).
pub fn remove(store: &Store, run_id: &str, key: &str) {
    let (json, tensors) = paths(store, run_id, key);
    let _ = std::fs::remove_file(json);
    let _ = std::fs::remove_file(tensors);
}

impl Checkpoints for RunCheckpoint {
    fn load(&self) -> Option<TrainState> {
        let bytes = match std::fs::read(&self.json) {
            // a paused run promoted after `kd-sweep clean` took its checkpoint: said, not silent
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.paused => {
                (self.warn)(&format!(
                    "warning: {}: promoted by the search, but its checkpoint is gone (`kd-sweep \
                     clean` removes a pruned run's); it trains from its beginning",
                    self.run_id
                ));
                return None;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => return self.ignore(&format!("unreadable: {e}")),
            Ok(b) => b,
        };
        let meta: Meta = match serde_json::from_slice(&bytes) {
            Ok(m) => m,
            Err(e) => return self.ignore(&format!("does not parse: {e}")),
        };
        if !meta.verifies(&bytes) {
            return self.ignore("its checksum does not match");
        }
        if meta.format != FORMAT {
            return self.ignore(&format!("format {} is not {FORMAT}", meta.format));
        }
        if meta.key != self.key || meta.run_id != self.run_id {
            return self.ignore("it belongs to another run or key");
        }
        if meta.history.len() != meta.epoch as usize || meta.step_losses.len() < meta.step {
            return self.ignore("its epochs and steps disagree");
        }
        let tensor_bytes = match std::fs::read(&self.tensors) {
            Ok(b) => b,
            Err(e) => return self.ignore(&format!("its tensors are unreadable: {e}")),
        };
        if hex(&Sha256::digest(&tensor_bytes)) != meta.tensors_sha256 {
            return self.ignore("its tensors do not match their checksum");
        }
        let tensors = match Tensor::read_safetensors(&self.tensors) {
            Ok(t) => t,
            Err(e) => return self.ignore(&format!("its tensors do not load: {e}")),
        };
        if self.paused && meta.step == 0 {
            // the search chose it to go on: normal operation, said in a word
            (self.info)(&format!(
                "{}: promoted by the search, continuing after epoch {}",
                self.run_id, meta.epoch
            ));
        } else {
            let steps = match meta.step {
                0 => String::new(),
                n => format!(" and {n} step(s) of the next"),
            };
            (self.info)(&format!(
                "{}: continuing from its checkpoint after epoch {}{steps} ({:.1} s of training kept)",
                self.run_id, meta.epoch, meta.seconds
            ));
        }
        if let Ok(mut earlier) = self.earlier.lock() {
            *earlier = meta.kinds();
        }
        Some(TrainState {
            epoch: meta.epoch,
            step: meta.step,
            order: meta.order,
            adam_steps: meta.adam_steps,
            history: meta.history,
            step_losses: meta.step_losses,
            seconds: meta.seconds,
            tensors,
        })
    }

    fn save(&self, state: &TrainState) {
        if let Err(e) = self.try_save(state) {
            (self.warn)(&format!(
                "warning: {}: cannot write its checkpoint ({e}); the run goes on without one",
                self.run_id
            ));
        }
    }

    fn every(&self) -> Option<Duration> {
        self.every
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn state() -> TrainState {
        TrainState {
            epoch: 1,
            step: 2,
            order: 42,
            adam_steps: 7,
            history: vec![EpochStats {
                epoch: 1,
                train_loss: 0.5,
                val_acc: 60.0,
                seconds: 1.5,
                learned_temperature: None,
            }],
            step_losses: vec![0.9, 0.7, 0.6, 0.5],
            seconds: 2.0,
            tensors: vec![
                (
                    "param/w".into(),
                    Tensor::arange(6, (Kind::Float, Device::Cpu)),
                ),
                (
                    "exp_avg/w".into(),
                    Tensor::ones([6], (Kind::Float, Device::Cpu)),
                ),
            ],
        }
    }

    fn quiet(_: &str) {}

    fn checkpoint(dir: &std::path::Path, key: &str) -> RunCheckpoint {
        let store = Store::new(dir, "s");
        RunCheckpoint {
            warn: quiet,
            ..RunCheckpoint::new(&store, "teacher-s0", key, None)
        }
    }

    #[test]
    fn round_trips_and_is_removed() {
        let d = tempfile::tempdir().unwrap();
        let key = "ab".repeat(32);
        let c = checkpoint(d.path(), &key);
        assert!(c.load().is_none());
        c.save(&state());
        let got = c.load().expect("loads");
        assert_eq!(
            (got.epoch, got.step, got.order, got.adam_steps),
            (1, 2, 42, 7)
        );
        assert_eq!(got.step_losses, [0.9, 0.7, 0.6, 0.5]);
        assert_eq!(got.history.len(), 1);
        let w = got.tensors.iter().find(|(n, _)| n == "param/w").unwrap();
        assert_eq!(
            Vec::<f32>::try_from(&w.1).unwrap(),
            [0., 1., 2., 3., 4., 5.]
        );
        remove(&Store::new(d.path(), "s"), "teacher-s0", &key);
        assert!(c.load().is_none());
        assert_eq!(
            std::fs::read_dir(d.path().join("s/checkpoints"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn a_corrupt_or_foreign_checkpoint_is_ignored() {
        let d = tempfile::tempdir().unwrap();
        let key = "ab".repeat(32);
        let c = checkpoint(d.path(), &key);
        c.save(&state());
        // another key's checkpoint under this name (file names keep 16 characters of the key)
        let foreign = RunCheckpoint {
            key: "ab".repeat(8) + &"cd".repeat(24),
            ..checkpoint(d.path(), &key)
        };
        assert!(foreign.load().is_none(), "another key");
        // a changed value in the JSON
        let text = std::fs::read_to_string(&c.json).unwrap();
        std::fs::write(&c.json, text.replace("\"order\":42", "\"order\":43")).unwrap();
        assert!(c.load().is_none(), "checksum");
        // a changed tensor file
        c.save(&state());
        let mut bytes = std::fs::read(&c.tensors).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&c.tensors, bytes).unwrap();
        assert!(c.load().is_none(), "tensor checksum");
        // a truncated JSON
        c.save(&state());
        let bytes = std::fs::read(&c.json).unwrap();
        std::fs::write(&c.json, &bytes[..bytes.len() / 2]).unwrap();
        assert!(c.load().is_none(), "truncated");
    }

    #[test]
    fn a_checkpoint_names_the_kinds_of_machine_that_computed_it() {
        let d = tempfile::tempdir().unwrap();
        let key = "ab".repeat(32);
        let on = |m: &str| checkpoint(d.path(), &key).on(Some(m.into()));
        let written = |c: &RunCheckpoint| -> Meta {
            serde_json::from_slice(&std::fs::read(&c.json).unwrap()).unwrap()
        };
        // what a run continued on `here` records: the kinds before it that computed what it loaded
        let before = |here: &str| {
            let c = on(here);
            c.load();
            c.machines_before()
        };
        assert!(before("cpu AuthenticAMD").is_empty(), "no checkpoint");
        let amd = on("cpu AuthenticAMD");
        amd.save(&state());
        assert_eq!(written(&amd).machines, ["cpu AuthenticAMD"]);
        assert!(
            before("cpu AuthenticAMD").is_empty(),
            "one kind computed it all"
        );
        assert_eq!(before("cpu GenuineIntel"), ["cpu AuthenticAMD"]);
        // continued on the same kind: one entry; then on another: both, oldest first
        let same = on("cpu AuthenticAMD");
        same.load().expect("loads");
        same.save(&state());
        assert_eq!(written(&same).machines, ["cpu AuthenticAMD"]);
        let intel = on("cpu GenuineIntel");
        intel.load().expect("loads");
        intel.save(&state());
        assert_eq!(
            written(&intel).machines,
            ["cpu AuthenticAMD", "cpu GenuineIntel"]
        );
        assert_eq!(before("cpu GenuineIntel"), ["cpu AuthenticAMD"]);
        assert_eq!(
            before("cpu AuthenticAMD"),
            ["cpu AuthenticAMD", "cpu GenuineIntel"]
        );
        // a machine that cannot be named is said to be unrecorded, not left out
        let unnamed = checkpoint(d.path(), &key).on(None);
        unnamed.load().expect("loads");
        unnamed.save(&state());
        assert_eq!(
            written(&unnamed).machines,
            ["cpu AuthenticAMD", "cpu GenuineIntel", UNRECORDED]
        );
        let unnamed = checkpoint(d.path(), &key).on(None);
        assert!(unnamed.machines_before().is_empty(), "nothing loaded yet");
        unnamed.load().expect("loads");
        assert_eq!(
            unnamed.machines_before(),
            ["cpu AuthenticAMD", "cpu GenuineIntel"]
        );
        // a checkpoint written before kd-sweep kept them (no `machines`) loads; who computed it is
        // not recorded, and a run continued from it says so
        let mut meta = written(&intel);
        meta.machines.clear();
        meta.checksum = meta.digest();
        std::fs::write(&intel.json, serde_json::to_vec(&meta).unwrap()).unwrap();
        assert!(!String::from_utf8(std::fs::read(&intel.json).unwrap())
            .unwrap()
            .contains("machines"));
        assert_eq!(before("cpu GenuineIntel"), [UNRECORDED]);
        let upgraded = on("cpu GenuineIntel");
        upgraded.load().expect("loads");
        upgraded.save(&state());
        assert_eq!(
            written(&upgraded).machines,
            [UNRECORDED, "cpu GenuineIntel"]
        );
        // a later build's, with a field this one does not know, loads and is read; changed, it
        // does not load
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&intel.json).unwrap()).unwrap();
        v["machines"] = serde_json::json!(["cuda NVIDIA H200, sm_90, TF32"]);
        v["a_later_field"] = serde_json::json!([1, "checksum"]);
        v["checksum"] = "".into();
        let unsigned = serde_json::to_vec(&v).unwrap();
        v["checksum"] = hex(&Sha256::digest(&unsigned)).into();
        let later = serde_json::to_string(&v).unwrap();
        std::fs::write(&intel.json, &later).unwrap();
        assert!(intel.load().is_some(), "a later build's checkpoint");
        assert_eq!(
            before("cpu GenuineIntel"),
            ["cuda NVIDIA H200, sm_90, TF32"]
        );
        std::fs::write(&intel.json, later.replace("[1,", "[2,")).unwrap();
        assert!(intel.load().is_none(), "its unknown field changed");
        assert!(before("cpu GenuineIntel").is_empty());
        // a checkpoint whose description verifies but whose tensors the run rejects lends the run
        // none of its machines: it continued from nothing
        on("cpu AuthenticAMD").save(&state());
        let mut bytes = std::fs::read(&intel.tensors).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&intel.tensors, bytes).unwrap();
        let store = Store::new(d.path(), "s");
        assert_eq!(reached(&store, "teacher-s0", &key), Some((1, 2)));
        assert!(
            before("cpu GenuineIntel").is_empty(),
            "a rejected checkpoint"
        );
    }
}

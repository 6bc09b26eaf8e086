//! What a run leaves behind, as the files hold it: its [`RunRecord`] (with its own checksum), the
//! epochs in it ([`EpochStats`]), its [`Role`] and [`Status`]. Training fills these in, the store
//! writes them, reports read them; they depend on no training code, so reading results needs none.

use crate::distill::Method;
use crate::util::hex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Teacher,
    Baseline,
    Student,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Teacher => "teacher",
            Role::Baseline => "baseline",
            Role::Student => "student",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Done,
    Failed,
    /// Stopped by a halving search at the end of a rung (`epochs` is the epoch it reached); its
    /// checkpoint is kept, so a promotion continues it.
    Pruned,
}

/// Metrics after one epoch. The test set is not looked at during training: see [`crate::train::Fitted`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    pub epoch: u32,
    pub train_loss: f64,
    pub val_acc: f64,
    /// Seconds since the run started.
    pub seconds: f64,
    /// CTKD's learned temperature at the epoch's end (absent for every other method).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learned_temperature: Option<f64>,
}

/// A teacher's weights after one epoch, as a snapshot students distil from: its validation and
/// test accuracy (%).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SnapshotStats {
    pub epoch: u32,
    pub val_acc: f64,
    pub test_acc: f64,
}

/// The class of device a run was trained on: `cpu`, or `cuda` with the GPU's model, compute
/// capability and precision mode when known ("cuda NVIDIA H200, sm_90, TF32"; plain `cuda` in records
/// written before kd-sweep recorded them); empty for runs that never ran, such as students of a failed
/// teacher. Numbers from two classes differ by float tolerance (cuDNN's algorithms, TF32), so a sweep
/// never reuses a finished run of another class.
pub fn device_class(device: &str, gpu: Option<&str>) -> String {
    if device == "cpu" {
        "cpu".into()
    } else if device.starts_with("cuda") {
        match gpu {
            Some(g) => format!("cuda {g}"),
            None => "cuda".into(),
        }
    } else {
        String::new()
    }
}

/// Everything known about one finished (or failed) run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub role: Role,
    /// Absent (logit) in records of teachers, baselines and logit students.
    #[serde(default, skip_serializing_if = "Method::is_logit")]
    pub method: Method,
    pub seed: u64,
    pub temperature: Option<String>,
    pub alpha: Option<String>,
    pub key: String,
    pub epochs: u32,
    pub status: Status,
    pub error: Option<String>,
    pub history: Vec<EpochStats>,
    pub val_acc: Option<f64>,
    pub test_acc: Option<f64>,
    pub best_epoch: Option<u32>,
    pub best_val_acc: Option<f64>,
    pub test_acc_at_best: Option<f64>,
    pub seconds: f64,
    pub device: String,
    /// The GPU model, compute capability and precision mode of a GPU run ([`crate::platform::device::gpu_class`],
    /// e.g. "NVIDIA H200, sm_90, TF32"); absent on the CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<String>,
    /// The CPU's vendor and model of a CPU run ([`crate::platform::device::cpu_class`], e.g.
    /// "GenuineIntel, Intel(R) Xeon(R) Processor"); absent on a GPU and in records written before
    /// kd-sweep recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// The kinds of machine ([`RunRecord::machine`]'s words) that computed this run's first epochs
    /// before it was continued, from their checkpoint, on the one `device`, `gpu` and `cpu` name,
    /// oldest first ("not recorded" for a checkpoint an older build wrote or a machine that could
    /// not be named): absent when one kind computed it all (and in records written before kd-sweep
    /// tracked it). A run continued on another kind has neither kind's numbers to the last bit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier_machines: Vec<String>,
    /// Intra-op threads the run trained with (absent in records of runs that never started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<u32>,
    /// The run's network when not its role's tutorial one (absent for the tutorial pair).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<crate::model::Arch>,
    /// A student's other hyper-parameters (methods beyond logit KD): absent when the method has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gamma: Option<String>,
    /// Multi-temperature KD's set of temperatures.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub temperatures: Vec<String>,
    /// Logits z-scored before the temperature (logit standardisation).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub zscore: bool,
    /// On the test set, the share of images (%) whose predicted class is the teacher's — a student's
    /// teacher, a baseline's seed's teacher — and the mean KL(teacher ‖ this run) at T = 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreement: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kl_to_teacher: Option<f64>,
    /// The teacher's epoch whose snapshot a student distilled from (`[grid] teacher_epoch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher_epoch: Option<u32>,
    /// A teacher's snapshots taken for `[grid] teacher_epoch`: the accuracy of its weights after
    /// each of those epochs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub snapshots: Vec<SnapshotStats>,
    /// A student's teacher's network when not the tutorial teacher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher_model: Option<crate::model::Arch>,
    /// The CPU kernels the run computed with ([`crate::platform::numerics`]): absent for native, which is what
    /// every record written before numerics modes has.
    #[serde(
        default = "crate::platform::numerics::Numerics::native",
        skip_serializing_if = "crate::platform::numerics::Numerics::is_native"
    )]
    pub numerics: crate::platform::numerics::Numerics,
    /// GPU determinism was asked for (absent when not).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deterministic: bool,
    /// GPU steps as CUDA graphs were asked for (absent when not).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cuda_graphs: bool,
    /// The sweep (folder name under the same results root) this finished run was reused from: the
    /// same key, so the same computation; absent for a run trained for this sweep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reused_from: Option<String>,
    /// Unix time at which the record was written.
    pub finished_at: u64,
    /// SHA-256 of this record with an empty checksum.
    #[serde(default)]
    pub checksum: String,
}

impl RunRecord {
    /// (teacher's network, student's network) of this run: a teacher has only the first, a baseline
    /// only the second, a student both.
    pub fn models(&self) -> (Option<crate::model::Arch>, Option<crate::model::Arch>) {
        use crate::model::Arch;
        match self.role {
            Role::Teacher => (Some(self.model.unwrap_or(Arch::Teacher)), None),
            Role::Baseline => (None, Some(self.model.unwrap_or(Arch::Student))),
            Role::Student => (
                Some(self.teacher_model.unwrap_or(Arch::Teacher)),
                Some(self.model.unwrap_or(Arch::Student)),
            ),
        }
    }

    /// The run's grid coordinate, as typed values (a teacher's or baseline's: plain logit, its model).
    pub fn coord(&self) -> crate::distill::Coord {
        use crate::distill::{Coord, GridValue};
        let value = |t: &str| GridValue {
            text: t.to_string(),
            value: t.replace('_', "").parse().unwrap_or(f64::NAN),
        };
        Coord {
            method: self.method,
            temperature: self.temperature.as_deref().map(value),
            alpha: self.alpha.as_deref().map(value),
            beta: self.beta.as_deref().map(value),
            gamma: self.gamma.as_deref().map(value),
            temperatures: self.temperatures.iter().map(|t| value(t)).collect(),
            zscore: self.zscore,
            teacher_epoch: self.teacher_epoch,
            model: self
                .models()
                .1
                .filter(|m| *m != crate::model::Arch::Student),
        }
    }

    /// The kind of machine the run computed on as far as its numbers depend on it, when its record
    /// says ([`machine_kind`]); a run continued from a checkpoint another kind wrote names them all,
    /// oldest first: "cpu AuthenticAMD, then cpu GenuineIntel".
    pub fn machine(&self) -> Option<String> {
        let last = machine_kind(
            &self.device,
            self.gpu.as_deref(),
            self.cpu.as_deref(),
            self.numerics,
        )?;
        let mut all = self.earlier_machines.clone();
        all.push(last);
        Some(all.join(", then "))
    }

    pub(crate) fn digest(&self) -> String {
        let mut c = self.clone();
        c.checksum.clear();
        let bytes = serde_json::to_vec(&c).unwrap_or_default();
        hex(&Sha256::digest(&bytes))
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut c = self.clone();
        c.checksum = self.digest();
        // Serializing plain data with string keys cannot fail.
        serde_json::to_vec_pretty(&c).expect("record serializes")
    }

    /// Parses a record and checks its checksum.
    pub fn from_json(bytes: &[u8]) -> Result<RunRecord, String> {
        let r: RunRecord =
            serde_json::from_slice(bytes).map_err(|e| format!("unreadable ({e})"))?;
        if r.checksum != r.digest() && digest_as_written(bytes).as_deref() != Some(&r.checksum) {
            return Err("checksum mismatch (the file was changed or truncated)".into());
        }
        Ok(r)
    }
}

/// The kind of machine a run on `device` computes on as far as its numbers depend on it, from what
/// its record keeps: "cpu GenuineIntel" under portable numerics (the same bits on every CPU of a
/// vendor), "cpu GenuineIntel, Intel(R) Xeon(R) …" under native ones, and on a GPU its
/// [`device_class`] ("cuda NVIDIA H200, sm_90, TF32"). `None` when the record does not say.
pub fn machine_kind(
    device: &str,
    gpu: Option<&str>,
    cpu: Option<&str>,
    numerics: crate::platform::numerics::Numerics,
) -> Option<String> {
    use crate::platform::numerics::Numerics;
    if device == "cpu" {
        let cpu = cpu?;
        let kind = match numerics {
            Numerics::Portable => cpu.split(", ").next().unwrap_or(cpu),
            Numerics::Native => cpu,
        };
        return Some(format!("cpu {kind}"));
    }
    let named_gpu = device.starts_with("cuda") && gpu.is_some();
    named_gpu.then(|| device_class(device, gpu))
}

/// The checksum of a record file as written, whatever build wrote it: its JSON without the
/// whitespace outside strings (serde_json's pretty form is its compact form plus whitespace), with
/// the record's own `checksum` (a member of the outermost object) emptied. For this build's records
/// it equals [`RunRecord::digest`]; for a newer build's it also covers the fields this build does
/// not know, which `digest` would drop — so a record with a field added later is still read, not
/// taken for corrupt and trained again.
pub(crate) fn digest_as_written(bytes: &[u8]) -> Option<String> {
    const KEY: &str = "\"checksum\":\"";
    let text = std::str::from_utf8(bytes).ok()?;
    let mut compact = String::with_capacity(text.len());
    let (mut in_string, mut escaped, mut depth) = (false, false, 0usize);
    let mut value_at = None;
    for c in text.chars() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            compact.push(c);
            continue;
        }
        match c {
            ' ' | '\t' | '\n' | '\r' => continue,
            '{' | '[' => depth += 1,
            '}' | ']' => depth = depth.saturating_sub(1),
            '"' => in_string = true,
            _ => {}
        }
        compact.push(c);
        // the opening quote of the outermost object's `checksum` value (a quote inside a string is
        // escaped, so this is the key, not text in some value)
        let member = compact.strip_suffix(KEY).and_then(|h| h.chars().last());
        if c == '"' && depth == 1 && value_at.is_none() && matches!(member, Some('{' | ',')) {
            value_at = Some(compact.len());
        }
    }
    let at = value_at?;
    let end = at + compact[at..].find('"')?;
    compact.replace_range(at..end, "");
    Some(hex(&Sha256::digest(compact.as_bytes())))
}

//! Bring-your-own networks: a module scripted in PyTorch (`torch.jit.script(net).save("net.pt")`),
//! named in a sweep file as `model = "torchscript:net.pt"`, trained through libtorch's TorchScript
//! runtime. Its `forward` returns logits; an exported `features(x)` (a teacher's feature map) and
//! `head(f)` (a student's, with `head(features(x)) == forward(x)`) serve feature distillation.
//!
//! A file is identified by its SHA-256, which run keys hold instead of its path: moving the file keeps
//! the keys; changing it makes new runs. Workers check the hash again before they train.
//!
//! tch exposes a scripted module's parameters but not its buffers (batch norm's running statistics),
//! so a network's whole state — for checkpoints, the best epoch's weights and the teacher cache — is
//! the module saved as TorchScript bytes, kept beside the parameters as a `u8` tensor named
//! [`STATE`].

use crate::util::first_line;
use crate::util::hex;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tch::{CModule, Device, Kind, Tensor};

/// The sweep-file prefix of a TorchScript model name.
pub const PREFIX: &str = "torchscript:";

/// The name of a TorchScript network's whole saved state among a snapshot's tensors (never a
/// variable name: those have no angle brackets).
pub const STATE: &str = "<torchscript>";

/// A TorchScript file a sweep trains.
#[derive(Debug)]
pub struct Script {
    /// Where the file is (absolute, or as the sweep file's folder resolved it).
    pub path: PathBuf,
    /// SHA-256 of the file's bytes, in hex.
    pub sha256: String,
    /// What [`Script::probe`] found, per input shape.
    probes: Mutex<Vec<ProbeOf>>,
}

impl PartialEq for Script {
    fn eq(&self, other: &Script) -> bool {
        self.sha256 == other.sha256 && self.path == other.path
    }
}

impl Eq for Script {}

impl std::hash::Hash for Script {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.sha256.hash(h);
        self.path.hash(h);
    }
}

/// A probe's answer for one input shape.
type ProbeOf = ([i64; 3], Result<Probe, String>);

/// What one forward pass on a batch of zeros showed about a scripted network.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// Parameters (elements of every tensor `named_parameters` lists).
    pub parameters: i64,
    /// Shape of `forward`'s output for 2 images.
    pub logits: Vec<i64>,
    /// Shape of `features`' output for 2 images, when the module exports `features`.
    pub features: Option<Vec<i64>>,
    /// Whether it exports `head`, with `head(features(x))` of `forward`'s shape (a student's
    /// feature distillation needs both; a teacher's only `features`).
    pub head: bool,
    /// Why `forward` (or `features`, or `head` on its output) fails on the same images in the
    /// channels-last layout (`channels_last = true`), e.g. a `.view` of a convolution's output;
    /// `None`: they run.
    pub channels_last_error: Option<String>,
}

/// Every script a process has named, so that one file is loaded and probed once.
static KNOWN: Mutex<Vec<&'static Script>> = Mutex::new(Vec::new());

impl Script {
    /// The script of `path` with content hash `sha256` (kept for the life of the process).
    pub fn intern(path: PathBuf, sha256: String) -> &'static Script {
        let mut known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = known.iter().find(|s| s.path == path && s.sha256 == sha256) {
            return s;
        }
        let s: &'static Script = Box::leak(Box::new(Script {
            path,
            sha256,
            probes: Mutex::new(Vec::new()),
        }));
        known.push(s);
        s
    }

    /// The script at `path` (relative to `base`), hashed now.
    pub fn open(path: &str, base: &Path) -> Result<&'static Script, String> {
        if path.is_empty() {
            return Err(format!(
                "\"{PREFIX}\" needs a file after it, e.g. \"{PREFIX}nets/student.pt\""
            ));
        }
        let (p, sha256) = crate::util::read_hashed(path, base).map_err(|why| {
            format!("cannot read the TorchScript file {why}; a relative path is relative to the sweep file")
        })?;
        Ok(Script::intern(p, sha256))
    }

    /// The name runs, charts and tables use: the file's name (characters other than letters,
    /// digits, `.`, `_` and `-` made `_`). Never a zoo name, which has no `.`.
    pub fn name(&self) -> String {
        let file = self
            .path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| "script".into());
        let clean: String = file
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if clean.contains('.') {
            clean
        } else {
            clean + ".pt"
        }
    }

    /// The form records and worker messages carry: path and hash.
    pub fn serialized(&self) -> String {
        format!("{PREFIX}{}#sha256:{}", self.path.display(), self.sha256)
    }

    /// Parses [`Script::serialized`] without reading the file.
    pub fn deserialize(text: &str) -> Option<&'static Script> {
        let rest = text.strip_prefix(PREFIX)?;
        let (path, sha) = rest.rsplit_once("#sha256:")?;
        Some(Script::intern(PathBuf::from(path), sha.to_string()))
    }

    /// The module, checked to be the file that was planned, on `device`.
    pub fn load(&self, device: Device) -> Result<CModule, String> {
        let bytes = std::fs::read(&self.path)
            .map_err(|e| format!("cannot read {} ({e})", self.path.display()))?;
        if hex(&Sha256::digest(&bytes)) != self.sha256 {
            return Err(format!(
                "{} changed since the sweep was planned (its SHA-256 is no longer {}…); start the \
                 sweep again so that its runs are keyed by the new file",
                self.path.display(),
                &self.sha256[..16.min(self.sha256.len())]
            ));
        }
        from_bytes(&bytes, device).map_err(|e| format!("{}: {e}", self.path.display()))
    }

    /// Loads the module on the CPU and runs `forward` (and `features`/`head` when exported) on two
    /// images of `shape` in evaluation mode; the answer is kept.
    pub fn probe(&self, shape: [i64; 3]) -> Result<Probe, String> {
        let mut probes = self.probes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, p)) = probes.iter().find(|(s, _)| *s == shape) {
            return p.clone();
        }
        let probe = self.probe_now(shape);
        probes.push((shape, probe.clone()));
        probe
    }

    fn probe_now(&self, shape: [i64; 3]) -> Result<Probe, String> {
        let _guard = tch::no_grad_guard();
        let mut m = self.load(Device::Cpu)?;
        m.f_set_eval().map_err(|e| e.to_string())?;
        let x = Tensor::zeros(
            [2, shape[0], shape[1], shape[2]],
            (Kind::Float, Device::Cpu),
        );
        let logits = m.forward_ts(&[&x]).map_err(|e| {
            format!(
                "{}: forward fails on a batch of {}×{}×{} images ({})",
                self.path.display(),
                shape[0],
                shape[1],
                shape[2],
                interpreter_error(&e)
            )
        })?;
        let features = m.method_ts("features", &[&x]).ok();
        let head = features.as_ref().is_some_and(|f| {
            m.method_ts("head", &[f])
                .is_ok_and(|h| h.size() == logits.size())
        });
        // every method a run may call, on what it gets with channels_last = true (4-D inputs
        // channels-last: Net::script_call)
        let cl = super::channels_last(&x);
        let channels_last_error = (m.forward_ts(&[&cl]).map(|_| ()))
            .and_then(|()| match &features {
                None => Ok(()),
                Some(_) => m
                    .method_ts("features", &[&cl])
                    .and_then(|f| match (head, f.dim()) {
                        (true, 4) => m
                            .method_ts("head", &[&super::channels_last(&f)])
                            .map(|_| ()),
                        (true, _) => m.method_ts("head", &[&f]).map(|_| ()),
                        (false, _) => Ok(()),
                    }),
            })
            .err()
            .map(|e| interpreter_error(&e));
        let parameters = m
            .named_parameters()
            .map_err(|e| e.to_string())?
            .iter()
            .map(|(_, t)| t.numel() as i64)
            .sum();
        Ok(Probe {
            parameters,
            logits: logits.size(),
            features: features.map(|f| f.size()),
            head,
            channels_last_error,
        })
    }
}

/// What a TorchScript failure says: the interpreter's last "…Error: reason" line (its first line
/// only says that an operation failed), else the first line.
fn interpreter_error(e: &tch::TchError) -> String {
    let text = e.to_string();
    (text.lines().rev())
        .find_map(|l| l.trim().split_once("Error: ").map(|(_, why)| why.trim()))
        .filter(|why| !why.is_empty())
        .map_or_else(|| first_line(&text), str::to_string)
}

/// A module from TorchScript bytes on `device`. TorchScript's optimising executor is turned off: it
/// re-specialises a graph after its first runs, which would make a run continued from a checkpoint
/// differ from an uninterrupted one.
pub fn from_bytes(bytes: &[u8], device: Device) -> Result<CModule, String> {
    tch::jit::set_graph_executor_optimize(false);
    CModule::load_data_on_device(&mut &bytes[..], device).map_err(|e| {
        if super::weights::is_torch_save(bytes) {
            // libtorch would call it "corrupted"
            "is a file torch.save wrote (a state dict or a pickled model), not TorchScript: export \
             your network with torch.jit.script(model).save(path), or, for a network of the zoo \
             (`kd-sweep models`), name that model and give this file as its weights \
             (weights = \"<file>\" with epochs = 0)"
                .to_string()
        } else {
            format!("not a TorchScript module ({})", first_line(&e.to_string()))
        }
    })
}

/// The module's whole state (parameters and buffers) as TorchScript bytes in a `u8` CPU tensor.
pub fn state(module: &CModule) -> Result<Tensor, String> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = std::env::temp_dir().join(format!(".kd-sweep-{}-{n}.pt", std::process::id()));
    let saved = module
        .save(&tmp)
        .map_err(|e| e.to_string())
        .and_then(|_| std::fs::read(&tmp).map_err(|e| e.to_string()));
    let _ = std::fs::remove_file(&tmp);
    Ok(Tensor::from_slice(&saved?))
}

/// The bytes of a [`state`] tensor.
pub fn state_bytes(t: &Tensor) -> Result<Vec<u8>, String> {
    Vec::<u8>::try_from(&t.to_device(Device::Cpu).to_kind(Kind::Uint8)).map_err(|e| e.to_string())
}

/// Re-initialises a loaded module's parameters (in their `named_parameters` order, from libtorch's
/// generator) by PyTorch's default rules, read from each parameter's name and shape:
/// - a weight of 2 or more dimensions (convolution, linear): uniform in ±1/√fan_in, fan_in being
///   its elements per output (`kaiming_uniform_(a=√5)`), and its layer's bias the same bound;
/// - a 1-dimensional weight (batch, layer or group norm): 1, and its bias 0;
/// - anything else (e.g. an embedding or a free-standing parameter) keeps the file's values.
///
/// Returns the names of the parameters kept as saved. Buffers are not touched: they are whatever
/// the file holds (0 and 1 for batch norm's running statistics in a freshly built network).
pub fn reinitialise(params: &[(String, Tensor)]) -> Vec<String> {
    let _guard = tch::no_grad_guard();
    let find = |name: &str| params.iter().find(|(n, _)| n == name).map(|(_, t)| t);
    let mut kept = Vec::new();
    for (name, t) in params {
        let mut t = t.shallow_clone();
        let (layer, leaf) = name.rsplit_once('.').unwrap_or(("", name));
        let sibling = |leaf: &str| {
            find(&if layer.is_empty() {
                leaf.to_string()
            } else {
                format!("{layer}.{leaf}")
            })
        };
        let weight = match leaf {
            "weight" => Some(t.shallow_clone()),
            "bias" => sibling("weight").map(|w| w.shallow_clone()),
            _ => None,
        };
        match weight {
            Some(w) if w.dim() >= 2 => {
                let fan_in = w.numel() as i64 / w.size()[0];
                let bound = 1.0 / (fan_in as f64).sqrt();
                let _ = t.uniform_(-bound, bound);
            }
            Some(w) if w.dim() == 1 => {
                let _ = t.fill_(if leaf == "weight" { 1.0 } else { 0.0 });
            }
            _ => kept.push(name.clone()),
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialized_form_round_trips_without_the_file() {
        let s = Script::intern(PathBuf::from("/nowhere/my net.pt"), "ab".repeat(32));
        let back = Script::deserialize(&s.serialized()).unwrap();
        assert!(std::ptr::eq(s, back), "one instance per (path, hash)");
        assert_eq!(s.name(), "my_net.pt");
        assert!(Script::deserialize("resnet8").is_none());
    }

    #[test]
    fn a_missing_file_says_where_it_was_looked_for() {
        let e = Script::open("no/such.pt", Path::new("/tmp/sweeps")).unwrap_err();
        assert!(e.contains("/tmp/sweeps/no/such.pt"), "{e}");
        assert!(e.contains("relative to the sweep file"), "{e}");
        assert!(Script::open("", Path::new("."))
            .unwrap_err()
            .contains("needs a file"));
    }

    #[test]
    fn reinitialisation_follows_pytorchs_rules_by_shape() {
        let p = |name: &str, shape: &[i64]| {
            (
                name.to_string(),
                Tensor::full(shape, 7.0, (Kind::Float, Device::Cpu)),
            )
        };
        let params = vec![
            p("conv.weight", &[8, 3, 3, 3]),
            p("conv.bias", &[8]),
            p("bn.weight", &[8]),
            p("bn.bias", &[8]),
            p("scale", &[1]),
        ];
        tch::manual_seed(0);
        let kept = reinitialise(&params);
        assert_eq!(kept, ["scale"]);
        let bound = 1.0 / 27f64.sqrt();
        for (name, t) in &params[..2] {
            assert!(t.abs().max().double_value(&[]) <= bound + 1e-7);
            assert!(t.std(true).double_value(&[]) > 0.0, "{name} drawn");
        }
        assert_eq!(params[2].1.mean(Kind::Float).double_value(&[]), 1.0);
        assert_eq!(params[3].1.abs().sum(Kind::Float).double_value(&[]), 0.0);
        assert_eq!(params[4].1.double_value(&[0]), 7.0);
    }
}

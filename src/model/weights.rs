//! A trained network's weights from a file, for a teacher used as it is (`[teacher] epochs = 0`,
//! `weights = "file"`): a PyTorch state dict saved by `torch.save` in the zip format PyTorch writes
//! since 1.6 — bare, or under `"state_dict"` or `"model"` as RepDistiller's checkpoints keep it — or a
//! safetensors file. Names are PyTorch's for the network (RepDistiller's for the CRD zoo, the PyTorch
//! tutorial's `features.N`/`classifier.N` for the tutorial pair: [`pytorch_name`]), or kd-sweep's own
//! (a cached teacher's `weights.safetensors`); a `module.` prefix (`nn.DataParallel`) is taken off.
//! Batch norm's running statistics load into its buffers; `num_batches_tracked` is accepted and
//! ignored. float16, bfloat16 and float64 tensors are converted to float32; other types are refused.
//!
//! The pickle is read by [`crate::pickle`], which never calls a global: a tensor is rebuilt here from
//! what `torch._utils._rebuild_tensor_v2` would be given (its storage, offset, size and stride).
//! Like a TorchScript file, a weights file is identified by its SHA-256, which keys hold, not its path.

use super::{Arch, Init, Net};
use crate::pickle::{self, Value};
use crate::util::hex;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use tch::{nn, Device, Kind, Tensor};

/// A weights file a sweep names: where it is and what it holds (its SHA-256, in hex).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Weights {
    /// Absolute, or as the sweep file's folder resolved it.
    pub path: PathBuf,
    pub sha256: String,
}

/// Named tensors as a file holds them (float32 when floating point, on the CPU).
pub type Named = Vec<(String, Tensor)>;

/// At most this many names of each kind of mismatch are listed in an error.
const LISTED: usize = 5;

impl Weights {
    /// The file at `path` (relative to `base`), hashed now.
    pub fn open(path: &str, base: &Path) -> Result<Weights, String> {
        if path.is_empty() {
            return Err("is empty; name a state dict (.pt, .pth) or a .safetensors file".into());
        }
        let (path, sha256) = crate::util::read_hashed(path, base).map_err(|why| {
            format!(
                "cannot read the weights file {why}; a relative path is relative to the sweep file"
            )
        })?;
        Ok(Weights { path, sha256 })
    }

    /// The file's tensors, checked to be the file that was planned.
    pub fn tensors(&self) -> Result<Named, String> {
        let bytes = std::fs::read(&self.path)
            .map_err(|e| format!("cannot read the weights file {}: {e}", self.path.display()))?;
        if hex(&Sha256::digest(&bytes)) != self.sha256 {
            return Err(format!(
                "the weights file {} changed since the sweep was planned; run the sweep again",
                self.path.display()
            ));
        }
        read(&bytes).map_err(|e| format!("{}: {e}", self.path.display()))
    }

    /// Whether the file fits `arch` built for images of `shape` and `classes` classes (every
    /// mismatch listed when not).
    pub fn check(&self, arch: Arch, shape: [i64; 3], classes: i64) -> Result<(), String> {
        let _guard = tch::no_grad_guard();
        let vs = nn::VarStore::new(Device::Cpu);
        let _net = Net::try_new(&vs.root(), arch, shape, classes, Init::default(), None)?;
        self.fit(&vs, arch, classes).map(|_| ())
    }

    /// Copies the file's weights into `vs`, the variables of a network `arch` for `classes`
    /// classes (its batch norms' running statistics included).
    pub fn load_into(&self, vs: &nn::VarStore, arch: Arch, classes: i64) -> Result<(), String> {
        let _guard = tch::no_grad_guard();
        let mut vars = vs.variables();
        for (name, t) in self.fit(vs, arch, classes)? {
            if let Some(v) = vars.get_mut(&name) {
                v.f_copy_(&t).map_err(|e| format!("{name}: {e}"))?;
            }
        }
        Ok(())
    }

    /// The file's tensors by the names of `vs`'s variables, or what does not fit.
    fn fit(&self, vs: &nn::VarStore, arch: Arch, classes: i64) -> Result<Named, String> {
        let mut wanted: Vec<(String, Vec<i64>)> = vs
            .variables()
            .into_iter()
            .map(|(n, t)| (n, t.size()))
            .collect();
        wanted.sort();
        match_names(arch, &wanted, self.tensors()?).map_err(|m| {
            format!(
                "{} does not fit {} for {classes} classes. {m}. A state dict of the same network \
                 (torch.save(model.state_dict(), f), with PyTorch's names, RepDistiller's for the \
                 CRD networks) fits: check [teacher] model and the dataset's classes",
                self.path.display(),
                arch.name()
            )
        })
    }
}

/// Reads a weights file's bytes: a `torch.save` zip or a safetensors file.
pub fn read(bytes: &[u8]) -> Result<Named, String> {
    if bytes.starts_with(b"PK\x03\x04") {
        return read_torch_zip(bytes);
    }
    if is_safetensors(bytes) {
        return read_safetensors(bytes);
    }
    if bytes.first() == Some(&0x80) {
        return Err("is a pickle without the zip around it: PyTorch's format before 1.6 (or \
                    torch.save(..., _use_new_zipfile_serialization=False)), which kd-sweep does not \
                    read; save it again with a recent PyTorch: torch.save(torch.load(f), \"new.pt\")"
            .into());
    }
    Err(
        "is neither a PyTorch state dict saved by torch.save (a zip holding data.pkl) nor a \
         safetensors file"
            .into(),
    )
}

/// A safetensors file starts with its header's length (little-endian u64), then the JSON header.
fn is_safetensors(bytes: &[u8]) -> bool {
    let Some(len) = bytes.get(..8) else {
        return false;
    };
    let n = u64::from_le_bytes(len.try_into().unwrap_or_default());
    n >= 2 && n <= (bytes.len() - 8) as u64 && bytes.get(8) == Some(&b'{')
}

fn read_safetensors(bytes: &[u8]) -> Result<Named, String> {
    use safetensors::Dtype;
    let st = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| format!("is not a readable safetensors file ({e:?})"))?;
    let mut out = Vec::new();
    for (name, view) in st.tensors() {
        let kind = match view.dtype() {
            Dtype::F32 => Kind::Float,
            Dtype::F16 => Kind::Half,
            Dtype::BF16 => Kind::BFloat16,
            Dtype::F64 => Kind::Double,
            Dtype::I64 => Kind::Int64,
            Dtype::I32 => Kind::Int,
            other => return Err(format!("{name}: type {other:?} is not read")),
        };
        let size: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        let flat = from_bytes(view.data(), kind, size.iter().product())?;
        out.push((name, as_float(flat.reshape(&size))));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// `n` elements of `kind` from little-endian `bytes` (which must hold them).
fn from_bytes(bytes: &[u8], kind: Kind, n: i64) -> Result<Tensor, String> {
    let need = n as usize * kind.elt_size_in_bytes();
    if n < 0 || bytes.len() < need {
        return Err(format!(
            "{} bytes of data for {n} elements of {kind:?}",
            bytes.len()
        ));
    }
    Tensor::f_from_data_size(&bytes[..need], &[n], kind).map_err(|e| e.to_string())
}

/// Floating-point tensors as float32; others as they are (refused later if a network needs them).
fn as_float(t: Tensor) -> Tensor {
    match t.kind() {
        Kind::Half | Kind::BFloat16 | Kind::Double => t.to_kind(Kind::Float),
        _ => t,
    }
}

/// A zip PyTorch wrote: its `<archive>/data.pkl` entry, and whether it is TorchScript's
/// (`torch.jit.save` adds `<archive>/code/`) rather than `torch.save`'s. `None`: no such entry.
fn torch_archive(names: &[String]) -> Option<(&str, bool)> {
    let pkl = names
        .iter()
        .find(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1)?;
    let prefix = &pkl[..pkl.len() - "data.pkl".len()];
    let script = names
        .iter()
        .any(|n| n.starts_with(&format!("{prefix}code/")));
    Some((pkl, script))
}

/// Whether `bytes` are a file `torch.save` wrote (a state dict or a pickled module), which is not
/// TorchScript: for the error of a `torchscript:` model given one.
pub(crate) fn is_torch_save(bytes: &[u8]) -> bool {
    let Ok(zip) = zip::ZipArchive::new(std::io::Cursor::new(bytes)) else {
        return false;
    };
    let names: Vec<String> = zip.file_names().map(str::to_string).collect();
    torch_archive(&names).is_some_and(|(_, script)| !script)
}

/// A `torch.save` zip: `<archive>/data.pkl` (the object, its storages as persistent ids) and the
/// storages' bytes in `<archive>/data/<key>`.
fn read_torch_zip(bytes: &[u8]) -> Result<Named, String> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("is not a readable zip ({e})"))?;
    let names: Vec<String> = zip.file_names().map(str::to_string).collect();
    let Some((pkl, script)) = torch_archive(&names) else {
        return Err("is a zip without <archive>/data.pkl, so not a file torch.save wrote".into());
    };
    let prefix = &pkl[..pkl.len() - "data.pkl".len()];
    if script {
        return Err(
            "is a TorchScript file (torch.jit.save), not a state dict: name it as \
                    model = \"torchscript:<file>\" with init = \"as-saved\" instead"
                .into(),
        );
    }
    let mut entry = |name: &str| -> Result<Vec<u8>, String> {
        let mut f = zip
            .by_name(name)
            .map_err(|e| format!("{name} is missing from the zip ({e})"))?;
        let mut v = Vec::with_capacity(f.size() as usize);
        f.read_to_end(&mut v).map_err(|e| format!("{name}: {e}"))?;
        Ok(v)
    };
    if names.contains(&format!("{prefix}byteorder"))
        && entry(&format!("{prefix}byteorder"))?.trim_ascii() == b"big"
    {
        return Err("was saved on a big-endian machine; only little-endian files are read".into());
    }
    let value = pickle::load(&entry(pkl)?).map_err(|e| format!("data.pkl: {e}"))?;
    let dict = state_dict_of(&value)?;
    let mut storages: HashMap<String, Tensor> = HashMap::new();
    let mut out = Vec::new();
    for (k, v) in dict {
        let Some(name) = text(k) else {
            return Err(format!(
                "the state dict has a key that is not a string: {k:?}"
            ));
        };
        let t = rebuild(v, &mut |key, kind, numel| {
            if let Some(s) = storages.get(key) {
                return Ok(s.shallow_clone());
            }
            let data = entry(&format!("{prefix}data/{key}"))?;
            let s = from_bytes(&data, kind, numel).map_err(|e| format!("storage {key}: {e}"))?;
            storages.insert(key.to_string(), s.shallow_clone());
            Ok(s)
        })
        .map_err(|e| format!("{name}: {e}"))?;
        out.push((name.to_string(), as_float(t)));
    }
    Ok(out)
}

/// The state dict in an unpickled object: the object itself when its values are tensors, else its
/// `"state_dict"` or `"model"` entry (a training checkpoint, as RepDistiller saves its teachers).
fn state_dict_of(value: &Value) -> Result<&[(Value, Value)], String> {
    let is_tensor = |v: &Value| tensor_args(v).is_some();
    let Some(items) = value.dict_items() else {
        return Err(match value {
            Value::Object { callable, .. } => format!(
                "holds a pickled object ({}), not a state dict: save model.state_dict()",
                global_name(callable)
            ),
            _ => "holds no dict of tensors: save model.state_dict()".into(),
        });
    };
    if !items.is_empty() && items.iter().all(|(_, v)| is_tensor(v)) {
        return Ok(items);
    }
    for key in ["state_dict", "model"] {
        if let Some(inner) = value.dict_get(key).and_then(Value::dict_items) {
            if !inner.is_empty() && inner.iter().all(|(_, v)| is_tensor(v)) {
                return Ok(inner);
            }
        }
    }
    let keys: Vec<String> = items
        .iter()
        .take(8)
        .map(|(k, _)| match k {
            Value::Str(s) => format!("\"{s}\""),
            other => format!("{other:?}"),
        })
        .collect();
    Err(format!(
        "holds a dict (keys {}) that is not a state dict and has none under \"state_dict\" or \
         \"model\"; save the network's own, e.g. torch.save(checkpoint[{}], \"teacher.pt\"), \
         or put it under \"model\"",
        keys.join(", "),
        keys.first().map_or("\"…\"", String::as_str)
    ))
}

/// A text value (a Python 2 `str` unpickles as bytes).
fn text(v: &Value) -> Option<&str> {
    match v {
        Value::Str(s) => Some(s),
        Value::Bytes(b) => std::str::from_utf8(b).ok(),
        _ => None,
    }
}

fn global_name(v: &Value) -> String {
    match v {
        Value::Global(m, n) => format!("{m}.{n}"),
        _ => "an object".into(),
    }
}

/// The arguments of `_rebuild_tensor_v2` (through `_rebuild_parameter`, for a saved parameter).
fn tensor_args(v: &Value) -> Option<&[Value]> {
    let Value::Object { callable, args, .. } = v else {
        return None;
    };
    let Value::Tuple(a) = args.as_ref() else {
        return None;
    };
    match callable.as_ref() {
        Value::Global(m, f) if m == "torch._utils" && f == "_rebuild_tensor_v2" => Some(a),
        Value::Global(m, f) if m == "torch._utils" && f == "_rebuild_parameter" => {
            tensor_args(a.first()?)
        }
        _ => None,
    }
}

/// A storage's element type by its class name (`torch.FloatStorage`).
fn storage_kind(class: &str) -> Option<Kind> {
    Some(match class {
        "FloatStorage" => Kind::Float,
        "HalfStorage" => Kind::Half,
        "BFloat16Storage" => Kind::BFloat16,
        "DoubleStorage" => Kind::Double,
        "LongStorage" => Kind::Int64,
        "IntStorage" => Kind::Int,
        _ => return None,
    })
}

/// The tensor `_rebuild_tensor_v2(storage, storage_offset, size, stride, …)` would make, its
/// storage from `storage(key, kind, numel)`, copied out of it (contiguous).
fn rebuild(
    v: &Value,
    storage: &mut dyn FnMut(&str, Kind, i64) -> Result<Tensor, String>,
) -> Result<Tensor, String> {
    let args = tensor_args(v).ok_or("is not a tensor")?;
    let [Value::Persistent(pid), Value::Int(offset), size, stride, ..] = args else {
        return Err(
            "is a tensor in a form not read (expected storage, offset, size, stride)".into(),
        );
    };
    let Value::Tuple(pid) = pid.as_ref() else {
        return Err("has a storage reference that is not a tuple".into());
    };
    let (tag, key) = match pid.as_slice() {
        [tag, Value::Global(..), key, _, Value::Int(_)] => (text(tag), text(key)),
        _ => (None, None),
    };
    let ([_, Value::Global(_, class), _, _, Value::Int(numel)], Some(tag), Some(key)) =
        (pid.as_slice(), tag, key)
    else {
        return Err(format!("has a storage reference not read: {pid:?}"));
    };
    let kind = storage_kind(class)
        .filter(|_| tag == "storage")
        .ok_or_else(|| format!("has storage type {class}, which is not read"))?;
    let (size, stride) = match (size.int_list(), stride.int_list()) {
        (Some(a), Some(b)) if a.len() == b.len() => (a, b),
        _ => return Err("has a size or stride that is not a list of integers".into()),
    };
    let elements: i64 = size.iter().product();
    let last = size.iter().zip(&stride).try_fold(*offset, |end, (&n, &s)| {
        (n >= 0 && s >= 0).then(|| end + (n - 1).max(0) * s)
    });
    match last {
        Some(end) if *offset >= 0 && (elements == 0 || end < *numel) => {}
        _ => {
            return Err(format!(
                "has offset {offset}, size {size:?} and stride {stride:?}, which do not fit its \
                 storage of {numel} elements"
            ))
        }
    }
    let s = storage(key, kind, *numel)?;
    Ok(s.as_strided(&size, &stride, *offset).contiguous())
}

/// PyTorch's name of variable `var` of a kd-sweep network `arch`: the zoo's ResNets and Wide ResNets
/// use PyTorch's (RepDistiller's) names already; RepDistiller's VGG blocks are `nn.Sequential`s of
/// conv, bn, relu (`block0.0` the first conv, `block0.1` its bn, `block0.3` the next conv), where the
/// zoo has `block0.0.conv`, `block0.0.bn`; the PyTorch tutorial's networks are `features` (conv, relu
/// and max-pool layers) and `classifier` (linear, relu, dropout, linear).
pub fn pytorch_name(arch: Arch, var: &str) -> String {
    let parts: Vec<&str> = var.split('.').collect();
    match (arch, parts.as_slice()) {
        (Arch::Vgg { .. }, [block, l, layer, p]) if block.starts_with("block") => {
            match (l.parse::<usize>(), *layer) {
                (Ok(l), "conv") => format!("{block}.{}.{p}", 3 * l),
                (Ok(l), "bn") => format!("{block}.{}.{p}", 3 * l + 1),
                _ => var.to_string(),
            }
        }
        (Arch::Teacher | Arch::Student, [layer, p]) => {
            let conv = layer
                .strip_prefix("conv")
                .and_then(|i| i.parse::<usize>().ok());
            match (conv, *layer) {
                (Some(i), _) if i >= 1 => {
                    // each convolution is followed by a relu, and a max-pool where it pools
                    let convs = arch.convs();
                    let at: usize = convs[..(i - 1).min(convs.len())]
                        .iter()
                        .map(|&(_, pool)| 2 + usize::from(pool))
                        .sum();
                    format!("features.{at}.{p}")
                }
                (_, "fc1") => format!("classifier.0.{p}"),
                (_, "fc2") => format!("classifier.3.{p}"),
                _ => var.to_string(),
            }
        }
        _ => var.to_string(),
    }
}

/// The file's tensors by the network's variable names (`wanted`: name and shape, sorted), when
/// every variable is in the file under its PyTorch name or kd-sweep's own, with its shape, and the
/// file has nothing else (but `num_batches_tracked`); else the mismatches, against the names that
/// match most.
fn match_names(arch: Arch, wanted: &[(String, Vec<i64>)], file: Named) -> Result<Named, String> {
    let strip = !file.is_empty() && file.iter().all(|(n, _)| n.starts_with("module."));
    let mut file: HashMap<String, Tensor> = file
        .into_iter()
        .map(|(n, t)| match strip {
            true => (n["module.".len()..].to_string(), t),
            false => (n, t),
        })
        .filter(|(n, _)| !n.ends_with(".num_batches_tracked"))
        .collect();
    let pytorch: Vec<String> = wanted.iter().map(|(n, _)| pytorch_name(arch, n)).collect();
    let own: Vec<String> = wanted.iter().map(|(n, _)| n.clone()).collect();
    let common = |names: &[String]| names.iter().filter(|n| file.contains_key(*n)).count();
    // kd-sweep's own names only for a file written with most of them: a file of another network
    // that shares a name or two is listed by the PyTorch names the README gives
    let names = if common(&own) > common(&pytorch) && 2 * common(&own) > own.len() {
        own
    } else {
        pytorch
    };
    let mut missing = Vec::new();
    let mut shapes = Vec::new();
    let mut kinds = Vec::new();
    let mut out = Vec::new();
    for ((var, shape), name) in wanted.iter().zip(&names) {
        match file.remove(name) {
            None => missing.push(name.clone()),
            Some(t) if t.size() != *shape => shapes.push(format!(
                "{name}: file has {:?}, {} expects {shape:?}",
                t.size(),
                arch.name()
            )),
            Some(t) if t.kind() != Kind::Float => kinds.push(format!("{name} ({:?})", t.kind())),
            Some(t) => out.push((var.clone(), t)),
        }
    }
    let mut unexpected: Vec<String> = file.into_keys().collect();
    unexpected.sort();
    if missing.is_empty() && unexpected.is_empty() && shapes.is_empty() && kinds.is_empty() {
        return Ok(out);
    }
    // a shape's entry has commas of its own: entries of that list are parted by semicolons
    let list = |what: &str, v: &[String], sep: &str| {
        let more = v.len().saturating_sub(LISTED);
        let tail = if more > 0 {
            format!("{sep}… ({} in all)", v.len())
        } else {
            String::new()
        };
        (!v.is_empty()).then(|| format!("{what} {}{tail}", v[..v.len().min(LISTED)].join(sep)))
    };
    Err([
        list("shapes differ:", &shapes, "; "),
        list("not floating point in the file:", &kinds, ", "),
        list("missing from the file:", &missing, ", "),
        list("in the file but not in the network:", &unexpected, ", "),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(". "))
}

#[cfg(test)]
mod tests;

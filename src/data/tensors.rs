//! One file of arrays: `.safetensors` or NumPy's `.npz`, holding `x_train`, `y_train`, `x_test`,
//! `y_test` and, optionally, `x_val`, `y_val` (then the hold-out). Images are `uint8` N×H×W (one
//! channel) or N×C×H×W, or `float32` of those shapes taken as already normalised; labels are
//! `uint8`, `int32` or `int64`, every class 0..K-1 present in `y_train`. The fingerprint is the
//! file's SHA-256.

use super::{DataError, DatasetKind, Label, Layout, Pixels, RawDataset, RawImages, MAX_CLASSES};
use safetensors::tensor::Dtype;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

#[cfg(test)]
mod tests;

pub(super) const LAYOUT: &str = "set `data.path` to one .safetensors or .npz file holding the \
     arrays x_train, y_train, x_test, y_test (optionally x_val, y_val: then the hold-out): images \
     uint8 N×H×W or N×C×H×W (or float32, already normalised), labels uint8, int32 or int64";

const REQUIRED: [&str; 4] = ["x_train", "y_train", "x_test", "y_test"];

/// An array's element type, as far as kd-sweep reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Elem {
    U8,
    F32,
    I32,
    I64,
    Other,
}

/// An array's header: element type (and its name in the file's terms) and shape.
#[derive(Debug, Clone)]
struct Info {
    elem: Elem,
    dtype: String,
    shape: Vec<usize>,
}

/// An array's values.
enum Values {
    U8(Vec<u8>),
    F32(Vec<f32>),
    Int(Vec<i64>),
}

/// An open file of arrays: the headers of all, the values of one on demand.
enum File {
    Safetensors {
        file: std::fs::File,
        data_start: u64,
        offsets: BTreeMap<String, (usize, usize)>,
    },
    Npz(npyz::npz::NpzArchive<std::io::BufReader<std::fs::File>>),
}

fn bad(path: &Path, what: impl std::fmt::Display) -> DataError {
    DataError::new(path, format!("{what}; {LAYOUT}"))
}

/// Opens the file (by its first bytes: a zip archive is an npz) and reads every array's header.
fn open(path: &Path) -> Result<(File, BTreeMap<String, Info>), DataError> {
    let mut f = std::fs::File::open(path).map_err(|e| bad(path, format!("cannot read ({e})")))?;
    let mut magic = [0u8; 8];
    let n = f
        .read(&mut magic)
        .map_err(|e| bad(path, format!("cannot read ({e})")))?;
    if n == 8 && magic.starts_with(b"PK\x03\x04") {
        return open_npz(path);
    }
    if n < 8 {
        return Err(bad(path, "too short for a safetensors or npz file"));
    }
    let len = u64::from_le_bytes(magic);
    if len > 100_000_000 {
        return Err(bad(
            path,
            "neither an npz (zip) file nor a safetensors file (its header length is implausible)",
        ));
    }
    let mut head = vec![0u8; len as usize];
    f.read_exact(&mut head)
        .map_err(|_| bad(path, "truncated safetensors header"))?;
    let meta: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&head)
        .map_err(|e| bad(path, format!("not a safetensors header ({e})")))?;
    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
    let (mut infos, mut offsets) = (BTreeMap::new(), BTreeMap::new());
    for (name, v) in meta {
        if name == "__metadata__" {
            continue;
        }
        let info: safetensors::tensor::TensorInfo = serde_json::from_value(v)
            .map_err(|e| bad(path, format!("array {name}'s header does not parse ({e})")))?;
        let (a, b) = info.data_offsets;
        if a > b || 8 + len + b as u64 > size {
            return Err(bad(
                path,
                format!("truncated: array {name} ends past the file's end"),
            ));
        }
        let elem = match info.dtype {
            Dtype::U8 => Elem::U8,
            Dtype::F32 => Elem::F32,
            Dtype::I32 => Elem::I32,
            Dtype::I64 => Elem::I64,
            _ => Elem::Other,
        };
        let dtype = format!("{:?}", info.dtype).to_lowercase();
        infos.insert(
            name.clone(),
            Info {
                elem,
                dtype,
                shape: info.shape,
            },
        );
        offsets.insert(name, (a, b));
    }
    Ok((
        File::Safetensors {
            file: f,
            data_start: 8 + len,
            offsets,
        },
        infos,
    ))
}

fn open_npz(path: &Path) -> Result<(File, BTreeMap<String, Info>), DataError> {
    let mut z = npyz::npz::NpzArchive::open(path)
        .map_err(|e| bad(path, format!("not a readable npz file ({e})")))?;
    let names: Vec<String> = z.array_names().map(String::from).collect();
    let mut infos = BTreeMap::new();
    for name in names {
        let Some(npy) = z
            .by_name(&name)
            .map_err(|e| bad(path, format!("array {name}: {e}")))?
        else {
            continue;
        };
        if npy.order() == npyz::Order::Fortran {
            return Err(bad(
                path,
                format!("array {name} is in Fortran order; save it with np.ascontiguousarray"),
            ));
        }
        let dtype = npy.dtype().descr().trim_matches('\'').to_string();
        let elem = match dtype.trim_start_matches(['<', '>', '|', '=']) {
            "u1" => Elem::U8,
            "f4" => Elem::F32,
            "i4" => Elem::I32,
            "i8" => Elem::I64,
            _ => Elem::Other,
        };
        let shape = npy.shape().iter().map(|&d| d as usize).collect();
        infos.insert(name, Info { elem, dtype, shape });
    }
    Ok((File::Npz(z), infos))
}

impl File {
    /// The values of array `name` (whose header is `info`).
    fn load(&mut self, path: &Path, name: &str, info: &Info) -> Result<Values, DataError> {
        let fail =
            |e: &dyn std::fmt::Display| bad(path, format!("array {name} cannot be read ({e})"));
        match self {
            File::Safetensors {
                file,
                data_start,
                offsets,
            } => {
                let (a, b) = offsets[name];
                let mut bytes = vec![0u8; b - a];
                file.seek(SeekFrom::Start(*data_start + a as u64))
                    .map_err(|e| fail(&e))?;
                file.read_exact(&mut bytes).map_err(|e| fail(&e))?;
                let n: usize = info.shape.iter().product();
                let width = match info.elem {
                    Elem::U8 => 1,
                    Elem::F32 | Elem::I32 => 4,
                    _ => 8,
                };
                if bytes.len() != n * width {
                    return Err(fail(&format!(
                        "{} bytes for shape {:?}",
                        bytes.len(),
                        info.shape
                    )));
                }
                let le4 = |c: &[u8]| [c[0], c[1], c[2], c[3]];
                Ok(match info.elem {
                    Elem::U8 => Values::U8(bytes),
                    Elem::F32 => Values::F32(
                        bytes
                            .chunks_exact(4)
                            .map(|c| f32::from_le_bytes(le4(c)))
                            .collect(),
                    ),
                    Elem::I32 => Values::Int(
                        bytes
                            .chunks_exact(4)
                            .map(|c| i32::from_le_bytes(le4(c)) as i64)
                            .collect(),
                    ),
                    _ => Values::Int(
                        bytes
                            .chunks_exact(8)
                            .map(|c| i64::from_le_bytes(c.try_into().unwrap_or_default()))
                            .collect(),
                    ),
                })
            }
            File::Npz(z) => {
                let npy = z
                    .by_name(name)
                    .map_err(|e| fail(&e))?
                    .ok_or_else(|| fail(&"gone"))?;
                Ok(match info.elem {
                    Elem::U8 => Values::U8(npy.into_vec().map_err(|e| fail(&e))?),
                    Elem::F32 => Values::F32(npy.into_vec().map_err(|e| fail(&e))?),
                    Elem::I32 => Values::Int(
                        (npy.into_vec::<i32>().map_err(|e| fail(&e))?)
                            .into_iter()
                            .map(i64::from)
                            .collect(),
                    ),
                    _ => Values::Int(npy.into_vec().map_err(|e| fail(&e))?),
                })
            }
        }
    }
}

/// The pairs of arrays present: train, test, then val when `x_val` or `y_val` is there.
fn pairs(
    path: &Path,
    infos: &BTreeMap<String, Info>,
) -> Result<Vec<(&'static str, &'static str)>, DataError> {
    let present = || infos.keys().cloned().collect::<Vec<_>>().join(", ");
    for name in REQUIRED {
        if !infos.contains_key(name) {
            return Err(bad(
                path,
                format!("no array {name} (the file has: {})", present()),
            ));
        }
    }
    let mut out = vec![("x_train", "y_train"), ("x_test", "y_test")];
    match (infos.contains_key("x_val"), infos.contains_key("y_val")) {
        (true, true) => out.push(("x_val", "y_val")),
        (false, false) => {}
        (x, _) => {
            let (has, lacks) = if x {
                ("x_val", "y_val")
            } else {
                ("y_val", "x_val")
            };
            return Err(bad(
                path,
                format!(
                    "has {has} but no {lacks} (the file has: {}); give both or neither",
                    present()
                ),
            ));
        }
    }
    Ok(out)
}

/// Checks an image array's type and shape: (channels, height, width, float).
fn image_shape(
    path: &Path,
    name: &str,
    i: &Info,
) -> Result<(usize, usize, usize, bool), DataError> {
    let float = match i.elem {
        Elem::U8 => false,
        Elem::F32 => true,
        _ => {
            return Err(bad(
                path,
                format!(
                    "array {name} is {}; images are uint8 (0..255) or float32 (already normalised)",
                    i.dtype
                ),
            ))
        }
    };
    let (c, h, w) = match i.shape[..] {
        [_, h, w] => (1, h, w),
        [_, c, _, w] if c > 4 && matches!(w, 1 | 3) => {
            return Err(bad(path, format!("array {name} has shape {:?}, which looks like N×H×W×C; store N×C×H×W (x.transpose(0, 3, 1, 2))", i.shape)))
        }
        [_, c, h, w] => (c, h, w),
        _ => return Err(bad(path, format!("array {name} has shape {:?}; images are N×H×W or N×C×H×W", i.shape))),
    };
    super::check_side(path, h, w, "resize the images before saving them")?;
    Ok((c, h, w, float))
}

/// Checks the headers: every pair present, images of one shape and type, one label per image.
fn check_headers(
    path: &Path,
    infos: &BTreeMap<String, Info>,
) -> Result<(usize, usize, usize, bool), DataError> {
    let mut first: Option<(usize, usize, usize, bool)> = None;
    for (x, y) in pairs(path, infos)? {
        let (xi, yi) = (&infos[x], &infos[y]);
        let s = image_shape(path, x, xi)?;
        if let Some(f) = first {
            if f != s {
                return Err(bad(path, format!("x_train holds {} images of {}×{}×{} but {x} {} of {}×{}×{}; every split needs the same", if f.3 { "float32" } else { "uint8" }, f.0, f.1, f.2, if s.3 { "float32" } else { "uint8" }, s.0, s.1, s.2)));
            }
        }
        first.get_or_insert(s);
        if !matches!(yi.elem, Elem::U8 | Elem::I32 | Elem::I64) {
            return Err(bad(
                path,
                format!(
                    "array {y} is {}; labels are uint8, int32 or int64",
                    yi.dtype
                ),
            ));
        }
        if xi.shape[0] == 0 {
            return Err(bad(
                path,
                format!(
                    "array {x} holds no images (shape {:?}); every split needs at least one",
                    xi.shape
                ),
            ));
        }
        if yi.shape.len() > 1 && yi.shape[0] == xi.shape[0] && yi.shape[1..].iter().all(|&d| d == 1)
        {
            return Err(bad(path, format!("array {y} has shape {:?}: one label per image, but as a column; store it flat, shape [{}] (y.reshape(-1))", yi.shape, xi.shape[0])));
        }
        if yi.shape.len() != 1 || yi.shape[0] != xi.shape[0] {
            return Err(bad(path, format!("array {x} has {} images (shape {:?}) but {y} has shape {:?}; give one label per image", xi.shape[0], xi.shape, yi.shape)));
        }
    }
    first.ok_or_else(|| bad(path, "no images"))
}

/// Labels as [`Label`]s: none negative, every class 0..K-1 in the training labels; K.
fn labels(path: &Path, all: &[(&str, Vec<i64>)]) -> Result<(Vec<Vec<Label>>, usize), DataError> {
    let mut max = 0;
    for (name, ys) in all {
        if let Some(bad_label) = ys.iter().find(|&&l| !(0..MAX_CLASSES as i64).contains(&l)) {
            return Err(bad(
                path,
                format!(
                    "array {name} has label {bad_label}; labels are 0..K-1 with K ≤ {MAX_CLASSES}"
                ),
            ));
        }
        max = max.max(ys.iter().copied().max().unwrap_or(0));
    }
    let classes = max as usize + 1;
    let mut seen = vec![false; classes];
    all[0].1.iter().for_each(|&l| seen[l as usize] = true);
    if let Some(gap) = seen.iter().position(|s| !s) {
        return Err(bad(path, format!("class {gap} has no training image (y_train lacks it, labels go up to {max}); labels must be 0..K-1 with every class in y_train")));
    }
    let labels = all
        .iter()
        .map(|(_, ys)| ys.iter().map(|&l| l as Label).collect())
        .collect();
    Ok((labels, classes))
}

/// Reads the label arrays (all of them).
fn read_labels(
    path: &Path,
    file: &mut File,
    infos: &BTreeMap<String, Info>,
) -> Result<(Vec<Vec<Label>>, usize), DataError> {
    let mut all = Vec::new();
    for (_, y) in pairs(path, infos)? {
        let ys = match file.load(path, y, &infos[y])? {
            Values::Int(v) => v,
            Values::U8(v) => v.into_iter().map(i64::from).collect(),
            Values::F32(_) => {
                return Err(bad(
                    path,
                    format!("array {y} is float; labels are integers"),
                ))
            }
        };
        all.push((y, ys));
    }
    labels(path, &all)
}

/// The file's image shape, classes and whether it has its own validation split, from the headers
/// and the labels.
pub(super) fn peek(path: &Path) -> Result<Layout, DataError> {
    let (mut file, infos) = open(path)?;
    let (c, h, w, float) = check_headers(path, &infos)?;
    let (_, classes) = read_labels(path, &mut file, &infos)?;
    Ok(Layout {
        shape: [c as i64, h as i64, w as i64],
        classes,
        class_names: Vec::new(),
        own_validation: infos.contains_key("x_val"),
        float,
    })
}

/// Reads the whole file.
pub(super) fn read(path: &Path) -> Result<RawDataset, DataError> {
    let (mut file, infos) = open(path)?;
    let (c, h, w, _) = check_headers(path, &infos)?;
    let (mut ys, classes) = read_labels(path, &mut file, &infos)?;
    let mut splits = Vec::new();
    for ((x, _), labels) in pairs(path, &infos)?.into_iter().zip(ys.drain(..)) {
        let pixels = match file.load(path, x, &infos[x])? {
            Values::U8(b) => Pixels::U8(b),
            Values::F32(f) => {
                // a NaN would otherwise train as a diverged loss, blamed on the learning rate
                if let Some(at) = f.iter().position(|v| !v.is_finite()) {
                    let size = (c * h * w).max(1);
                    let (image, element) = (at / size, at % size);
                    return Err(bad(path, format!("array {x} holds {} (image {image}, element {element} of its {size}); float32 images must be finite numbers", f[at])));
                }
                Pixels::F32(f)
            }
            Values::Int(_) => return Err(bad(path, format!("array {x} is not images"))),
        };
        splits.push(RawImages {
            n: labels.len(),
            c,
            h,
            w,
            pixels,
            labels,
        });
    }
    let mut hasher = Sha256::new();
    let mut f = std::fs::File::open(path).map_err(|e| bad(path, format!("cannot read ({e})")))?;
    let mut chunk = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut chunk)
            .map_err(|e| bad(path, format!("cannot read ({e})")))?;
        if n == 0 {
            break;
        }
        hasher.update(&chunk[..n]);
    }
    let mut splits = splits.into_iter();
    let (Some(train), Some(test)) = (splits.next(), splits.next()) else {
        return Err(bad(path, "no training or test images"));
    };
    Ok(RawDataset {
        kind: DatasetKind::Tensors,
        train,
        val: splits.next(),
        test,
        classes,
        class_names: Vec::new(),
        fingerprint: crate::util::hex(&hasher.finalize()),
    })
}

//! `kd-sweep models`: the networks a sweep file can name, with their sizes for a dataset's images.

use super::{Arch, ZOO};
use crate::data::DatasetKind;
use std::fmt::Write;
use std::path::Path;

/// The table of the zoo and of `extra` names (any valid depth and width, or `torchscript:FILE`
/// relative to the current folder) for `dataset`'s image shape and classes; an unknown name's
/// error (with the nearest name) when one is not a network.
pub fn table(dataset: DatasetKind, extra: &[String]) -> Result<String, String> {
    let shape = dataset.image_shape();
    let classes = dataset.classes() as i64;
    let mut archs: Vec<Arch> = ZOO
        .iter()
        .map(|n| Arch::parse(n))
        .collect::<Result<_, _>>()?;
    for n in extra {
        let a = Arch::parse_in(n, Path::new("."))?;
        if !archs.contains(&a) {
            archs.push(a);
        }
    }
    let mut o = format!(
        "models for {} ({}×{}×{} images, {classes} classes):\n\n",
        dataset.name(),
        shape[0],
        shape[1],
        shape[2]
    );
    let _ = writeln!(
        o,
        "{:<18} {:>12} {:>18}  fused",
        "model", "parameters", "M multiply-adds"
    );
    for a in archs {
        let (params, macs) = a.size(shape, classes);
        // a TorchScript network's multiply-adds are not counted
        let macs = match a.script() {
            Some(_) => "—".to_string(),
            None => format!("{:.2}", macs as f64 / 1e6),
        };
        let _ = writeln!(
            o,
            "{:<18} {:>12} {:>18}  {}",
            a.name(),
            params,
            macs,
            if a.fusable() { "yes" } else { "no" }
        );
    }
    o.push_str("\nper image, one forward pass; a training step costs about 3 times that\n");
    Ok(o)
}

//! `kd-sweep models`: the networks a sweep file can name, with their sizes for a dataset's images.

use super::{Arch, ZOO};
use std::fmt::Write;
use std::path::Path;

/// The table of the zoo and of `extra` names (any valid depth and width, or `torchscript:FILE`
/// relative to the current folder) for a dataset (`dataset`, its name) of `shape` images and
/// `classes` classes; an unknown name's error (with the nearest name) when one is not a network.
pub fn table(
    dataset: &str,
    shape: [i64; 3],
    classes: i64,
    extra: &[String],
) -> Result<String, String> {
    let mut archs: Vec<Arch> = ZOO
        .iter()
        .map(|n| Arch::parse(n))
        .collect::<Result<_, _>>()?;
    for n in extra {
        let a = Arch::parse_in(n, Path::new("."))?;
        // a scripted network that cannot take these images has no size to list (it counted 0)
        if let Some(s) = a.script() {
            s.probe(shape).map_err(|why| {
                format!(
                    "{why}; list it for the images it was made for: kd-sweep models \
                     --dataset <name> [--data <path>] {n}"
                )
            })?;
        }
        if !archs.contains(&a) {
            archs.push(a);
        }
    }
    let mut o = format!(
        "models for {} ({}×{}×{} images, {classes} classes):\n\n",
        dataset, shape[0], shape[1], shape[2]
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

//! What a folder named on the command line is, in the layout kd-sweep writes: a sweep's results
//! folder (`<root>/<name>/`, which holds manifest.json), a results root (whose subfolders are
//! sweeps' folders), or neither.

use super::MANIFEST;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Folder {
    /// A sweep's results folder.
    Sweep,
    /// A results root: the names of the sweeps' folders in it (sorted; at least one).
    Root(Vec<String>),
    /// Nothing there.
    Missing,
    /// A folder (or file) that is neither.
    Other,
}

/// What `dir` is.
pub fn classify(dir: &Path) -> Folder {
    if dir.join(MANIFEST).is_file() {
        return Folder::Sweep;
    }
    if !dir.exists() {
        return Folder::Missing;
    }
    match sweeps_in(dir) {
        names if names.is_empty() => Folder::Other,
        names => Folder::Root(names),
    }
}

/// The names of the sweeps' folders in `root` (those holding manifest.json; hidden ones such as
/// `.cache` are not sweeps), sorted.
pub fn sweeps_in(root: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().join(MANIFEST).is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names
}

/// Why `dir` is not a sweep's results folder, for a command that reads one: it does not exist
/// (with the nearest sweep beside it, when one is close), it is a results root (with its sweeps),
/// or it holds no manifest (`other`'s words). `None` for a sweep's folder.
pub fn not_a_sweep(dir: &Path, other: &str) -> Option<String> {
    let shown = dir.display();
    match classify(dir) {
        Folder::Sweep => None,
        Folder::Missing => {
            let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
            let beside = sweeps_in(parent.unwrap_or(Path::new(".")));
            let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
            let near =
                name.and_then(|n| crate::util::nearest(&n, beside.iter().map(String::as_str)));
            let hint = match (near, parent) {
                (Some(n), Some(p)) => format!("; did you mean {}?", p.join(n).display()),
                (Some(n), None) => format!("; did you mean {n}?"),
                (None, _) => String::new(),
            };
            Some(format!(
                "{shown}: no such folder{hint} (give a sweep's results folder, <results root>/<sweep \
                 name>, such as results/quick)"
            ))
        }
        Folder::Root(names) => {
            let list: Vec<String> = names
                .iter()
                .map(|n| dir.join(n).display().to_string())
                .collect();
            Some(format!(
                "{shown} is a results root holding {} sweep(s), not one sweep's folder; pick one: {}",
                names.len(),
                list.join(", ")
            ))
        }
        Folder::Other => Some(format!("{shown}: {other}")),
    }
}

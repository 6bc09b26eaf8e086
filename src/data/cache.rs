//! Decoded images of a folder dataset, kept so that a second run does not decode again:
//! `<results>/.cache/data/folder-<key>.safetensors`, keyed by the folder's content hash and
//! `image_size` (so moving the folder keeps its cache), one `uint8` N×C×H×W tensor per split. Written
//! whole or not at all ([`crate::files::write_atomic`]); a file that does not read back as expected is
//! ignored and written again.

use super::{Pixels, RawImages};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The cache file of a folder with content hash `fingerprint` read at `image_size`.
pub(super) fn path(dir: &Path, fingerprint: &str, image_size: Option<[u32; 2]>) -> PathBuf {
    let mut h = Sha256::new();
    h.update(fingerprint.as_bytes());
    if let Some([ht, wd]) = image_size {
        h.update(format!(" image_size {ht}x{wd}").as_bytes());
    }
    dir.join(format!(
        "folder-{}.safetensors",
        crate::util::hex(&h.finalize())
    ))
}

/// The splits cached at `path`, when the file holds one image tensor per split with `counts` images.
/// Labels are left empty: they come from the listing.
pub(super) fn load(path: &Path, counts: &[usize]) -> Option<Vec<RawImages>> {
    let bytes = std::fs::read(path).ok()?;
    let st = SafeTensors::deserialize(&bytes).ok()?;
    let mut out = Vec::new();
    for (i, &n) in counts.iter().enumerate() {
        let t = st.tensor(&format!("split{i}")).ok()?;
        let &[tn, c, h, w] = t.shape() else {
            return None;
        };
        if t.dtype() != Dtype::U8 || tn != n {
            return None;
        }
        out.push(RawImages {
            n,
            c,
            h,
            w,
            pixels: Pixels::U8(t.data().to_vec()),
            labels: Vec::new(),
        });
    }
    Some(out)
}

/// Writes the splits' images to `path` (its folder made when missing).
pub(super) fn save(path: &Path, splits: &[RawImages]) -> std::io::Result<()> {
    let err = |e: safetensors::SafeTensorError| std::io::Error::other(format!("{e:?}"));
    let mut views = Vec::new();
    for (i, s) in splits.iter().enumerate() {
        let Some(px) = s.pixels.as_u8() else {
            return Err(std::io::Error::other("only 8-bit images are cached"));
        };
        let view = TensorView::new(Dtype::U8, vec![s.n, s.c, s.h, s.w], px).map_err(err)?;
        views.push((format!("split{i}"), view));
    }
    let bytes = safetensors::tensor::serialize(views, &None).map_err(err)?;
    crate::files::write_atomic(path, &bytes)
}

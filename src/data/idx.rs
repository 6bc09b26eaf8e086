//! IDX files (MNIST, Fashion-MNIST): big-endian magic `0x0000_08_NN` (unsigned bytes, NN dimensions),
//! NN big-endian u32 sizes, then the data. Gzipped or not.

use super::{read_maybe_gz, DataError, Label, Pixels, RawImages};
use sha2::Sha256;
use std::path::{Path, PathBuf};

pub const FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// `name` or `name.gz` in `dir`.
fn find(dir: &Path, name: &str) -> Result<PathBuf, DataError> {
    for cand in [dir.join(name), dir.join(format!("{name}.gz"))] {
        if cand.is_file() {
            return Ok(cand);
        }
    }
    Err(DataError::new(
        &dir.join(name),
        format!(
            "missing (also looked for {name}.gz); the folder must hold the four IDX files: {}",
            FILES.join(", ")
        ),
    ))
}

/// Parses one IDX file holding unsigned bytes with `dims` dimensions; returns the sizes and the data.
pub fn parse(path: &Path, bytes: &[u8], dims: usize) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    let header = 4 + 4 * dims;
    if bytes.len() < header {
        return Err(DataError::new(
            path,
            format!(
                "truncated: {} bytes, shorter than the {header}-byte IDX header",
                bytes.len()
            ),
        ));
    }
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let want = 0x0800 | dims as u32;
    if magic != want {
        return Err(DataError::new(path, format!("wrong magic number 0x{magic:08x} (expected 0x{want:08x}: unsigned bytes, {dims} dimensions); not an IDX file of this kind")));
    }
    let sizes: Vec<usize> = (0..dims)
        .map(|i| {
            let o = 4 + 4 * i;
            u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize
        })
        .collect();
    let want_len = sizes.iter().try_fold(1usize, |a, &s| a.checked_mul(s));
    let body = &bytes[header..];
    match want_len {
        Some(n) if n == body.len() => Ok((sizes, body.to_vec())),
        Some(n) if n > body.len() => Err(DataError::new(
            path,
            format!(
                "truncated: the header promises {n} data bytes ({sizes:?}) but {} follow",
                body.len()
            ),
        )),
        _ => Err(DataError::new(
            path,
            format!(
                "{} data bytes do not match the header's sizes {sizes:?}",
                body.len()
            ),
        )),
    }
}

fn read_pair(
    dir: &Path,
    images: &str,
    labels: &str,
    hasher: &mut Sha256,
) -> Result<RawImages, DataError> {
    let ip = find(dir, images)?;
    let lp = find(dir, labels)?;
    let (isz, pixels) = parse(&ip, &read_maybe_gz(&ip, hasher)?, 3)?;
    let (lsz, labels) = parse(&lp, &read_maybe_gz(&lp, hasher)?, 1)?;
    if isz[0] != lsz[0] {
        return Err(DataError::new(
            &lp,
            format!(
                "{} labels but {} has {} images; the files do not belong together",
                lsz[0],
                ip.display(),
                isz[0]
            ),
        ));
    }
    if isz[1] == 0 || isz[2] == 0 || isz[1] % 4 != 0 || isz[2] % 4 != 0 {
        return Err(DataError::new(
            &ip,
            format!(
                "images are {}×{}; the models need heights and widths divisible by 4",
                isz[1], isz[2]
            ),
        ));
    }
    Ok(RawImages {
        n: isz[0],
        c: 1,
        h: isz[1],
        w: isz[2],
        pixels: Pixels::U8(pixels),
        labels: labels.into_iter().map(Label::from).collect(),
    })
}

pub fn read_dir(dir: &Path, hasher: &mut Sha256) -> Result<(RawImages, RawImages), DataError> {
    let train = read_pair(dir, FILES[0], FILES[1], hasher)?;
    let test = read_pair(dir, FILES[2], FILES[3], hasher)?;
    if (train.h, train.w) != (test.h, test.w) {
        return Err(DataError::new(
            dir,
            format!(
                "training images are {}×{} but test images {}×{}",
                train.h, train.w, test.h, test.w
            ),
        ));
    }
    Ok((train, test))
}

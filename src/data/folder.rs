//! torchvision's `ImageFolder` layout: `train/<class>/*`, `test/<class>/*` and, optionally,
//! `validation/<class>/*` (then the hold-out), PNG and JPEG files. Classes are the class folders in
//! Python's `sorted()` order (by code point, which is UTF-8 byte order) and a class's files are in
//! ImageFolder's order (`sorted(os.walk(...))`: a folder's own files by name, then each subfolder's,
//! folders in path order). Files are hashed and decoded in parallel (rayon), and the decoded bytes
//! are cached by the folder's content ([`super::cache`]).

use super::{
    cache, check_side, digests, DataError, DatasetKind, Label, Layout, Pixels, RawDataset,
    RawImages, MAX_CLASSES,
};
use image::{ImageBuffer, Pixel};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

#[cfg(test)]
mod tests;

pub(super) const LAYOUT: &str = "set `data.path` to a folder in torchvision's ImageFolder layout: \
     train/<class>/*.png|jpg and test/<class>/*.png|jpg, optionally validation/<class>/* (then the \
     hold-out, in place of data.validation's random draw)";

/// Extensions read (compared lower-cased), and those ImageFolder would also read that kd-sweep does not.
const READ: [&str; 3] = ["png", "jpg", "jpeg"];
const UNSUPPORTED: [&str; 6] = ["bmp", "ppm", "pgm", "tif", "tiff", "webp"];

/// One image file: its path from the dataset's folder (hashed, so moving the folder keeps the
/// fingerprint), where it is, and its class.
struct Entry {
    rel: Vec<u8>,
    path: PathBuf,
    label: Label,
}

fn io_error(path: &Path, e: std::io::Error) -> DataError {
    DataError::new(path, format!("cannot read: {e}"))
}

/// The class folders of `split` (a split's folder), sorted as Python sorts strings.
fn list_classes(split: &Path) -> Result<Vec<String>, DataError> {
    if !split.is_dir() {
        return Err(DataError::new(split, format!("missing; {LAYOUT}")));
    }
    let mut classes = Vec::new();
    for e in std::fs::read_dir(split).map_err(|e| io_error(split, e))? {
        let e = e.map_err(|e| io_error(split, e))?;
        // ImageFolder follows links: a linked class folder is a class
        if std::fs::metadata(e.path()).is_ok_and(|m| m.is_dir()) {
            let name = e.file_name().into_string().map_err(|n| {
                DataError::new(
                    &e.path(),
                    format!("class folder name {n:?} is not UTF-8; rename it"),
                )
            })?;
            classes.push(name);
        }
    }
    classes.sort();
    if classes.is_empty() {
        return Err(DataError::new(
            split,
            format!("has no class folders; {LAYOUT}"),
        ));
    }
    Ok(classes)
}

/// A class folder's images in ImageFolder's order (see the module's comment).
fn images_of(class_dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut dirs = vec![class_dir.to_path_buf()];
    let mut at = 0;
    while at < dirs.len() {
        let d = dirs[at].clone();
        at += 1;
        if dirs.len() > 100_000 || d.components().count() > class_dir.components().count() + 32 {
            return Err(DataError::new(&d, "too deep: a link loop? class folders are followed through links, as ImageFolder does"));
        }
        for e in std::fs::read_dir(&d).map_err(|e| io_error(&d, e))? {
            let p = e.map_err(|e| io_error(&d, e))?.path();
            if std::fs::metadata(&p).is_ok_and(|m| m.is_dir()) {
                dirs.push(p);
            }
        }
    }
    let bytes = |p: &PathBuf| p.as_os_str().as_encoded_bytes().to_vec();
    dirs.sort_by_key(bytes);
    let mut out = Vec::new();
    for d in dirs {
        let mut files = Vec::new();
        for e in std::fs::read_dir(&d).map_err(|e| io_error(&d, e))? {
            let p = e.map_err(|e| io_error(&d, e))?.path();
            let ext = (p.extension().and_then(|x| x.to_str())).map(str::to_ascii_lowercase);
            let Some(ext) = ext else { continue };
            if UNSUPPORTED.contains(&ext.as_str()) {
                return Err(DataError::new(&p, format!("a .{ext} image, which ImageFolder would read but kd-sweep does not; convert it to PNG (lossless) or remove it")));
            }
            if !READ.contains(&ext.as_str()) {
                continue;
            }
            match std::fs::metadata(&p) {
                Ok(m) if m.is_file() => files.push(p),
                Ok(_) => {} // a folder named like an image: walked above
                // ImageFolder would fail on it: a link to nothing is a hole in the data
                Err(e) if p.is_symlink() => {
                    let to = std::fs::read_link(&p)
                        .map_or(String::new(), |t| format!(" to {}", t.display()));
                    return Err(DataError::new(
                        &p,
                        format!("a link{to} that leads nowhere ({e}); fix the link or remove it"),
                    ));
                }
                Err(e) => return Err(io_error(&p, e)),
            }
        }
        files.sort_by_key(bytes);
        out.extend(files);
    }
    Ok(out)
}

/// The classes both sets differ by, for an error.
fn class_difference(split: &str, train: &[String], other: &[String]) -> String {
    let missing: Vec<&str> = (train.iter())
        .filter(|c| !other.contains(c))
        .map(String::as_str)
        .collect();
    let extra: Vec<&str> = (other.iter())
        .filter(|c| !train.contains(c))
        .map(String::as_str)
        .collect();
    let mut says = Vec::new();
    if !missing.is_empty() {
        says.push(format!("lacks train/'s class(es) {}", missing.join(", ")));
    }
    if !extra.is_empty() {
        says.push(format!(
            "has class(es) {} that train/ lacks",
            extra.join(", ")
        ));
    }
    format!(
        "{split}/ {}; every split needs the same class folders (an empty class folder is an error too)",
        says.join(" and ")
    )
}

/// Every image of the splits present (train, test, then validation when its folder exists), with
/// the classes of train/ and whether validation/ exists.
fn entries(dir: &Path) -> Result<(Vec<String>, Vec<Vec<Entry>>), DataError> {
    let classes = list_classes(&dir.join("train"))?;
    if classes.len() > MAX_CLASSES {
        return Err(DataError::new(&dir.join("train"), format!("{} class folders; kd-sweep holds labels in 16 bits, so at most {MAX_CLASSES} classes", classes.len())));
    }
    let mut splits = Vec::new();
    for split in ["train", "test", "validation"] {
        let sd = dir.join(split);
        if split == "validation" && !sd.exists() {
            break;
        }
        let have = list_classes(&sd)?;
        if have != classes {
            return Err(DataError::new(
                &sd,
                class_difference(split, &classes, &have),
            ));
        }
        let mut list = Vec::new();
        for (label, class) in classes.iter().enumerate() {
            let cd = sd.join(class);
            let files = images_of(&cd)?;
            if files.is_empty() {
                return Err(DataError::new(&cd, "class folder has no PNG or JPEG image (.png, .jpg, .jpeg); add its images or remove the class from every split"));
            }
            for path in files {
                let rel = path.strip_prefix(dir).unwrap_or(&path);
                let rel = rel.as_os_str().as_encoded_bytes().to_vec();
                list.push(Entry {
                    rel,
                    path,
                    label: label as Label,
                });
            }
        }
        splits.push(list);
    }
    Ok((classes, splits))
}

/// The channels an 8-bit colour type gives (alpha dropped), or why it is refused.
fn channels_of(c: image::ColorType) -> Result<usize, String> {
    use image::ColorType::*;
    match c {
        L8 | La8 => Ok(1),
        Rgb8 | Rgba8 => Ok(3),
        other => Err(format!("{other:?} pixels; kd-sweep reads 8-bit grayscale or colour images: convert it to 8 bits per channel")),
    }
}

/// Channels, height and width from the first image's header, without decoding it.
fn header(path: &Path) -> Result<(usize, u32, u32), DataError> {
    use image::ImageDecoder;
    let f = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
    let r = std::io::BufReader::new(f);
    let bad = |e: image::ImageError| {
        DataError::new(
            path,
            format!(
                "cannot read the image header ({e}); the file is truncated or not a PNG/JPEG image"
            ),
        )
    };
    let (color, (w, h)) = match jpeg_or_png(path)? {
        image::ImageFormat::Png => {
            let d = image::codecs::png::PngDecoder::new(r).map_err(bad)?;
            (d.color_type(), d.dimensions())
        }
        _ => {
            let d = image::codecs::jpeg::JpegDecoder::new(r).map_err(bad)?;
            (d.color_type(), d.dimensions())
        }
    };
    let c = channels_of(color).map_err(|why| DataError::new(path, why))?;
    Ok((c, h, w))
}

/// The format by the file's first bytes (not its extension).
fn jpeg_or_png(path: &Path) -> Result<image::ImageFormat, DataError> {
    use std::io::Read;
    let mut start = [0u8; 16];
    let mut f = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
    let n = f.read(&mut start).map_err(|e| io_error(path, e))?;
    match image::guess_format(&start[..n]) {
        Ok(f @ (image::ImageFormat::Png | image::ImageFormat::Jpeg)) => Ok(f),
        _ => Err(DataError::new(
            path,
            "not a PNG or JPEG file (by its first bytes); re-export it as PNG or remove it",
        )),
    }
}

/// The size after torchvision's `Resize`: the smallest that covers `target` with the aspect kept
/// (for a square target, the shorter side to N and the longer `int(N * long / short)`).
pub(super) fn resized(h: u32, w: u32, [th, tw]: [u32; 2]) -> (u32, u32) {
    let (h64, w64, th64, tw64) = (h as u64, w as u64, th as u64, tw as u64);
    if th64 * w64 >= tw64 * h64 {
        (th, (th64 * w64 / h64) as u32)
    } else {
        ((tw64 * h64 / w64) as u32, tw)
    }
}

/// `int(round(excess / 2))` as torchvision's `CenterCrop` computes it (Python rounds half to even).
pub(super) fn crop_start(excess: u32) -> u32 {
    let q = excess / 2;
    if excess % 2 == 1 && q % 2 == 1 {
        q + 1
    } else {
        q
    }
}

/// Resize (bilinear: the image crate's Triangle filter) then centre crop to `size`; no resize when
/// the image already has the resized size.
fn fit<P: Pixel<Subpixel = u8> + 'static>(
    img: ImageBuffer<P, Vec<u8>>,
    size: Option<[u32; 2]>,
) -> ImageBuffer<P, Vec<u8>> {
    let Some(target) = size else { return img };
    let (h, w) = (img.height(), img.width());
    let (nh, nw) = resized(h, w, target);
    let img = if (nh, nw) == (h, w) {
        img
    } else {
        image::imageops::resize(&img, nw, nh, image::imageops::FilterType::Triangle)
    };
    let (top, left) = (crop_start(nh - target[0]), crop_start(nw - target[1]));
    image::imageops::crop_imm(&img, left, top, target[1], target[0]).to_image()
}

/// One image decoded: channels, height, width and its channel-major bytes.
type Decoded = (usize, usize, usize, Vec<u8>);

/// Channel-major bytes of interleaved ones.
fn planar(raw: &[u8], c: usize) -> Vec<u8> {
    if c == 1 {
        return raw.to_vec();
    }
    let plane = raw.len() / c;
    let mut out = vec![0u8; raw.len()];
    for (i, px) in raw.chunks_exact(c).enumerate() {
        for (k, &v) in px.iter().enumerate() {
            out[k * plane + i] = v;
        }
    }
    out
}

/// Decodes one file: grayscale (alpha dropped) to 1 channel, colour (palette expanded, alpha
/// dropped, as ImageFolder's loader does) to 3; then resize and crop.
fn decode(path: &Path, size: Option<[u32; 2]>) -> Result<Decoded, DataError> {
    use image::DynamicImage as D;
    jpeg_or_png(path)?;
    let bytes = std::fs::read(path).map_err(|e| io_error(path, e))?;
    let img = image::load_from_memory(&bytes).map_err(|e| {
        DataError::new(
            path,
            format!(
                "cannot decode ({e}); the file is truncated or damaged: re-export it or remove it"
            ),
        )
    })?;
    channels_of(img.color()).map_err(|why| DataError::new(path, why))?;
    let (c, (h, w, buf)) = match img {
        D::ImageLuma8(g) => (1, parts(g, size)),
        D::ImageLumaA8(_) => (1, parts(img.to_luma8(), size)),
        D::ImageRgb8(rgb) => (3, parts(rgb, size)),
        _ => (3, parts(img.to_rgb8(), size)),
    };
    Ok((c, h, w, planar(&buf, c)))
}

/// Height, width and interleaved bytes of an image after [`fit`].
fn parts<P: Pixel<Subpixel = u8> + 'static>(
    img: ImageBuffer<P, Vec<u8>>,
    size: Option<[u32; 2]>,
) -> (usize, usize, Vec<u8>) {
    let img = fit(img, size);
    (img.height() as usize, img.width() as usize, img.into_raw())
}

/// Channels and size every image must share; two files that disagree are named.
fn check_same(entries: &[&Entry], decoded: &[Decoded], dir: &Path) -> Result<(), DataError> {
    if let (Some(g), Some(c)) = (
        decoded.iter().position(|d| d.0 == 1),
        decoded.iter().position(|d| d.0 == 3),
    ) {
        return Err(DataError::new(dir, format!("mixes grayscale and colour images ({} has 1 channel, {} has 3); convert them all to one (e.g. all to RGB)", entries[g].path.display(), entries[c].path.display())));
    }
    let (h, w) = (decoded[0].1, decoded[0].2);
    if let Some(i) = decoded.iter().position(|d| (d.1, d.2) != (h, w)) {
        return Err(DataError::new(dir, format!("images differ in size ({} is {h}×{w}, {} is {}×{}); set [data] image_size to resize and centre-crop them all", entries[0].path.display(), entries[i].path.display(), decoded[i].1, decoded[i].2)));
    }
    check_side(&entries[0].path, h, w, "set [data] image_size, e.g. 32")
}

/// The folder's class names, its first image's channels and size (or `image_size`), and whether it
/// has its own validation split.
pub(super) fn peek(dir: &Path, image_size: Option<[u32; 2]>) -> Result<Layout, DataError> {
    // the whole layout (splits, class folders, the files in them; nothing decoded), so that every
    // problem of the folder's shape is found when the sweep file is checked
    let (classes, splits) = entries(dir)?;
    let first = &splits[0][0].path;
    let (c, h, w) = header(first)?;
    let [h, w] = image_size.unwrap_or([h, w]);
    check_side(
        first,
        h as usize,
        w as usize,
        "set [data] image_size, e.g. 32",
    )?;
    Ok(Layout {
        shape: [c as i64, h as i64, w as i64],
        classes: classes.len(),
        class_names: classes,
        own_validation: dir.join("validation").is_dir(),
        float: false,
    })
}

/// A folder read slower than this (seconds) says how long it took, and why, when progress is asked for.
const SLOW_READ: f64 = 2.0;

/// Reads the folder: lists it, hashes every file (in parallel; with a cache, only the files changed
/// since the last read, [`digests`]), then takes the decoded images from the cache or decodes them
/// (in parallel) and caches them.
pub(super) fn read(dir: &Path, opts: &super::ReadOptions) -> Result<RawDataset, DataError> {
    let started = std::time::Instant::now();
    let (classes, splits) = entries(dir)?;
    let all: Vec<&Entry> = splits.iter().flatten().collect();
    let files: Vec<digests::File> = (all.iter())
        .map(|e| digests::File {
            rel: &e.rel,
            path: &e.path,
        })
        .collect();
    let memo = opts.cache.as_ref().map(|c| digests::memo_path(c, dir));
    let digests = digests::sha256_all(&files, memo.as_deref(), digests::SETTLED)
        .map_err(|(path, e)| io_error(&path, e))?;
    let mut hasher = Sha256::new();
    hasher.update(b"kd-sweep image folder\0");
    for (e, d) in all.iter().zip(&digests.sha256) {
        hasher.update((e.rel.len() as u64).to_le_bytes());
        hasher.update(&e.rel);
        hasher.update(d);
    }
    let fingerprint = crate::util::hex(&hasher.finalize());
    let cached = opts
        .cache
        .as_ref()
        .map(|c| cache::path(c, &fingerprint, opts.image_size));
    let labels = |s: &[Entry]| s.iter().map(|e| e.label).collect::<Vec<Label>>();
    let counts: Vec<usize> = splits.iter().map(Vec::len).collect();
    let hit = cached.as_ref().and_then(|p| cache::load(p, &counts));
    let decoded = hit.is_none();
    let mut images = match hit {
        Some(images) => images,
        None => decode_all(dir, &splits, opts, cached.as_deref())?,
    };
    for (img, s) in images.iter_mut().zip(&splits) {
        img.labels = labels(s);
    }
    let mut images = images.into_iter();
    let (train, test) = (images.next(), images.next());
    let (Some(train), Some(test)) = (train, test) else {
        return Err(DataError::new(dir, "no training or test images"));
    };
    digests.remember();
    let took = started.elapsed().as_secs_f64();
    if opts.progress && took >= SLOW_READ {
        say_read(dir, all.len(), digests.hashed, decoded, took);
    }
    Ok(RawDataset {
        kind: DatasetKind::Folder,
        train,
        val: images.next(),
        test,
        classes: classes.len(),
        class_names: classes,
        fingerprint,
    })
}

/// Decodes every image of the splits (in parallel), checks they agree in channels and size, and
/// caches them at `cached`; labels are left to the caller. Says so first when progress is asked for.
fn decode_all(
    dir: &Path,
    splits: &[Vec<Entry>],
    opts: &super::ReadOptions,
    cached: Option<&Path>,
) -> Result<Vec<RawImages>, DataError> {
    let all: Vec<&Entry> = splits.iter().flatten().collect();
    if opts.progress {
        let kept = match cached {
            Some(p) => format!(
                "once decoded, kept in {} for later runs and workers",
                p.display()
            ),
            None => "not cached".into(),
        };
        eprintln!("{}: decoding {} images ({kept})", dir.display(), all.len());
    }
    let decoded: Vec<Decoded> = all
        .par_iter()
        .map(|e| decode(&e.path, opts.image_size))
        .collect::<Result<_, DataError>>()?;
    check_same(&all, &decoded, dir)?;
    let (c, h, w) = (decoded[0].0, decoded[0].1, decoded[0].2);
    let mut decoded = decoded.into_iter();
    let images: Vec<RawImages> = (splits.iter())
        .map(|s| {
            let mut px = Vec::with_capacity(s.len() * c * h * w);
            for d in decoded.by_ref().take(s.len()) {
                px.extend_from_slice(&d.3);
            }
            RawImages {
                n: s.len(),
                c,
                h,
                w,
                pixels: Pixels::U8(px),
                labels: Vec::new(),
            }
        })
        .collect();
    if let Some(p) = cached {
        // a cache that cannot be written only costs the next run the decoding
        let _ = cache::save(p, &images);
    }
    Ok(images)
}

/// The line a slow read leaves on stderr: how many of its `n` files were hashed, whether it decoded.
fn say_read(dir: &Path, n: usize, hashed: usize, decoded: bool, took: f64) {
    let hashed = match hashed {
        h if h == n => "all hashed".to_string(),
        0 => "none changed since the last read".to_string(),
        h => format!(
            "{h} hashed, the other {} unchanged since the last read",
            n - h
        ),
    };
    let decoded = if decoded {
        "decoded"
    } else {
        "the decoded images from the cache"
    };
    eprintln!(
        "{}: {n} image files read in {took:.1} s ({hashed}; {decoded})",
        dir.display()
    );
}

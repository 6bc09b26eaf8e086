//! The ImageFolder reader on small trees written here: exact pixels, ImageFolder's order, resize and
//! crop, the cache, and bad trees named with what to do.

use super::*;
use crate::data::write::{image_file, synthetic_folder};
use crate::data::{read, read_with, ReadOptions};

/// A 1×4×4 image whose every pixel is `v`.
fn flat(path: &Path, v: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image_file(path, 1, 4, 4, &[v; 16]).unwrap();
}

fn err(dir: &Path) -> String {
    read(DatasetKind::Folder, dir)
        .expect_err("should be refused")
        .to_string()
}

/// A problem of the folder's layout: refused by the read, and already by `peek` (when the sweep
/// file is checked, so at `data.path` with exit code 2), with the same words.
fn layout_err(dir: &Path) -> String {
    let e = err(dir);
    let peeked = peek(dir, None).expect_err("peek should refuse it too");
    assert_eq!(peeked.to_string(), e);
    e
}

#[test]
fn classes_and_files_are_in_imagefolder_order() {
    let d = tempfile::tempdir().unwrap();
    // Python: sorted(["B", "a", "A10", "A2"]) == ["A10", "A2", "B", "a"]
    for (i, class) in ["B", "a", "A10", "A2"].iter().enumerate() {
        flat(&d.path().join("test").join(class).join("x.png"), i as u8);
        flat(
            &d.path().join("train").join(class).join("x.png"),
            10 + i as u8,
        );
    }
    // sorted(os.walk(...)): the folder's own files by name (Z < a < b), then the subfolder's
    let a10 = d.path().join("train/A10");
    for (name, v) in [
        ("b.png", 1),
        ("sub/c.PNG", 2),
        ("Z.jpeg.png", 3),
        ("a.png", 4),
    ] {
        flat(&a10.join(name), v);
    }
    std::fs::write(a10.join("notes.txt"), "not an image").unwrap();
    let raw = read(DatasetKind::Folder, d.path()).unwrap();
    assert_eq!(raw.class_names, ["A10", "A2", "B", "a"]);
    let firsts: Vec<u8> = (raw.train.pixels.as_u8().unwrap().chunks(16))
        .map(|img| img[0])
        .collect();
    // A10 (x.png is 12): Z.jpeg.png, a.png, b.png, x.png, then sub/c.PNG; then A2, B, a
    assert_eq!(firsts, [3, 4, 1, 12, 2, 13, 10, 11]);
    assert_eq!(raw.train.labels, [0, 0, 0, 0, 0, 1, 2, 3]);
    assert_eq!(raw.test.labels, [0, 1, 2, 3]);
    assert_eq!(
        (raw.classes, raw.train.c, raw.train.h, raw.val.is_none()),
        (4, 1, 4, true)
    );
}

#[test]
fn png_pixels_are_read_exactly_and_alpha_is_dropped() {
    let d = tempfile::tempdir().unwrap();
    let rgb: Vec<u8> = (0..3 * 4 * 8).map(|i| (i * 7 % 251) as u8).collect();
    for split in ["train", "test"] {
        let cd = d.path().join(split).join("only");
        std::fs::create_dir_all(&cd).unwrap();
        image_file(&cd.join("a.png"), 3, 4, 8, &rgb).unwrap();
        // the same colours with a varying alpha channel: read as the same RGB image
        let mut rgba = image::RgbaImage::new(8, 4);
        for (x, y, p) in rgba.enumerate_pixels_mut() {
            let at = (y * 8 + x) as usize;
            *p = image::Rgba([rgb[at], rgb[32 + at], rgb[64 + at], (x * 30) as u8]);
        }
        rgba.save(cd.join("b.png")).unwrap();
    }
    let raw = read(DatasetKind::Folder, d.path()).unwrap();
    assert_eq!(
        (raw.train.n, raw.train.c, raw.train.h, raw.train.w),
        (2, 3, 4, 8)
    );
    let px = raw.train.pixels.as_u8().unwrap();
    assert_eq!(
        &px[..96],
        &rgb[..],
        "PNG is lossless: the bytes written are read"
    );
    assert_eq!(&px[96..], &rgb[..], "alpha dropped, colours kept");
}

#[test]
fn jpeg_and_grayscale_read() {
    let d = tempfile::tempdir().unwrap();
    let counts = synthetic_folder(d.path(), &["x", "y"], &[2, 1], (1, 8, 8), 3).unwrap();
    // a flat grey JPEG decodes to its grey (JPEG keeps a flat block exactly, up to rounding)
    image_file(&d.path().join("train/x/z.jpg"), 1, 8, 8, &[128; 64]).unwrap();
    let raw = read(DatasetKind::Folder, d.path()).unwrap();
    assert_eq!((raw.train.n, raw.train.c, raw.test.n), (5, 1, 2));
    let px = raw.train.pixels.as_u8().unwrap();
    assert_eq!(&px[..128], &counts[0].0[..128], "the PNGs, exactly");
    assert!(
        px[128..192].iter().all(|&v| v.abs_diff(128) <= 1),
        "{:?}",
        &px[128..192]
    );
}

#[test]
fn resize_and_crop_follow_torchvision() {
    // Resize(16) of 32×48: shorter side 16, longer int(16 * 48 / 32) = 24; of 30×47: int(16*47/30) = 25
    assert_eq!(resized(32, 48, [16, 16]), (16, 24));
    assert_eq!(resized(47, 30, [16, 16]), (25, 16));
    assert_eq!(resized(8, 12, [8, 8]), (8, 12));
    // CenterCrop's int(round(excess / 2)), Python rounding half to even
    let starts: Vec<u32> = (0..8).map(crop_start).collect();
    assert_eq!(starts, [0, 0, 1, 2, 2, 2, 3, 4]);
    let d = tempfile::tempdir().unwrap();
    // 8×12 columns 0..12 and image_size 8: no resize, columns 2..10 kept exactly
    let img: Vec<u8> = (0..8 * 12).map(|i| (i % 12 * 20) as u8).collect();
    for split in ["train", "test"] {
        let cd = d.path().join(split).join("c");
        std::fs::create_dir_all(&cd).unwrap();
        image_file(&cd.join("a.png"), 1, 8, 12, &img).unwrap();
        // a flat 16×24 image: resized to 8×12 then cropped, still flat
        image_file(&cd.join("b.png"), 1, 16, 24, &[77; 16 * 24]).unwrap();
    }
    let opts = ReadOptions {
        image_size: Some([8, 8]),
        cache: None,
        progress: false,
    };
    let raw = read_with(DatasetKind::Folder, d.path(), &opts).unwrap();
    assert_eq!((raw.train.h, raw.train.w), (8, 8));
    let px = raw.train.pixels.as_u8().unwrap();
    let want: Vec<u8> = (0..64).map(|i| ((i % 8 + 2) * 20) as u8).collect();
    assert_eq!(&px[..64], &want[..]);
    assert!(px[64..].iter().all(|&v| v == 77));
    // without image_size, different sizes are refused, naming both files
    let e = err(d.path());
    assert!(
        e.contains("a.png is 8×12") && e.contains("b.png is 16×24") && e.contains("image_size"),
        "{e}"
    );
}

#[test]
fn decoded_images_are_cached_by_content() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    synthetic_folder(&data, &["p", "q"], &[2, 1, 1], (3, 4, 4), 1).unwrap();
    let cache = d.path().join("cache");
    let opts = ReadOptions {
        image_size: None,
        cache: Some(cache.clone()),
        progress: false,
    };
    let first = read_with(DatasetKind::Folder, &data, &opts).unwrap();
    assert!(first.val.is_some(), "validation/ is the hold-out");
    let file = super::cache::path(&cache, &first.fingerprint, None);
    assert!(file.is_file(), "the decoded images were cached");
    // put other pixels in the cache: a second read that returns them did not decode the files
    let mut marked: Vec<RawImages> = vec![first.train.clone(), first.test.clone()];
    marked.push(first.val.clone().unwrap());
    marked[0].pixels = Pixels::U8(vec![7; first.train.pixels.len()]);
    super::cache::save(&file, &marked).unwrap();
    let second = read_with(DatasetKind::Folder, &data, &opts).unwrap();
    assert_eq!(second.train.pixels, marked[0].pixels, "read from the cache");
    assert_eq!(second.train.labels, first.train.labels);
    assert_eq!(second.test, first.test);
    // moved elsewhere, the folder keeps its fingerprint (and cache entry)
    let moved = d.path().join("moved");
    std::fs::rename(&data, &moved).unwrap();
    let third = read_with(DatasetKind::Folder, &moved, &opts).unwrap();
    assert_eq!(third.fingerprint, first.fingerprint);
    assert_eq!(third.train.pixels, marked[0].pixels);
    // another image_size has its own entry
    assert_ne!(
        super::cache::path(&cache, &first.fingerprint, Some([4, 4])),
        file
    );
}

#[test]
fn bad_trees_are_named_with_what_to_do() {
    let d = tempfile::tempdir().unwrap();
    synthetic_folder(d.path(), &["cat", "dog"], &[2, 1], (1, 4, 4), 5).unwrap();
    // a truncated image, not the first: found when decoding
    let p = d.path().join("train/dog/001.png");
    let good = std::fs::read(&p).unwrap();
    std::fs::write(&p, &good[..good.len() / 2]).unwrap();
    let e = err(d.path());
    assert!(e.contains("dog/001.png") && e.contains("truncated"), "{e}");
    std::fs::write(&p, &good).unwrap();
    // mixed channels: one file of each named
    image_file(&d.path().join("train/dog/002.png"), 3, 4, 4, &[9; 48]).unwrap();
    let e = err(d.path());
    assert!(
        e.contains("cat/000.png has 1 channel") && e.contains("dog/002.png has 3"),
        "{e}"
    );
    std::fs::remove_file(d.path().join("train/dog/002.png")).unwrap();
    // a class missing from test, one test has that train lacks
    std::fs::rename(d.path().join("test/dog"), d.path().join("test/dingo")).unwrap();
    let e = layout_err(d.path());
    assert!(
        e.contains("test/") && e.contains("lacks train/'s class(es) dog") && e.contains("dingo"),
        "{e}"
    );
    std::fs::rename(d.path().join("test/dingo"), d.path().join("test/dog")).unwrap();
    // an empty class folder
    std::fs::remove_file(d.path().join("test/dog/000.png")).unwrap();
    let e = layout_err(d.path());
    assert!(
        e.contains("test/dog") && e.contains("no PNG or JPEG"),
        "{e}"
    );
    flat(&d.path().join("test/dog/000.png"), 1);
    // a format ImageFolder reads but kd-sweep does not
    std::fs::write(d.path().join("train/cat/x.bmp"), b"BM").unwrap();
    let e = layout_err(d.path());
    assert!(
        e.contains("x.bmp") && e.contains("convert it to PNG"),
        "{e}"
    );
    std::fs::remove_file(d.path().join("train/cat/x.bmp")).unwrap();
    // a link to nothing: ImageFolder fails on it, so it is not skipped
    std::os::unix::fs::symlink("/nonexistent/x.png", d.path().join("train/dog/dang.png")).unwrap();
    let e = layout_err(d.path());
    assert!(
        e.contains("dang.png") && e.contains("a link to /nonexistent/x.png that leads nowhere"),
        "{e}"
    );
    std::fs::remove_file(d.path().join("train/dog/dang.png")).unwrap();
    // no test/ at all
    std::fs::remove_dir_all(d.path().join("test")).unwrap();
    let e = layout_err(d.path());
    assert!(
        e.contains("test") && e.contains("missing") && e.contains("ImageFolder"),
        "{e}"
    );
}

#[test]
fn peek_reads_the_classes_and_the_first_header() {
    let d = tempfile::tempdir().unwrap();
    synthetic_folder(d.path(), &["b", "a"], &[1, 1], (3, 8, 12), 2).unwrap();
    let l = peek(d.path(), None).unwrap();
    assert_eq!(
        (l.shape, l.classes, l.own_validation),
        ([3, 8, 12], 2, false)
    );
    assert_eq!(l.class_names, ["a", "b"]);
    assert_eq!(peek(d.path(), Some([4, 4])).unwrap().shape, [3, 4, 4]);
    let e = peek(d.path(), Some([6, 6])).unwrap_err().to_string();
    assert!(e.contains("divisible by 4"), "{e}");
}

#[test]
fn a_folder_may_have_more_classes_than_a_byte_holds() {
    let d = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..300).map(|i| format!("c{i:03}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let want = synthetic_folder(d.path(), &names, &[1, 1], (1, 4, 4), 9).unwrap();
    let raw = read(DatasetKind::Folder, d.path()).unwrap();
    assert_eq!((raw.classes, raw.class_names[299].as_str()), (300, "c299"));
    assert_eq!(raw.train.labels, want[0].1);
    assert_eq!(raw.test.labels[256..258], [256, 257]);
}

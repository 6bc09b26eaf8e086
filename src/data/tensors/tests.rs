//! The tensors reader on safetensors and npz files written here: the same arrays read the same from
//! both, float images, the hold-out arrays, and bad files named with what to do.

use super::*;
use crate::data::write::{npz_file, safetensors_file, Array};
use crate::data::{read, DatasetKind};

type Arrays<'a> = Vec<(&'a str, Array<'a>, &'a [usize])>;

fn write(path: &Path, arrays: &Arrays) {
    if path.extension().is_some_and(|e| e == "npz") {
        npz_file(path, arrays).unwrap();
    } else {
        safetensors_file(path, arrays).unwrap();
    }
}

fn err(path: &Path) -> String {
    read(DatasetKind::Tensors, path)
        .expect_err("should be refused")
        .to_string()
}

#[test]
fn safetensors_and_npz_read_the_same() {
    let d = tempfile::tempdir().unwrap();
    let xtr: Vec<u8> = (0..3 * 4 * 8).map(|i| (i * 5 % 256) as u8).collect();
    let xte: Vec<u8> = (0..2 * 4 * 8).map(|i| i as u8).collect();
    let (ytr, yte) = ([0i64, 2, 1], [1i32, 1]);
    let mut raws = Vec::new();
    for name in ["a.safetensors", "a.npz"] {
        let p = d.path().join(name);
        let arrays: Arrays = vec![
            ("x_train", Array::U8(&xtr), &[3, 4, 8]),
            ("y_train", Array::I64(&ytr), &[3]),
            ("x_test", Array::U8(&xte), &[2, 1, 4, 8]),
            ("y_test", Array::I32(&yte), &[2]),
        ];
        write(&p, &arrays);
        let raw = read(DatasetKind::Tensors, &p).unwrap();
        assert_eq!(
            (raw.train.n, raw.train.c, raw.train.h, raw.train.w),
            (3, 1, 4, 8)
        );
        assert_eq!(raw.train.pixels.as_u8().unwrap(), &xtr[..]);
        assert_eq!(raw.test.pixels.as_u8().unwrap(), &xte[..]);
        assert_eq!(
            (raw.train.labels.clone(), raw.test.labels.clone()),
            (vec![0, 2, 1], vec![1, 1])
        );
        assert_eq!((raw.classes, raw.val.is_none()), (3, true));
        // the fingerprint is the file's SHA-256
        let want = crate::util::hex(&Sha256::digest(std::fs::read(&p).unwrap()));
        assert_eq!(raw.fingerprint, want);
        let l = peek(&p).unwrap();
        assert_eq!(
            (l.shape, l.classes, l.own_validation, l.float),
            ([1, 4, 8], 3, false, false)
        );
        raws.push(raw);
    }
    assert_eq!(raws[0].train, raws[1].train);
    assert_eq!(raws[0].test, raws[1].test);
}

#[test]
fn float_images_and_the_hold_out_arrays() {
    let d = tempfile::tempdir().unwrap();
    for name in ["f.safetensors", "f.npz"] {
        let p = d.path().join(name);
        let x: Vec<f32> = (0..2 * 3 * 4 * 4).map(|i| i as f32 * 0.25 - 3.0).collect();
        let arrays: Arrays = vec![
            ("x_train", Array::F32(&x), &[2, 3, 4, 4]),
            ("y_train", Array::U8(&[1, 0]), &[2]),
            ("x_test", Array::F32(&x), &[2, 3, 4, 4]),
            ("y_test", Array::U8(&[0, 0]), &[2]),
            ("x_val", Array::F32(&x[..48]), &[1, 3, 4, 4]),
            ("y_val", Array::U8(&[1]), &[1]),
        ];
        write(&p, &arrays);
        let raw = read(DatasetKind::Tensors, &p).unwrap();
        assert_eq!(raw.train.pixels, Pixels::F32(x.clone()));
        let val = raw.val.expect("x_val, y_val are the hold-out");
        assert_eq!((val.n, val.labels), (1, vec![1]));
        let l = peek(&p).unwrap();
        assert!(l.float && l.own_validation && l.shape == [3, 4, 4]);
        // a NaN is the file's fault, said as such, not a diverged run blamed on the learning rate
        let mut nan = x.clone();
        nan[48 + 5] = f32::NAN;
        let mut arrays = arrays;
        arrays[0].1 = Array::F32(&nan);
        write(&p, &arrays);
        let e = err(&p);
        assert!(
            e.contains(
                "array x_train holds NaN (image 1, element 5 of its 48); float32 images must be finite"
            ),
            "{name}: {e}"
        );
    }
}

#[test]
fn bad_files_name_the_arrays() {
    let d = tempfile::tempdir().unwrap();
    let x = [0u8; 4 * 16];
    let nhwc = [0u8; 8 * 8 * 3];
    for ext in ["safetensors", "npz"] {
        let p = d.path().join(format!("bad.{ext}"));
        let mut arrays: Arrays = vec![
            ("x_train", Array::U8(&x), &[4, 4, 4]),
            ("y_train", Array::I64(&[0, 1, 1]), &[3]),
            ("x_test", Array::U8(&x[..16]), &[1, 4, 4]),
        ];
        write(&p, &arrays);
        let e = err(&p);
        assert!(
            e.contains("no array y_test") && e.contains("x_test, x_train, y_train"),
            "{ext}: {e}"
        );
        arrays.push(("y_test", Array::I64(&[0]), &[1]));
        write(&p, &arrays);
        let e = err(&p);
        assert!(
            e.contains("x_train has 4 images") && e.contains("y_train has shape [3]"),
            "{ext}: {e}"
        );
        // one label per image, but as a column: say to flatten it
        arrays[1] = ("y_train", Array::I64(&[0, 1, 1, 0]), &[4, 1]);
        write(&p, &arrays);
        let e = err(&p);
        assert!(
            e.contains("y_train has shape [4, 1]: one label per image, but as a column")
                && e.contains("shape [4] (y.reshape(-1))"),
            "{ext}: {e}"
        );
        // no training image at all
        let mut no_train = arrays.clone();
        no_train[0] = ("x_train", Array::U8(&[]), &[0, 4, 4]);
        no_train[1] = ("y_train", Array::I64(&[]), &[0]);
        write(&p, &no_train);
        let e = err(&p);
        assert!(
            e.contains("array x_train holds no images (shape [0, 4, 4])"),
            "{ext}: {e}"
        );
        arrays[1] = ("y_train", Array::I64(&[0, 1, -1, 1]), &[4]);
        write(&p, &arrays);
        let e = err(&p);
        assert!(e.contains("y_train has label -1"), "{ext}: {e}");
        arrays[1] = ("y_train", Array::I64(&[0, 2, 2, 0]), &[4]);
        write(&p, &arrays);
        let e = err(&p);
        assert!(e.contains("class 1 has no training image"), "{ext}: {e}");
        arrays[1] = ("y_train", Array::I64(&[0, 1, 1, 0]), &[4]);
        arrays.push(("x_val", Array::U8(&x[..16]), &[1, 4, 4]));
        write(&p, &arrays);
        let e = err(&p);
        assert!(e.contains("has x_val but no y_val"), "{ext}: {e}");
        arrays.pop();
        arrays[0] = ("x_train", Array::U8(&nhwc), &[1, 8, 8, 3]);
        arrays[1] = ("y_train", Array::I64(&[0]), &[1]);
        write(&p, &arrays);
        let e = err(&p);
        assert!(e.contains("looks like N×H×W×C"), "{ext}: {e}");
    }
    // not a tensors file, and a truncated one
    let p = d.path().join("junk.safetensors");
    std::fs::write(&p, b"hello, world").unwrap();
    let e = err(&p);
    assert!(e.contains("junk.safetensors") && e.contains(".npz"), "{e}");
    let good = d.path().join("bad.safetensors");
    let b = std::fs::read(&good).unwrap();
    std::fs::write(&p, &b[..b.len() - 8]).unwrap();
    let e = err(&p);
    assert!(e.contains("truncated"), "{e}");
}

#[test]
fn labels_go_past_a_byte_up_to_the_sixteen_bit_limit() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("wide.npz");
    let k = 300usize;
    let x = vec![7u8; k * 16];
    let y: Vec<i64> = (0..k as i64).rev().collect();
    let (x_shape, y_shape) = ([k, 4, 4], [k]);
    let mut arrays: Arrays = vec![
        ("x_train", Array::U8(&x), &x_shape),
        ("y_train", Array::I64(&y), &y_shape),
        ("x_test", Array::U8(&x[..32]), &[2, 4, 4]),
        ("y_test", Array::I64(&[299, 256]), &[2]),
    ];
    write(&p, &arrays);
    let raw = read(DatasetKind::Tensors, &p).unwrap();
    assert_eq!(raw.classes, 300);
    assert_eq!((raw.train.labels[0], raw.train.labels[299]), (299, 0));
    assert_eq!(raw.test.labels, [299, 256]);
    arrays[3] = ("y_test", Array::I64(&[65_536, 0]), &[2]);
    write(&p, &arrays);
    let e = err(&p);
    assert!(
        e.contains("y_test has label 65536") && e.contains("K ≤ 65536"),
        "{e}"
    );
}

//! Writers for the real on-disk formats, used by tests to make small datasets (and by anyone who wants
//! a synthetic dataset kd-sweep can read). The readers never depend on these.

use std::io::Write;
use std::path::Path;

/// An IDX file of unsigned bytes with the given sizes; gzipped when `gz`.
pub fn idx(path: &Path, sizes: &[usize], data: &[u8], gz: bool) -> std::io::Result<()> {
    let mut b = Vec::with_capacity(4 + 4 * sizes.len() + data.len());
    b.extend_from_slice(&(0x0800u32 | sizes.len() as u32).to_be_bytes());
    for &s in sizes {
        b.extend_from_slice(&(s as u32).to_be_bytes());
    }
    b.extend_from_slice(data);
    write_maybe_gz(path, &b, gz)
}

fn write_maybe_gz(path: &Path, bytes: &[u8], gz: bool) -> std::io::Result<()> {
    if gz {
        let mut e = flate2::write::GzEncoder::new(
            std::fs::File::create(path)?,
            flate2::Compression::fast(),
        );
        e.write_all(bytes)?;
        e.finish()?;
        Ok(())
    } else {
        std::fs::write(path, bytes)
    }
}

/// The four MNIST-style files in `dir` (`n_train` and `n_test` images of `h×w`), with the given
/// pixels and labels; names get `.gz` when gzipped.
pub fn mnist_dir(
    dir: &Path,
    h: usize,
    w: usize,
    train: (&[u8], &[u8]),
    test: (&[u8], &[u8]),
    gz: bool,
) -> std::io::Result<()> {
    let sfx = if gz { ".gz" } else { "" };
    for ((px, lb), (iname, lname)) in [train, test].into_iter().zip([
        ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    ]) {
        idx(
            &dir.join(format!("{iname}{sfx}")),
            &[lb.len(), h, w],
            px,
            gz,
        )?;
        idx(&dir.join(format!("{lname}{sfx}")), &[lb.len()], lb, gz)?;
    }
    Ok(())
}

/// One CIFAR-10 binary batch: per image, the label byte then 3072 channel-major pixels.
pub fn cifar_binary(path: &Path, pixels: &[u8], labels: &[u8]) -> std::io::Result<()> {
    let mut b = Vec::with_capacity(labels.len() * 3073);
    for (i, &l) in labels.iter().enumerate() {
        b.push(l);
        b.extend_from_slice(&pixels[i * 3072..(i + 1) * 3072]);
    }
    std::fs::write(path, b)
}

/// One CIFAR-10 python batch, byte for byte the way Python 2's cPickle (protocol 2) wrote the
/// official release: `{'data': numpy uint8 array N×3072, 'labels': [int, …]}`.
pub fn cifar_python(path: &Path, pixels: &[u8], labels: &[u8]) -> std::io::Result<()> {
    cifar_python_with(path, pixels, &[("labels", labels)])
}

/// A CIFAR python batch with these label lists (CIFAR-100: `fine_labels` and `coarse_labels`).
pub fn cifar_python_with(
    path: &Path,
    pixels: &[u8],
    label_lists: &[(&str, &[u8])],
) -> std::io::Result<()> {
    let labels = label_lists.first().map_or(&[][..], |l| l.1);
    let n = labels.len() as u32;
    let mut p = vec![0x80, 2, b'}', b'(']; // PROTO 2, EMPTY_DICT, MARK
    let short = |p: &mut Vec<u8>, s: &[u8]| {
        p.push(b'U');
        p.push(s.len() as u8);
        p.extend_from_slice(s);
    };
    let int = |p: &mut Vec<u8>, v: u32| {
        p.push(b'J');
        p.extend_from_slice(&v.to_le_bytes());
    };
    short(&mut p, b"data");
    p.extend_from_slice(b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n");
    p.extend_from_slice(&[b'K', 0, 0x85]); // (0,)
    short(&mut p, b"b");
    p.extend_from_slice(&[0x87, b'R', b'(', b'K', 1]); // TUPLE3, REDUCE; state: (1,
    int(&mut p, n);
    int(&mut p, 3072);
    p.push(0x86); // shape (n, 3072)
    p.extend_from_slice(b"cnumpy\ndtype\n");
    short(&mut p, b"u1");
    p.extend_from_slice(&[b'K', 0, b'K', 1, 0x87, b'R', b'(', b'K', 3]);
    short(&mut p, b"|");
    p.extend_from_slice(b"NNN");
    p.extend_from_slice(&[
        b'J', 0xff, 0xff, 0xff, 0xff, b'J', 0xff, 0xff, 0xff, 0xff, b'K', 0, b't', b'b',
    ]);
    p.push(0x89); // not Fortran order
    p.push(b'T');
    p.extend_from_slice(&(pixels.len() as u32).to_le_bytes());
    p.extend_from_slice(pixels);
    p.extend_from_slice(b"tb"); // state tuple, BUILD
    for (key, labels) in label_lists {
        short(&mut p, key.as_bytes());
        p.extend_from_slice(b"](");
        for &l in labels.iter() {
            p.extend_from_slice(&[b'K', l]);
        }
        p.push(b'e');
    }
    p.extend_from_slice(b"u.");
    std::fs::write(path, p)
}

/// A CIFAR-100 release folder (binary `train.bin`/`test.bin`, or python `train`/`test`) with
/// `n_train` and `n_test` images of random pixels; fine labels cycle through 0..100 and the coarse
/// label is the fine one divided by 5.
pub fn cifar100_dir(
    dir: &Path,
    n_train: usize,
    n_test: usize,
    python: bool,
    seed: u64,
) -> std::io::Result<()> {
    let mut rng = crate::rng::SplitMix64::new(seed);
    let mut file = |name: &str, n: usize| {
        let fine: Vec<u8> = (0..n).map(|i| (i % 100) as u8).collect();
        let coarse: Vec<u8> = fine.iter().map(|f| f / 5).collect();
        let pixels: Vec<u8> = (0..n * 3072).map(|_| rng.next_u64() as u8).collect();
        if python {
            let lists: [(&str, &[u8]); 2] = [("fine_labels", &fine), ("coarse_labels", &coarse)];
            cifar_python_with(&dir.join(name), &pixels, &lists)
        } else {
            let mut b = Vec::with_capacity(n * 3074);
            for i in 0..n {
                b.extend_from_slice(&[coarse[i], fine[i]]);
                b.extend_from_slice(&pixels[i * 3072..(i + 1) * 3072]);
            }
            std::fs::write(dir.join(format!("{name}.bin")), b)
        }
    };
    file("train", n_train)?;
    file("test", n_test)
}

/// A CIFAR-10 release folder: five training batches of `per_batch` images each and a test batch.
pub fn cifar_dir(
    dir: &Path,
    per_batch: usize,
    n_test: usize,
    python: bool,
    seed: u64,
) -> std::io::Result<()> {
    let mut rng = crate::rng::SplitMix64::new(seed);
    let mut batch = |name: &str, n: usize| {
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        let pixels: Vec<u8> = (0..n * 3072).map(|_| rng.next_u64() as u8).collect();
        if python {
            cifar_python(&dir.join(name), &pixels, &labels)
        } else {
            cifar_binary(&dir.join(format!("{name}.bin")), &pixels, &labels)
        }
    };
    for i in 1..=5 {
        batch(&format!("data_batch_{i}"), per_batch)?;
    }
    batch("test_batch", n_test)
}

/// A small learnable MNIST-shaped dataset: each class is a bright square at its own place, plus noise.
/// Writes the four IDX files (gzipped when `gz`) to `dir`.
pub fn synthetic_mnist(
    dir: &Path,
    n_train: usize,
    n_test: usize,
    seed: u64,
    gz: bool,
) -> std::io::Result<()> {
    let mut rng = crate::rng::SplitMix64::new(seed);
    let mut make = |n: usize| {
        let mut px = Vec::with_capacity(n * 784);
        let mut lb = Vec::with_capacity(n);
        for i in 0..n {
            let class = (i % 10) as u8;
            let (cy, cx) = (4 + (class as usize / 5) * 12, 2 + (class as usize % 5) * 5);
            for y in 0..28 {
                for x in 0..28 {
                    let noise = (rng.next_u64() % 60) as u8;
                    let on = (cy..cy + 8).contains(&y) && (cx..cx + 4).contains(&x);
                    px.push(if on { 195 + noise } else { noise });
                }
            }
            lb.push(class);
        }
        (px, lb)
    };
    let train = make(n_train);
    let test = make(n_test);
    std::fs::create_dir_all(dir)?;
    mnist_dir(dir, 28, 28, (&train.0, &train.1), (&test.0, &test.1), gz)
}

//! The SHA-256 of each file of a folder dataset, remembered between reads by the files' metadata, as
//! git's index remembers blobs: a file whose path, size, modification and change times and inode are
//! what they were when it was hashed is not read again. Every worker and every run reads
//! the folder; without this each re-read every image file (gigabytes, for a large folder) only to
//! find the fingerprint it already knew.
//!
//! The memo is `<cache>/folder-digests-<hash of the folder's path>.bin`, written under a temporary
//! name and renamed into place. It only saves reading: the digests, and so the fingerprint and every
//! key made from it, are the ones hashing every file gives. A file changed in place keeps its inode
//! but not its change time (which no program sets), so a change is seen even when the modification
//! time is put back. A file touched too close to the hashing to be told apart from a later change
//! within the same timestamp tick ("racily clean", in git's words) is not remembered: it is hashed
//! again next time. A memo that does not read back is ignored and written anew. The device number is
//! left out: on a shared file system (NFS, a SLURM cluster's) each node numbers the mount its own
//! way, while inodes and times are the server's, so every node can use one memo.

use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long before the hashing a file's times must be for its digest to be remembered: longer than
/// any file system's timestamp tick (FAT's is 2 s; ext4's follows the kernel's coarse clock).
pub(super) const SETTLED: Duration = Duration::from_secs(3);

const MAGIC: &[u8; 28] = b"kd-sweep folder digests v1\n\0";

/// What identifies a file's content without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    ino: u64,
}

impl Stat {
    fn of(m: &std::fs::Metadata) -> Stat {
        Stat {
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
            ino: m.ino(),
        }
    }

    /// Whether both times are before `t` (seconds and nanoseconds since the epoch).
    fn before(&self, t: (i64, i64)) -> bool {
        self.mtime < t && self.ctime < t
    }

    fn write(&self, out: &mut Vec<u8>) {
        for v in [self.size, self.ino] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in [self.mtime.0, self.mtime.1, self.ctime.0, self.ctime.1] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }

    fn read(b: &mut &[u8]) -> Option<Stat> {
        let [size, ino] = [take_u64(b)?, take_u64(b)?];
        let mut t = [0i64; 4];
        for v in &mut t {
            *v = take_u64(b)? as i64;
        }
        Some(Stat {
            size,
            mtime: (t[0], t[1]),
            ctime: (t[2], t[3]),
            ino,
        })
    }
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (head, rest) = (b.len() >= n).then(|| b.split_at(n))?;
    *b = rest;
    Some(head)
}

fn take_u64(b: &mut &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(take(b, 8)?.try_into().ok()?))
}

/// One file to hash: its path relative to the folder (the memo's key) and where it is.
pub(super) struct File<'a> {
    pub rel: &'a [u8],
    pub path: &'a Path,
}

/// The memo file of the folder at `dir`, in the cache folder `cache`.
pub(super) fn memo_path(cache: &Path, dir: &Path) -> PathBuf {
    let abs = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let h = Sha256::digest(abs.as_os_str().as_encoded_bytes());
    cache.join(format!(
        "folder-digests-{}.bin",
        &crate::util::hex(&h)[..32]
    ))
}

/// A read's digests, and what the memo learned from it.
pub(super) struct Digests {
    /// Each file's SHA-256, in order.
    pub sha256: Vec<[u8; 32]>,
    /// How many files were read to find them.
    pub hashed: usize,
    /// The memo's path and its new contents, when it learned something.
    learned: Option<(PathBuf, Vec<u8>)>,
}

impl Digests {
    /// Writes the memo. Called once the read the digests served has succeeded, so that data refused
    /// leaves nothing behind; a memo that cannot be written only costs the next read its hashing.
    pub(super) fn remember(&self) {
        if let Some((path, bytes)) = &self.learned {
            let _ = crate::files::write_atomic(path, bytes);
        }
    }
}

/// The SHA-256 of each file, in order, reading (in parallel) only those the memo at `memo` does not
/// vouch for. What the memo learns leaves out files whose times are not `settled` before now. An
/// error names the file that could not be read.
pub(super) fn sha256_all(
    files: &[File],
    memo: Option<&Path>,
    settled: Duration,
) -> Result<Digests, (PathBuf, std::io::Error)> {
    let started = SystemTime::now();
    let known = memo.map(load).unwrap_or_default();
    let found: Vec<([u8; 32], Stat, bool)> = files
        .par_iter()
        .map(|f| {
            let err = |e| (f.path.to_path_buf(), e);
            let stat = Stat::of(&std::fs::metadata(f.path).map_err(err)?);
            if let Some(&(s, d)) = known.get(f.rel) {
                if s == stat {
                    return Ok((d, stat, false));
                }
            }
            let bytes = std::fs::read(f.path).map_err(err)?;
            Ok((Sha256::digest(&bytes).into(), stat, true))
        })
        .collect::<Result<_, _>>()?;
    let hashed = found.iter().filter(|f| f.2).count();
    let learned = memo.filter(|_| hashed > 0).map(|memo| {
        let cutoff = started
            .checked_sub(settled)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or((0, 0), |d| (d.as_secs() as i64, d.subsec_nanos() as i64));
        let keep = files
            .iter()
            .zip(&found)
            .filter(|(_, (_, s, _))| s.before(cutoff))
            .map(|(f, (d, s, _))| (f.rel, *s, d));
        (memo.to_path_buf(), encode(keep))
    });
    Ok(Digests {
        sha256: found.into_iter().map(|f| f.0).collect(),
        hashed,
        learned,
    })
}

/// The memo's entries: a file's relative path → its metadata and digest when it was hashed.
type Memo = HashMap<Vec<u8>, (Stat, [u8; 32])>;

/// The memo's entries; empty when it is missing or does not read back whole.
fn load(path: &Path) -> Memo {
    let parse = |mut b: &[u8]| -> Option<Memo> {
        let b = &mut b;
        (take(b, MAGIC.len())? == MAGIC).then_some(())?;
        let n = take_u64(b)? as usize;
        let mut out = HashMap::with_capacity(n.min(1 << 24));
        for _ in 0..n {
            let len = take_u64(b)? as usize;
            let rel = take(b, len)?.to_vec();
            let stat = Stat::read(b)?;
            let digest: [u8; 32] = take(b, 32)?.try_into().ok()?;
            out.insert(rel, (stat, digest));
        }
        b.is_empty().then_some(out)
    };
    std::fs::read(path)
        .ok()
        .and_then(|b| parse(&b))
        .unwrap_or_default()
}

fn encode<'a>(entries: impl Iterator<Item = (&'a [u8], Stat, &'a [u8; 32])>) -> Vec<u8> {
    let (mut body, mut n) = (Vec::new(), 0u64);
    for (rel, stat, digest) in entries {
        body.extend_from_slice(&(rel.len() as u64).to_le_bytes());
        body.extend_from_slice(rel);
        stat.write(&mut body);
        body.extend_from_slice(digest);
        n += 1;
    }
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&n.to_le_bytes());
    bytes.extend_from_slice(&body);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(b: &[u8]) -> [u8; 32] {
        Sha256::digest(b).into()
    }

    /// Three files under `dir`; their relative paths.
    fn three(dir: &Path) -> Vec<(Vec<u8>, PathBuf)> {
        ["a.png", "sub/b.png", "c.jpg"]
            .iter()
            .map(|rel| {
                let p = dir.join(rel);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(&p, format!("bytes of {rel}")).unwrap();
                (rel.as_bytes().to_vec(), p)
            })
            .collect()
    }

    fn run(files: &[(Vec<u8>, PathBuf)], memo: &Path, settled: Duration) -> (Vec<[u8; 32]>, usize) {
        let list: Vec<File> = (files.iter())
            .map(|(rel, path)| File { rel, path })
            .collect();
        let d = sha256_all(&list, Some(memo), settled).unwrap();
        d.remember();
        (d.sha256, d.hashed)
    }

    #[test]
    fn a_second_read_hashes_only_the_files_that_changed() {
        let d = tempfile::tempdir().unwrap();
        let files = three(&d.path().join("data"));
        let memo = memo_path(&d.path().join("cache"), &d.path().join("data"));
        let want: Vec<[u8; 32]> = (files.iter())
            .map(|(_, p)| sha(&std::fs::read(p).unwrap()))
            .collect();
        // past the coarse timestamp tick, so that the files count as settled (no wait in `settled`)
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(run(&files, &memo, Duration::ZERO), (want.clone(), 3));
        assert!(memo.is_file());
        assert_eq!(run(&files, &memo, Duration::ZERO), (want.clone(), 0));
        // changed in place, same size, modification time put back: the change time tells
        let b = &files[1].1;
        let mtime = std::fs::metadata(b).unwrap().modified().unwrap();
        std::fs::write(b, b"BYTES OF sub/b.png").unwrap();
        let f = std::fs::File::options().write(true).open(b).unwrap();
        f.set_modified(mtime).unwrap();
        drop(f);
        let mut now = want.clone();
        now[1] = sha(b"BYTES OF sub/b.png");
        assert_ne!(now, want);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(run(&files, &memo, Duration::ZERO), (now.clone(), 1));
        assert_eq!(run(&files, &memo, Duration::ZERO), (now.clone(), 0));
        // a memo cut short is not trusted
        let bytes = std::fs::read(&memo).unwrap();
        std::fs::write(&memo, &bytes[..bytes.len() - 1]).unwrap();
        assert_eq!(run(&files, &memo, Duration::ZERO), (now, 3));
    }

    #[test]
    fn files_touched_just_before_the_hashing_are_hashed_again() {
        let d = tempfile::tempdir().unwrap();
        let files = three(d.path());
        let memo = d.path().join("memo.bin");
        let (first, hashed) = run(&files, &memo, SETTLED);
        assert_eq!(hashed, 3);
        assert_eq!(run(&files, &memo, SETTLED), (first, 3), "none remembered");
    }
}

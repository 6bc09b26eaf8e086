//! Files that are written whole or not at all, and the temporaries a killed writer leaves.
//!
//! Every file kd-sweep writes — records, the manifest, checkpoints, the teacher cache, the decoded
//! image cache, the page — goes through [`write_atomic`] (or [`write_atomic_with`] for a library
//! that wants a path): a temporary file beside the target, fsync, rename, fsync of the folder. The
//! temporary's name says who wrote it, `.<name>.tmp-<host>-<pid>.<n>` (`n` counts this process's
//! writes, so threads writing the same file at once never share one), and
//! [`remove_stale_temps`] uses that to clear what writers killed mid-write left, without touching a
//! live writer's files. At the bottom of the library: the data layer uses it as well as the store.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// This machine's host name, with every character other than ASCII letters, digits and `-` made `_`
/// (so it can sit in a file name, and never holds the `.` that ends a temporary's tag).
pub fn host() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let name = if ok {
        String::from_utf8_lossy(&buf[..buf.iter().position(|&b| b == 0).unwrap_or(0)]).into_owned()
    } else {
        String::new()
    };
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The suffix of one temporary file or folder of this process: `tmp-<host>-<pid>.<n>`, so a later
/// run can tell whether the writer is gone, and no two writes of this process share a name.
pub fn tmp_tag() -> String {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let n = WRITES.fetch_add(1, Ordering::Relaxed);
    format!("tmp-{}-{}.{n}", host(), std::process::id())
}

/// The name a folder being replaced is moved to before it is removed: `.<name>.old-<host>-<pid>`,
/// which [`remove_stale_temps`] clears should the writer die between the two.
pub fn old_name(name: &str) -> String {
    format!(".{name}.old-{}-{}", host(), std::process::id())
}

/// Whether process `pid` exists on this host and is not a zombie (a writer killed with its coordinator
/// can linger as a zombie for a moment; it writes nothing more).
fn process_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks whether the process exists.
    if unsafe { libc::kill(pid, 0) } != 0 {
        return false;
    }
    // /proc/<pid>/stat: "pid (comm) S …"; the state follows the last ')'
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| matches!(rest.trim_start().chars().next(), Some('Z' | 'X'))),
        Err(_) => true,
    }
}

/// Whether the process that wrote a file is alive: `Some` on this host, `None` when it ran elsewhere
/// (another node of a cluster), where only the file's age can tell.
pub fn writer_alive(writer_host: &str, pid: u32) -> Option<bool> {
    (writer_host == host()).then(|| process_alive(pid as i32))
}

/// The writer a temporary's name records: `(host, pid)` from `.<name>.tmp-<host>-<pid>[.<n>]` or
/// `.<name>.old-<host>-<pid>`; `None` for a file that is not a temporary.
fn temp_writer(file_name: &str) -> Option<(String, Option<i32>)> {
    if !file_name.starts_with('.') {
        return None;
    }
    let (_, tag) = file_name
        .rsplit_once(".tmp-")
        .or_else(|| file_name.rsplit_once(".old-"))?;
    // host names hold no '.', so the write counter starts at the first one
    let tag = tag.split_once('.').map_or(tag, |(t, _)| t);
    Some(match tag.rsplit_once('-') {
        Some((h, p)) => (h.to_string(), p.parse().ok()),
        None => (String::new(), tag.parse().ok()),
    })
}

/// Removes temporary files and folders (`.<name>.tmp-<host>-<pid>.<n>`, `.<name>.old-…`) left in
/// `dir` by writers that were killed: on this host when their process no longer exists, from other
/// hosts when they are over an hour old. A live writer's files are never touched. Returns how many
/// were removed.
pub fn remove_stale_temps(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let me = host();
    let mut removed = 0;
    for e in entries.flatten() {
        let Some((tag_host, pid)) = temp_writer(&e.file_name().to_string_lossy()) else {
            continue;
        };
        let dead_here = tag_host == me
            && pid.is_some_and(|p| p != std::process::id() as i32 && !process_alive(p));
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|d| d.as_secs() > 3600));
        if dead_here || old {
            let p = e.path();
            let ok = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            removed += ok.is_ok() as usize;
        }
    }
    removed
}

/// Testing hook: `KD_SWEEP_FAIL_WRITE=<text>` makes writes of files whose path contains the text
/// fail half-way with "No space left on device", as a full disk would.
fn injected_full_disk(path: &Path) -> bool {
    std::env::var("KD_SWEEP_FAIL_WRITE")
        .is_ok_and(|pat| !pat.is_empty() && path.to_string_lossy().contains(&pat))
}

/// Writes `bytes` to `path` so that readers see either the old file or the whole new one: a temporary
/// file in the same folder (the folder made when missing), fsync, rename, fsync of the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, |tmp| {
        let mut f = std::fs::File::create(tmp)?;
        if injected_full_disk(path) {
            f.write_all(&bytes[..bytes.len() / 2])?;
            return Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
        }
        f.write_all(bytes)
    })
}

/// [`write_atomic`] for a writer that wants a path (a library that writes files itself): `write`
/// creates the temporary file it is given; it is then fsynced and renamed onto `path`, and the folder
/// fsynced. On failure the temporary file is removed.
pub fn write_atomic_with(
    path: &Path,
    mut write: impl FnMut(&Path) -> std::io::Result<()>,
) -> std::io::Result<()> {
    // a bare file name has an empty parent: that is the current folder
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}", tmp_tag()));
    let result = (|| {
        // the folder may have gone since it was made (a task that finished removed an empty
        // progress/ or checkpoints/): made again, once
        let first = write(&tmp);
        match first {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !dir.exists() => {
                std::fs::create_dir_all(dir)?;
                write(&tmp)?;
            }
            other => other?,
        }
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_of_a_bare_file_name_uses_the_current_folder() {
        let dir = tempfile::tempdir().unwrap();
        let here = std::env::current_dir().unwrap();
        std::env::set_current_dir(dir.path()).unwrap();
        let r = write_atomic(Path::new("bare.txt"), b"x");
        std::env::set_current_dir(here).unwrap();
        r.unwrap();
        assert_eq!(std::fs::read(dir.path().join("bare.txt")).unwrap(), b"x");
    }

    #[test]
    fn a_folder_removed_while_a_write_starts_is_made_again() {
        // another process removed the (empty) folder between its creation and the file's
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("progress");
        let path = dir.join("run.json");
        let mut calls = 0;
        write_atomic_with(&path, |tmp| {
            calls += 1;
            if calls == 1 {
                std::fs::remove_dir(&dir)?;
            }
            std::fs::write(tmp, b"{}")
        })
        .unwrap();
        assert_eq!((calls, std::fs::read(&path).unwrap()), (2, b"{}".to_vec()));
    }

    #[test]
    fn atomic_write_leaves_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn no_two_writes_of_one_process_share_a_temporary_name() {
        let (a, b) = (tmp_tag(), tmp_tag());
        assert_ne!(a, b);
        let (h, pid) = temp_writer(&format!(".x.json.{a}")).unwrap();
        assert_eq!((h, pid), (host(), Some(std::process::id() as i32)));
    }

    #[test]
    fn many_threads_writing_one_file_at_once_all_succeed_and_leave_one_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("shared.bin");
        std::thread::scope(|s| {
            for i in 0..8u8 {
                let p = &p;
                s.spawn(move || {
                    for _ in 0..20 {
                        write_atomic(p, &[i; 4096]).unwrap();
                    }
                });
            }
        });
        let bytes = std::fs::read(&p).unwrap();
        assert!(bytes.len() == 4096 && bytes.iter().all(|&b| b == bytes[0]));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn stale_temporary_files_of_dead_writers_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let me = host();
        // pids that cannot exist (above the kernel's pid_max of 2^22)
        let dead = dir.path().join(format!(".a.json.tmp-{me}-9999999.3"));
        let dead_unnumbered = dir.path().join(format!(".e.json.tmp-{me}-9999997"));
        let live = dir.path().join(format!(".b.json.{}", tmp_tag()));
        let other_host = dir.path().join(".c.json.tmp-elsewhere-1.0");
        let dead_dir = dir.path().join(format!(".key.old-{me}-9999998"));
        let record = dir.path().join("d.json");
        for f in [&dead, &dead_unnumbered, &live, &other_host, &record] {
            std::fs::write(f, b"x").unwrap();
        }
        std::fs::create_dir(&dead_dir).unwrap();
        assert_eq!(remove_stale_temps(dir.path()), 3);
        assert!(!dead.exists() && !dead_unnumbered.exists() && !dead_dir.exists());
        assert!(
            live.exists() && other_host.exists() && record.exists(),
            "a live or recent writer's file was removed"
        );
    }
}

//! Small helpers every stage uses.

/// The first non-empty line of a message, trimmed: libtorch's errors (and tch's panics with them)
/// carry a C++ backtrace after the line that says what happened.
pub fn first_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_string()
}

/// A command used wrongly — a model name that is not one, a folder that is not what the command
/// takes — said plainly; exit code 2, as a bad sweep file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// `--quiet` in this process (a worker is told by its coordinator): progress and notes a run
/// prints are left out, warnings and errors are not.
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Sets [`quiet`] for this process.
pub fn set_quiet(on: bool) {
    QUIET.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Whether this process was asked for errors only (`--quiet`).
pub fn quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

/// Items in prose: "a", "a and b", "a, b and c".
pub fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// Lower-case hexadecimal of `bytes` (SHA-256 digests in keys, file names and checksums).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A file a sweep names (a relative `path` is relative to `base`, the sweep file's folder), read and
/// hashed: its path and the hex SHA-256 of its bytes; or its path and why it cannot be read.
pub fn read_hashed(
    path: &str,
    base: &std::path::Path,
) -> Result<(std::path::PathBuf, String), String> {
    use sha2::{Digest, Sha256};
    let p = std::path::Path::new(path);
    let p = if p.is_relative() {
        base.join(p)
    } else {
        p.to_path_buf()
    };
    match std::fs::read(&p) {
        Ok(bytes) => Ok((p, hex(&Sha256::digest(&bytes)))),
        Err(e) => Err(format!("{} ({e})", p.display())),
    }
}

/// Edits from `a` to `b` — a character inserted, removed or replaced, or two neighbours swapped
/// (optimal string alignment: `aplha` is one edit from `alpha`, as `alpa` is) — for near-miss
/// suggestions.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // d[i][j]: edits from a[..i] to b[..j]
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let replace = d[i - 1][j - 1] + usize::from(a[i - 1] != b[j - 1]);
            let mut best = replace.min(d[i - 1][j] + 1).min(d[i][j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The candidate nearest to `name` by [`edit_distance`] (the first of equals, a candidate equal to
/// `name` skipped), when it is close enough to be a slip of the keyboard — one edit per three
/// characters of `name`, at least one and at most three: the "did you mean" of a misspelt model name
/// or sweep-file key (`temprature` → `temperature`, but nothing for `foo` among `epochs` and `lr`).
pub fn nearest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let most = (name.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .map(|c| (edit_distance(c, name), c))
        .filter(|&(d, _)| d >= 1 && d <= most)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// What is wrong with one key of a sweep-file table, found by the code that owns the key's meaning
/// (an optimizer's rules live beside the optimizer): the key's name, which element of a list when
/// it is one, and what to do. The config stage turns it into a file:line:column error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyProblem {
    pub key: &'static str,
    pub element: Option<usize>,
    pub message: String,
}

impl KeyProblem {
    pub fn new(key: &'static str, message: impl Into<String>) -> KeyProblem {
        KeyProblem {
            key,
            element: None,
            message: message.into(),
        }
    }

    /// A problem with element `i` of the list `key`.
    pub fn element(key: &'static str, i: usize, message: impl Into<String>) -> KeyProblem {
        KeyProblem {
            key,
            element: Some(i),
            message: message.into(),
        }
    }
}

/// Waits for `child` to end, or kills it at `deadline`: its exit status, `None` when killed.
pub fn wait_or_kill(
    child: &mut std::process::Child,
    deadline: std::time::Instant,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Runs `cmd` to its end and collects its output, as `Command::output` does, unless it runs past
/// `limit`: then it is killed and `Ok(None)` returned (a benchmark's reference run must not take the
/// whole of a lent machine's time).
pub fn output_within(
    cmd: &mut std::process::Command,
    limit: std::time::Duration,
) -> std::io::Result<Option<std::process::Output>> {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // drained on threads of their own, so that a chatty child never blocks on a full pipe
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let status = wait_or_kill(&mut child, std::time::Instant::now() + limit)?;
    // after a kill the readers are left behind: a grandchild holding the pipes open must not
    // hold this call past its limit
    Ok(status.map(|status| std::process::Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }))
}

static OUTPUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Writes to stderr (`err`) or stdout, never panicking: what the crate's `println!` and
/// `eprintln!` call (lib.rs). A stream whose reader has gone loses the text and is remembered as
/// closed.
pub fn write_out(err: bool, args: std::fmt::Arguments) {
    use std::io::Write;
    let written = if err {
        std::io::stderr().lock().write_fmt(args)
    } else {
        let mut out = std::io::stdout().lock();
        out.write_fmt(args).and_then(|()| out.flush())
    };
    if written.is_err_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) {
        OUTPUT_CLOSED.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Whether stdout or stderr was closed by its reader (see [`write_out`]).
pub fn output_closed() -> bool {
    OUTPUT_CLOSED.load(std::sync::atomic::Ordering::SeqCst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_names_a_slip_of_the_keyboard_and_nothing_else() {
        let keys = ["temperature", "alpha", "method", "baseline"];
        assert_eq!(nearest("temprature", keys), Some("temperature"));
        assert_eq!(nearest("alpa", keys), Some("alpha"));
        assert_eq!(
            nearest("teachr", ["teacher", "student", "grid"]),
            Some("teacher")
        );
        assert_eq!(
            nearest("foo", ["epochs", "lr"]),
            None,
            "3 edits of 3 letters is no slip"
        );
        assert_eq!(
            nearest("seed", ["seeds", "name", "seed"]),
            Some("seeds"),
            "itself is skipped"
        );
        assert_eq!(nearest("zzzzzzzzzz", keys), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        // two neighbours swapped are one slip
        assert_eq!(nearest("aplha", keys), Some("alpha"));
        assert_eq!(nearest("alpah", keys), Some("alpha"));
        assert_eq!(nearest("nmae", ["name", "seeds"]), Some("name"));
        assert_eq!(nearest("sedes", ["name", "seeds"]), Some("seeds"));
        assert_eq!(
            nearest("gird", ["teacher", "student", "grid"]),
            Some("grid")
        );
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", ""), 3);
    }

    #[test]
    fn output_within_collects_a_quick_command_and_stops_a_slow_one() {
        use std::process::Command;
        use std::time::{Duration, Instant};
        let out = output_within(
            Command::new("sh").args(["-c", "echo out; echo err >&2"]),
            Duration::from_secs(60),
        )
        .unwrap()
        .expect("finished");
        assert!(out.status.success());
        assert_eq!(
            (&out.stdout[..], &out.stderr[..]),
            (&b"out\n"[..], &b"err\n"[..])
        );
        let start = Instant::now();
        // (a grandchild keeps the pipes open after the shell is killed)
        let slow = output_within(
            Command::new("sh").args(["-c", "sleep 30; true"]),
            Duration::from_millis(300),
        );
        assert!(slow.unwrap().is_none(), "stopped at its limit");
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "and killed, not waited for"
        );
    }
}

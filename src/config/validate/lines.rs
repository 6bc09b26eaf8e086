//! The sweep file read line by line for the full key path each line defines (`[grid]` then
//! `alpha` is `grid.alpha`, as is a top-level `grid.alpha` or a quoted `"alpha"`): what every error
//! names as its key ([`key_path_at`]), and TOML's bare "duplicate key" in words ([`said`]): which
//! table or key is written twice, in any spelling, where it first is, and what to do.

/// One line that defines something: a table header or a key.
struct Defined {
    line: usize,
    /// The full path: `["grid", "dkd", "beta"]`.
    path: Vec<String>,
    /// How many leading parts of `path` are the table the key is in (a header: all of them).
    table: usize,
    header: bool,
    text: String,
}

/// Where the line holding byte `offset` of `text` starts.
pub(super) fn line_start(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1)
}

/// What the lines of `text` before `line_start` define, each with where its line starts, and the
/// table the next line is in.
fn defined_before(text: &str, line_start: usize) -> (Vec<(Defined, usize)>, Vec<String>) {
    let mut table = Vec::new();
    let mut out = Vec::new();
    let mut at = 0;
    for (i, l) in text[..line_start].split_inclusive('\n').enumerate() {
        if let Some(d) = defined(l.trim_end(), i + 1, &mut table) {
            out.push((d, at));
        }
        at += l.len();
    }
    (out, table)
}

/// What `text`, where TOML reported "duplicate key" at byte `offset`, writes twice, in words.
pub(super) fn said(text: &str, offset: usize) -> Option<String> {
    let start = line_start(text, offset);
    let (before, mut table) = defined_before(text, start);
    let here_line = text[..start].split_inclusive('\n').count() + 1;
    let here = defined(text[start..].lines().next()?, here_line, &mut table)?;
    // the same path first; else a path inside it, or one it is inside, made by a dotted key
    let first = (before.iter().map(|(d, _)| d))
        .find(|d| d.path == here.path)
        .or_else(|| {
            (before.iter().map(|(d, _)| d)).find(|d| clashes(d, &here) || clashes(&here, d))
        })?;
    Some(message(&here, first))
}

/// The full dotted path of the key or table a line defines, for the line of byte `offset`
/// (`teacher.epochs` for `epochs = ` under `[teacher]`, or for a top-level `teacher.epochs = `;
/// quotes taken off; `teacher.optimizer` for `[teacher.optimizer]`): what an error names as its key.
pub(super) fn key_path_at(text: &str, offset: usize) -> Option<String> {
    let start = line_start(text, offset);
    let (mut before, mut table) = defined_before(text, start);
    let here = match defined(text[start..].lines().next()?, 0, &mut table) {
        Some(d) => d,
        // a line inside a multi-line array: the last key before it, if its `[` is still open
        None => {
            let (d, from) = before.pop().filter(|(d, _)| !d.header)?;
            let value = text.get(from..offset)?.split_once('=')?.1;
            let open = value.matches('[').count() > value.matches(']').count();
            open.then_some(d)?
        }
    };
    (here.path.iter().all(|p| !p.is_empty())).then(|| here.path.join("."))
}

/// Whether `a`, written earlier or later, makes `b`'s table implicitly: `b` is a table strictly
/// inside `a`'s path beyond `a`'s own table (a dotted key `grid.dkd.beta` makes `grid.dkd`), or
/// `a` is a value that `b` would need to be a table.
fn clashes(a: &Defined, b: &Defined) -> bool {
    let inside = b.path.len() < a.path.len()
        && a.path.starts_with(&b.path)
        && b.path.len() > a.table
        && !a.header;
    let under_a_value = !a.header && b.path.len() > a.path.len() && b.path.starts_with(&a.path);
    inside || under_a_value
}

fn message(here: &Defined, first: &Defined) -> String {
    let name = here.path.join(".");
    let at = first.line;
    match (here.header, first.header) {
        (true, true) => format!(
            "[{name}] is written twice (first on line {at}); write each table once, with all its \
             keys"
        ),
        (true, false) => format!(
            "[{name}] is already made by `{}` on line {at}; write the table's keys in one place: \
             all under [{name}], or all as dotted keys",
            first.text
        ),
        (false, _) if first.path == here.path && first.text == here.text => format!(
            "`{}` is written twice in its table (first on line {at}); keep one",
            here.text
        ),
        (false, _) if first.path == here.path => format!(
            "`{name}` is written twice: here as `{}`, and on line {at} as `{}`; keep one",
            here.text, first.text
        ),
        (false, _) => format!(
            "`{name}` clashes with `{}` on line {at} (one makes a table the other sets as a \
             value); keep one",
            first.text
        ),
    }
}

/// What line `n` defines, `table` being the table it is in (updated by a header).
fn defined(line: &str, n: usize, table: &mut Vec<String>) -> Option<Defined> {
    let l = line.trim();
    if l.starts_with('#') || l.is_empty() {
        return None;
    }
    if let Some(h) = l.strip_prefix('[') {
        let h = h.strip_prefix('[').unwrap_or(h);
        let inner = h.split(']').next()?;
        let path = parts(inner);
        *table = path.clone();
        return Some(Defined {
            line: n,
            table: path.len(),
            path,
            header: true,
            text: format!("[{}]", inner.trim()),
        });
    }
    let key = key_part(l)?;
    let mut path = table.clone();
    path.extend(parts(key));
    Some(Defined {
        line: n,
        path,
        table: table.len(),
        header: false,
        text: key.trim().to_string(),
    })
}

/// The key of a `key = value` line: what comes before the first `=` outside quotes.
fn key_part(l: &str) -> Option<&str> {
    let mut quote = None;
    for (i, c) in l.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '=') => return Some(&l[..i]),
            _ => {}
        }
    }
    None
}

/// A dotted key's parts, unquoted: `grid . "dkd".beta` → grid, dkd, beta.
fn parts(key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut part = String::new();
    let mut quote = None;
    for c in key.chars() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '.') => out.push(std::mem::take(&mut part).trim().to_string()),
            (None, c) if c.is_whitespace() => {}
            _ => part.push(c),
        }
    }
    out.push(part.trim().to_string());
    out
}

#[cfg(test)]
mod tests {
    use super::said;

    /// The error's offset: the start of the line holding `at` (TOML's span is on that line).
    fn at(text: &str, at: &str) -> Option<String> {
        said(text, text.rfind(at).unwrap())
    }

    #[test]
    fn a_key_or_table_written_twice_is_named_in_any_spelling() {
        let t = "[grid]\nalpha = [0.5]\ntemperature = [2.0]\nalpha = [0.9]\n";
        assert_eq!(
            at(t, "alpha = [0.9]").unwrap(),
            "`alpha` is written twice in its table (first on line 2); keep one"
        );
        let t = "[grid]\nalpha = [0.5]\n\"alpha\" = [0.9]\n";
        assert_eq!(
            at(t, "\"alpha\"").unwrap(),
            "`grid.alpha` is written twice: here as `\"alpha\"`, and on line 2 as `alpha`; keep one"
        );
        let t = "name = \"x\"\ngrid.alpha = [0.5]\n[teacher]\nepochs = 1\n[grid]\nalpha = [0.9]\n";
        assert_eq!(
            at(t, "[grid]").unwrap(),
            "[grid] is already made by `grid.alpha` on line 2; write the table's keys in one \
             place: all under [grid], or all as dotted keys"
        );
        let t = "[grid]\nalpha = [0.5]\n[teacher]\nepochs = 1\n[ grid ]\n";
        assert_eq!(
            at(t, "[ grid ]").unwrap(),
            "[grid] is written twice (first on line 1); write each table once, with all its keys"
        );
        let t = "[grid]\ndkd.beta = 8.0\n[grid.dkd]\nbeta = 2.0\n";
        assert_eq!(
            at(t, "[grid.dkd]").unwrap(),
            "[grid.dkd] is already made by `dkd.beta` on line 2; write the table's keys in one \
             place: all under [grid.dkd], or all as dotted keys"
        );
        // a sub-table after its own header is fine TOML, so never blamed on that header
        let t = "[grid.dkd]\nbeta = 2.0\n[grid]\ndkd = 1\n";
        assert_eq!(
            at(t, "dkd = 1").unwrap(),
            "`grid.dkd` is written twice: here as `dkd`, and on line 1 as `[grid.dkd]`; keep one"
        );
        assert_eq!(at("[grid]\nalpha = 1\n", "alpha"), None);
    }
}

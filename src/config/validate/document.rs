//! The sweep file as TOML, read so that every key's problem is found, not only the first one serde
//! stops at. A value of the wrong type is reported and stands in the parsed document as a
//! placeholder of the right type (so a required key does not go missing); an unknown key is reported
//! and taken out, or, when it is a slip for a key that is not written (`temprature`), renamed to that
//! key, as a compiler assumes what was meant; a key missing from a table is reported and a stand-in
//! put in its place (a missing table is reported as one, and its stand-in table filled silently);
//! then the document is read again, until it reads. Positions stay those of the file, since the
//! document keeps the spans of what is left, and later checks that find a placeholder wrong say
//! nothing new ([`Validator::finish`] keeps only the first problem at a placeholder). A stand-in's
//! value means nothing, so a file that needed one is not checked further.

use super::{unknown_field_nearest, Validator};
use crate::config::raw::{RawSweep, RawTable, RawValue};
use crate::config::ConfigError;
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::de::{DeArray, DeFloat, DeInteger, DeString, DeTable, DeValue};
use toml::Spanned;

/// At most this many problems are found before giving up (a file with more than that has been
/// reported enough).
const MOST: usize = 100;

impl Validator<'_> {
    /// The file as [`RawSweep`], every refused key reported; `None` when it does not read even then
    /// (a TOML syntax error, a missing top-level key) or lacked a key of a table, with every error
    /// found reported.
    pub(in crate::config) fn document(&self) -> Option<RawSweep> {
        let mut doc = match DeTable::parse(self.text) {
            Ok(d) => d,
            Err(e) => return self.keep(Err(self.toml_error(&e))),
        };
        let tables = self.keep(self.method_tables(doc.get_mut()))?;
        let grid_span = doc.get_ref().get("grid").map(|g| g.span());
        // dotted paths of the keys taken out: a later "missing field" may be their echo
        let mut taken: Vec<String> = Vec::new();
        // the spans of the stand-ins for missing keys: empty, each its own, past the file's end (so
        // none is a written value's)
        let mut stand_ins: Vec<StandIn> = Vec::new();
        for _ in 0..MOST {
            let e = match RawSweep::deserialize(toml::de::Deserializer::from(doc.clone())) {
                // what later checks would say of a stand-in's value is not the user's mistake
                Ok(_) if !stand_ins.is_empty() => return None,
                Ok(mut raw) => {
                    raw.grid.tables = tables;
                    raw.grid.span = grid_span.unwrap_or_default();
                    return Some(raw);
                }
                Err(e) => e,
            };
            let span = e.span();
            // at a stand-in, silently (its key's missing field was reported): one of the wrong type
            // takes the type serde asks for (a table, for a missing table), and a stand-in table's
            // missing keys get stand-ins too; each has its own span, so the one asked about is found
            if let Some(s) = span
                .as_ref()
                .and_then(|s| stand_ins.iter().find(|x| x.span == *s))
            {
                let (s, path) = (s.span.clone(), s.path.clone());
                if let Some(field) = missing_field(e.message()) {
                    self.stand_in(
                        doc.get_mut(),
                        [path, vec![field.into()]].concat(),
                        &mut stand_ins,
                    )?;
                    continue;
                }
                match placeholder(e.message()).or_else(|| table_expected(e.message())) {
                    Some(v) if replace(doc.get_mut(), &s, &v) => continue,
                    _ => return None,
                }
            }
            if let Some(field) = missing_field(e.message()) {
                self.missing_key(doc.get_mut(), &e, field, &taken, &mut stand_ins)?;
                continue;
            }
            self.keep::<()>(Err(self.toml_error(&e)));
            let span = span?;
            let stand_in = placeholder(e.message());
            if stand_in.is_some_and(|v| replace(doc.get_mut(), &span, &v)) {
                self.placeholders
                    .borrow_mut()
                    .push(self.line_col(span.start));
                continue;
            }
            let path = locate(doc.get_ref(), span.start)?;
            let (name, value) = remove(doc.get_mut(), &path)?;
            // a slip (`temprature`) stands for the key it was meant to be, when that one is not
            // written too: its value is checked as that key's
            let meant = unknown_field_nearest(e.message());
            if let Some(meant) = meant.filter(|m| !has(doc.get_ref(), &path, m)) {
                let line_start = super::lines::line_start(self.text, name.span().start);
                (self.renamed.borrow_mut()).push((line_start, meant.to_string()));
                let name = Spanned::new(name.span(), DeString::Owned(meant.to_string()));
                table_of(doc.get_mut(), &path[..path.len() - 1])?.insert(name, value);
            }
            taken.push(path.join("."));
        }
        None
    }
}

/// A stand-in for a missing key: its span (empty, past the file's end, each its own, so none is a
/// written value's) and the path of the key it stands for.
struct StandIn {
    span: std::ops::Range<usize>,
    path: Vec<String>,
}

impl Validator<'_> {
    /// Reports missing key `field` (as a missing table at the top level when it is one; not at all
    /// when it was taken out, whose error says so) and puts a stand-in in its place; `None` ends the
    /// reading: its table cannot be found.
    fn missing_key(
        &self,
        doc: &mut DeTable,
        e: &toml::de::Error,
        field: &str,
        taken: &[String],
        stand_ins: &mut Vec<StandIn>,
    ) -> Option<()> {
        let span = e.span();
        // the table it is missing from: the root's span is empty, a table's is its header
        let path = match &span {
            Some(s) if !s.is_empty() => locate(doc, s.start).unwrap_or_default(),
            _ => Vec::new(),
        };
        // not when it was taken out, or a key taken out beside it was a slip for it
        // (`[teachr]` for [teacher]): that key's error says so already
        let table = path.join(".");
        let echo = taken.iter().any(|t| {
            let (within, name) = t.rsplit_once('.').unwrap_or(("", t));
            within == table && (name == field || crate::util::nearest(name, [field]).is_some())
        });
        let at_root = span.as_ref().is_none_or(|s| s.is_empty());
        // not in a table that could not be found
        if path.is_empty() && !at_root {
            return None;
        }
        let stand_in = [path, vec![field.into()]].concat();
        if echo {
            // said already: a stand-in takes its place silently, so the reading goes on
            return self.stand_in(doc, stand_in, stand_ins);
        }
        let mut error = self.toml_error(e);
        if let Some((_, keys)) = (RawSweep::TABLES.iter()).find(|(t, _)| at_root && *t == field) {
            error.message = format!(
                "missing table [{field}]: a `[{field}]` line with {keys} on the lines below \
                 it (see experiments/quick.toml for a complete sweep file)"
            );
        }
        self.keep::<()>(Err(error));
        // every missing key is reported, not only the first serde stops at: a stand-in
        // takes the key's place, in its table (found by its header) or at the top level
        // (whose span is empty)
        self.stand_in(doc, stand_in, stand_ins)
    }

    /// Puts a stand-in for the missing key at `path` in the document: an integer, retyped when serde
    /// asks for another type. `None` when its table is not in the document.
    fn stand_in(
        &self,
        doc: &mut DeTable,
        path: Vec<String>,
        stand_ins: &mut Vec<StandIn>,
    ) -> Option<()> {
        let end = self.text.len() + 1 + stand_ins.len();
        let (field, within) = path.split_last()?;
        let name = Spanned::new(end..end, DeString::Owned(field.clone()));
        let value = Spanned::new(end..end, DeValue::Integer(DeInteger::default()));
        table_of(doc, within)?.insert(name, value);
        stand_ins.push(StandIn {
            span: end..end,
            path,
        });
        Some(())
    }

    /// Takes the `[grid.<name>]` tables out of `[grid]` (every table there, and every key named as a
    /// method's table), read as written: their keys are checked against the methods' declarations, not
    /// by serde.
    fn method_tables(&self, doc: &mut DeTable) -> Result<Vec<RawTable>, ConfigError> {
        let Some(DeValue::Table(grid)) = doc.get_mut("grid").map(|g| g.get_mut()) else {
            return Ok(Vec::new());
        };
        let names: Vec<String> = grid
            .iter()
            .filter(|(k, v)| {
                let key = k.get_ref().as_ref();
                // `alpha = { … }` is [grid]'s own key written as a table: serde says so
                let own = crate::config::raw::GRID_KEYS.contains(&key);
                (matches!(v.get_ref(), DeValue::Table(_)) && !own)
                    || crate::distill::Method::ALL
                        .iter()
                        .any(|m| m.table().is_some_and(|t| t.name == key))
            })
            .map(|(k, _)| k.get_ref().to_string())
            .collect();
        let mut out = Vec::new();
        for name in names {
            let Some((_, value)) = grid.remove_entry(name.as_str()) else {
                continue;
            };
            let span = value.span();
            let keys = match value.into_inner() {
                DeValue::Table(t) => {
                    let read = BTreeMap::<String, Spanned<RawValue>>::deserialize(
                        toml::de::Deserializer::from(Spanned::new(span.clone(), t)),
                    );
                    let mut keys: Vec<_> =
                        read.map_err(|e| self.toml_error(&e))?.into_iter().collect();
                    keys.sort_by_key(|(_, v)| v.span().start);
                    Ok(keys)
                }
                other => Err(other.type_str()),
            };
            out.push(RawTable { name, span, keys });
        }
        out.sort_by_key(|t| t.span.start);
        Ok(out)
    }
}

/// The field of serde's "missing field `x`".
pub(super) fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

/// A value of the type serde's "invalid type: …, expected <type>" asks for.
fn placeholder(message: &str) -> Option<DeValue<'static>> {
    let expected = message
        .strip_prefix("invalid type: ")?
        .rsplit_once(", expected ")?
        .1;
    Some(match expected {
        "i64" => DeValue::Integer(DeInteger::default()),
        "f64" => DeValue::Float(DeFloat::default()),
        "a boolean" => DeValue::Boolean(false),
        "a string" => DeValue::String(DeString::Borrowed("")),
        "a sequence" => DeValue::Array(DeArray::new()),
        _ => return None,
    })
}

/// An empty table, where serde's "invalid type: …, expected struct …" asks for one (only ever put
/// in a stand-in's place: a written value of the wrong type is reported and taken out).
fn table_expected(message: &str) -> Option<DeValue<'static>> {
    let expected = message.rsplit_once(", expected ")?.1;
    expected
        .starts_with("struct ")
        .then(|| DeValue::Table(DeTable::new()))
}

/// Puts `with` in place of the value written at `span` (in a table or an array, at any depth).
fn replace<'i>(t: &mut DeTable<'i>, span: &std::ops::Range<usize>, with: &DeValue<'i>) -> bool {
    fn at<'i>(
        v: &mut Spanned<DeValue<'i>>,
        span: &std::ops::Range<usize>,
        with: &DeValue<'i>,
    ) -> bool {
        if v.span() == *span {
            *v.get_mut() = with.clone();
            return true;
        }
        match v.get_mut() {
            DeValue::Table(t) => replace(t, span, with),
            DeValue::Array(a) => a.iter_mut().any(|x| at(x, span, with)),
            _ => false,
        }
    }
    t.iter_mut().any(|(_, v)| at(v, span, with))
}

/// The path of the innermost key whose name or value lies at `offset` (a table's value is its
/// header), searched through tables and inline tables.
fn locate(t: &DeTable, offset: usize) -> Option<Vec<String>> {
    for (k, v) in t.iter() {
        let name = k.get_ref().to_string();
        if let DeValue::Table(inner) = v.get_ref() {
            if let Some(mut rest) = locate(inner, offset) {
                rest.insert(0, name);
                return Some(rest);
            }
        }
        if k.span().contains(&offset) || v.span().contains(&offset) {
            return Some(vec![name]);
        }
    }
    None
}

/// Takes the key at `path` out of the document: its name and value; `None` when there is none.
fn remove<'i>(
    t: &mut DeTable<'i>,
    path: &[String],
) -> Option<(Spanned<DeString<'i>>, Spanned<DeValue<'i>>)> {
    let (last, within) = path.split_last()?;
    table_of(t, within)?.remove_entry(last.as_str())
}

/// The table at `path` (the root when empty).
fn table_of<'a, 'i>(t: &'a mut DeTable<'i>, path: &[String]) -> Option<&'a mut DeTable<'i>> {
    match path.split_first() {
        None => Some(t),
        Some((first, rest)) => match t.get_mut(first.as_str())?.get_mut() {
            DeValue::Table(inner) => table_of(inner, rest),
            _ => None,
        },
    }
}

/// Whether the table holding the key at `path` also has a key `name`.
fn has(t: &DeTable, path: &[String], name: &str) -> bool {
    let mut t = t;
    for p in &path[..path.len().saturating_sub(1)] {
        match t.get(p.as_str()).map(|v| v.get_ref()) {
            Some(DeValue::Table(inner)) => t = inner,
            _ => return false,
        }
    }
    t.get(name).is_some()
}

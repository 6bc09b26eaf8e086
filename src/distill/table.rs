//! The declaration of a method's `[grid.<name>]` table ([`Table`]): every key, each key's kind, rule
//! and default. Methods declare theirs beside their entry (`distill/mod.rs`); the sweep file's
//! reader (`config/validate/grid.rs`) checks a written table against it and knows no method.

use super::{Axis, Fixed};

/// The value of a method's settings in a student's key.
pub type SettingsValue = fn(&Fixed) -> serde_json::Value;

/// A method's `[grid.<name>]` table: every key it takes, with what each value must be and its
/// default. The sweep file's reader knows no method: it checks a table against this declaration.
pub struct Table {
    pub name: &'static str,
    pub keys: &'static [Key],
    /// The field the method's settings (its keys kept in [`Fixed`]) add to a student's key, and
    /// its value: `None` for a method without settings.
    pub settings_key: Option<(&'static str, SettingsValue)>,
}

/// A key of a method's table.
pub struct Key {
    pub name: &'static str,
    pub kind: KeyKind,
}

/// What a method-table key holds.
pub enum KeyKind {
    /// A grid axis: each value allowed by `rule`, `default` where the key is absent.
    Axis {
        axis: Axis,
        rule: Rule,
        default: Values,
    },
    /// `logit_norm`: the method's cells with plain and/or z-scored logits.
    LogitNorm,
    /// `zscore_temperature`: the z-scored cells' temperatures (default: the method's own).
    ZscoreTemperature,
    /// A whole number of epochs ≥ 1 (one value per sweep, not an axis), kept by `set`.
    Epochs {
        what: &'static str,
        set: fn(&mut Fixed, u32),
    },
    /// A finite number > 0 (one value per sweep), kept by `set`.
    Positive { set: fn(&mut Fixed, f64) },
}

/// What an axis' values must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// A weight: finite and ≥ 0.
    Weight,
    /// A share against the cross-entropy: in [0, 1].
    Fraction,
    /// A temperature: finite and > 0.
    Temperature,
    /// Sets of at least two temperatures.
    TemperatureSets,
}

/// An axis' values where its key is absent.
pub enum Values {
    /// These values, as written.
    Of(&'static [&'static str]),
    /// These sets of values.
    Sets(&'static [&'static [&'static str]]),
    /// `[grid] alpha`.
    GridAlpha,
}

impl Key {
    /// An axis key: `name` holds `axis`, each value allowed by `rule`, `default` where absent.
    pub const fn axis(name: &'static str, axis: Axis, rule: Rule, default: Values) -> Key {
        Key {
            name,
            kind: KeyKind::Axis {
                axis,
                rule,
                default,
            },
        }
    }
}

impl Table {
    /// The table's axes, in its keys' order.
    pub fn axes(&self) -> impl Iterator<Item = Axis> + '_ {
        self.keys.iter().filter_map(|k| match k.kind {
            KeyKind::Axis { axis, .. } => Some(axis),
            _ => None,
        })
    }

    /// The keys' names, for errors: "`alpha`, `beta`, `temperature`".
    pub fn key_names(&self) -> String {
        let names: Vec<String> = self.keys.iter().map(|k| format!("`{}`", k.name)).collect();
        names.join(", ")
    }
}

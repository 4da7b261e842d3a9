//! What every component's settings share. Each component owns its `Settings`: the variables it
//! reads, their defaults and which values are valid, next to the code they configure;
//! [`crate::runtime::config`] only maps the environment onto them. This module sits below all
//! of them and imports nothing of the crate: the [`Env`] a setting is read from, the
//! [`Settings`] trait, the one [`ConfigError`], and the rule for a bounded number.

/// Where settings are read from: the environment as read once at start
/// ([`crate::runtime::config::Config`]), or any lookup in tests.
pub trait Env {
    /// The variable's value; `None` when unset or blank.
    fn var(&self, name: &'static str) -> Option<&str>;
}

/// A component's settings, read from the environment.
pub trait Settings: Sized {
    /// The variables [`Settings::read`] may read, by name.
    const VARIABLES: &'static [&'static str];

    /// Read and check them: a missing or invalid value is one error naming its variable.
    fn read(env: &dyn Env) -> Result<Self, ConfigError>;
}

/// A configuration problem, worded as the one line a function prints before it exits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

impl ConfigError {
    /// `name` is not set; `why` says what it is for.
    pub fn missing(name: &str, why: &str) -> Self {
        ConfigError(format!("{name} is not set ({why})"))
    }
}

/// The Postgres database with `project_members`, the outbox and the notify triggers: read by
/// membership and by the relay, so it belongs to neither.
pub const DATABASE_URL: &str = "DATABASE_URL";

/// `DATABASE_URL`, required (the relay, `migrate`).
pub fn database_url(env: &dyn Env) -> Result<&str, ConfigError> {
    required(
        env,
        DATABASE_URL,
        "the Postgres database with project_members and the notify triggers",
    )
}

/// A required variable: its value, or an error naming it and saying what it is for.
pub fn required<'e>(
    env: &'e dyn Env,
    name: &'static str,
    why: &str,
) -> Result<&'e str, ConfigError> {
    env.var(name).ok_or_else(|| ConfigError::missing(name, why))
}

/// A whole number within `min..=max`, `default` when unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounded {
    pub name: &'static str,
    pub default: usize,
    pub min: usize,
    pub max: usize,
}

impl Bounded {
    pub const fn new(name: &'static str, default: usize, min: usize, max: usize) -> Self {
        Bounded {
            name,
            default,
            min,
            max,
        }
    }

    /// The value of [`Bounded::name`]: `default` when unset, an error naming the range when
    /// it is not a number within it.
    pub fn read(&self, env: &dyn Env) -> Result<usize, ConfigError> {
        let Some(value) = env.var(self.name) else {
            return Ok(self.default);
        };
        value
            .parse::<usize>()
            .ok()
            .filter(|n| (self.min..=self.max).contains(n))
            .ok_or_else(|| {
                ConfigError(format!(
                    "{} must be a number from {} to {}, not {value:?}",
                    self.name, self.min, self.max
                ))
            })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::HashMap;

    /// An environment of the given variables (tests of each component's settings).
    pub(crate) struct Vars(pub HashMap<&'static str, &'static str>);

    impl Env for Vars {
        fn var(&self, name: &'static str) -> Option<&str> {
            self.0.get(name).copied()
        }
    }

    pub(crate) fn vars(pairs: &[(&'static str, &'static str)]) -> Vars {
        Vars(pairs.iter().copied().collect())
    }

    #[test]
    fn a_bounded_number_defaults_and_names_its_range() {
        let n = Bounded::new("N", 7, 1, 10);
        assert_eq!(n.read(&vars(&[])), Ok(7));
        assert_eq!(n.read(&vars(&[("N", "10")])), Ok(10));
        for bad in ["0", "11", "-1", "ten"] {
            let err = n.read(&vars(&[("N", bad)])).unwrap_err().to_string();
            assert!(err.contains("N must be a number from 1 to 10"), "{err}");
        }
        let err = required(&vars(&[]), "N", "what it is for").unwrap_err();
        assert_eq!(
            err.to_string(),
            "configuration error: N is not set (what it is for)"
        );
    }
}

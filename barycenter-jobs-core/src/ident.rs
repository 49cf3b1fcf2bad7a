//! Validated SQL identifiers for table and column names that come from configuration.

use std::fmt;

use crate::error::{Error, Result};

/// A table or column name that is safe to hand to sea-query.
///
/// sea-query quotes identifiers itself; validating them as well keeps configuration
/// mistakes (a space, a dot, a quote) from turning into confusing SQL errors, and keeps
/// names portable across SQLite, PostgreSQL (63 bytes) and MySQL (64 bytes).
///
/// ```
/// use barycenter_jobs_core::Identifier;
///
/// assert!(Identifier::new("refresh_tokens").is_ok());
/// assert!(Identifier::new("sessions; DROP TABLE users").is_err());
/// assert!(Identifier::new("").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identifier(String);

impl Identifier {
    /// Validate `name`: 1 to 63 ASCII letters, digits or `_`, not starting with a digit.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        let mut chars = name.chars();
        let valid = match chars.next() {
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                name.len() <= 63 && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
            }
            _ => false,
        };
        if valid {
            Ok(Self(name))
        } else {
            Err(Error::InvalidIdentifier(name))
        }
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `self` with `suffix` appended, validated again (for derived names such as indexes).
    pub fn with_suffix(&self, suffix: &str) -> Result<Self> {
        Self::new(format!("{}{}", self.0, suffix))
    }
}

impl sea_query::Iden for Identifier {
    fn unquoted(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<&str> for Identifier {
    type Error = Error;
    fn try_from(value: &str) -> Result<Self> {
        Self::new(value)
    }
}

impl TryFrom<String> for Identifier {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        Self::new(value)
    }
}

impl<'de> serde::Deserialize<'de> for Identifier {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Identifier::new(s).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Identifier {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_names_and_refuses_the_rest() {
        for ok in ["sessions", "_x", "A1_b2", &"a".repeat(63)] {
            assert!(Identifier::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1abc",
            "a b",
            "a.b",
            "a\"b",
            "a`b",
            "x;drop",
            "é",
            &"a".repeat(64),
        ] {
            assert!(
                matches!(Identifier::new(bad), Err(Error::InvalidIdentifier(_))),
                "{bad}"
            );
        }
    }
}

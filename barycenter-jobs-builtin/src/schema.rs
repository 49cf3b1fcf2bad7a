//! The check every cleanup makes before it deletes or counts anything: do its table and
//! columns exist, and can each time column hold the configured [`TimeFormat`]?
//!
//! A cut-off of the wrong type does not fail, it matches nothing (epoch seconds against
//! RFC 3339 text on SQLite: every text sorts after every number) or, worse, everything (a
//! text cut-off against an integer column on SQLite: every number sorts before every text).
//! Either way the run would record "succeeded" with a count that means nothing. So each run
//! and each dry run first reads the table's columns from the database's catalogue
//! ([`Backend::table_columns`]) and refuses, with [`SchemaError`], when the table is missing,
//! a column is missing, or a time column's declared type cannot hold its format.

use barycenter_jobs_core::{Backend, Database, Identifier, JobError};

use crate::time::TimeFormat;

/// A column a cleanup reads or compares, checked against the catalogue before every run and
/// dry run ([`CleanupKind::columns`](crate::CleanupKind::columns)).
///
/// ```
/// use barycenter_jobs_builtin::{CheckedColumn, TimeFormat};
/// use barycenter_jobs_core::Identifier;
///
/// let t = Identifier::new("auth_codes").unwrap();
/// let expires = CheckedColumn::new(&t, &Identifier::new("expires_at").unwrap(), "expires_column")
///     .holding(TimeFormat::EpochSeconds);
/// assert_eq!(expires.format, Some(TimeFormat::EpochSeconds));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckedColumn {
    /// The table.
    pub table: Identifier,
    /// The column.
    pub column: Identifier,
    /// The instants the column must hold, for a time column; `None` for a column that only
    /// has to exist (a key, a flag).
    pub format: Option<TimeFormat>,
    /// The configuration key that names the column (`expires_column`, ...), for the message
    /// that tells how to fix it.
    pub setting: &'static str,
}

impl CheckedColumn {
    /// `table.column` must exist; `setting` is the configuration key naming it.
    pub fn new(table: &Identifier, column: &Identifier, setting: &'static str) -> Self {
        Self {
            table: table.clone(),
            column: column.clone(),
            format: None,
            setting,
        }
    }

    /// ... and hold instants in `format`.
    pub fn holding(mut self, format: TimeFormat) -> Self {
        self.format = Some(format);
        self
    }
}

/// Why a cleanup refused to run: its table or a column is missing, or a time column cannot
/// hold the configured format. The run (or dry run) ends failed with this message, deleting
/// nothing, and it is logged at `error` level with the job's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// The table does not exist (in the connection's database or search path).
    #[error(
        "refusing to run: table {table} does not exist; create it, or set `table` in this cleanup's configuration section to the table that holds the rows"
    )]
    MissingTable {
        /// The table's name.
        table: String,
    },
    /// The table has no such column.
    #[error(
        "refusing to run: table {table} has no column {column}; set `{setting}` in this cleanup's configuration section to the column's name"
    )]
    MissingColumn {
        /// The table's name.
        table: String,
        /// The column's name.
        column: String,
        /// The configuration key naming it.
        setting: &'static str,
    },
    /// A time column whose declared type cannot hold the configured format: the cut-off
    /// would match no row, or the wrong ones.
    #[error(
        "refusing to run: column {table}.{column} is {column_type}, which cannot hold time_format = \"{format}\" (a cut-off in that format would match no row, or the wrong rows); {fix}"
    )]
    WrongType {
        /// The table's name.
        table: String,
        /// The column's name.
        column: String,
        /// The column's type as the catalogue declares it.
        column_type: String,
        /// The configured format.
        format: &'static str,
        /// How to fix it: the format(s) the type holds.
        fix: String,
    },
}

impl From<SchemaError> for JobError {
    fn from(e: SchemaError) -> Self {
        JobError::failed(e)
    }
}

/// What a declared column type holds, as far as a time comparison is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holds {
    /// Integers or other numbers: epoch seconds or milliseconds.
    Number,
    /// Character strings.
    Text,
    /// A timestamp without zone (PostgreSQL), or MySQL's `DATETIME` / `TIMESTAMP`.
    Timestamp,
    /// PostgreSQL's `timestamp with time zone`.
    TimestampTz,
    /// SQLite with no declared type or one of NUMERIC affinity (`NUMERIC`, `DATETIME`,
    /// `DECIMAL`, ...): values keep the type they were written with, so the declared type
    /// tells nothing and any format is accepted.
    Anything,
    /// Anything else (a date, bytes, JSON, ...): holds none of the formats.
    Other,
}

impl Holds {
    /// Classify a declared type as `backend`'s catalogue spells it.
    fn of(backend: Backend, declared: &str) -> Holds {
        let t = declared.trim().to_ascii_lowercase();
        let has = |words: &[&str]| words.iter().any(|w| t.contains(w));
        match backend {
            // SQLite's affinity rules, in SQLite's order (section 3.1 of "Datatypes In
            // SQLite"): INT, then CHAR/CLOB/TEXT, then BLOB or none, then REAL/FLOA/DOUB,
            // else NUMERIC.
            Backend::Sqlite => {
                if has(&["int"]) {
                    Holds::Number
                } else if has(&["char", "clob", "text"]) {
                    Holds::Text
                } else if t.is_empty() {
                    Holds::Anything
                } else if has(&["blob"]) {
                    Holds::Other
                } else if has(&["real", "floa", "doub"]) {
                    Holds::Number
                } else {
                    Holds::Anything
                }
            }
            Backend::Postgres => {
                if t.starts_with("timestamp") && t.ends_with("with time zone") {
                    Holds::TimestampTz
                } else if t.starts_with("timestamp") {
                    Holds::Timestamp
                } else if t.starts_with("character")
                    || t.starts_with("varchar")
                    || t == "text"
                    || t.starts_with("char")
                {
                    Holds::Text
                } else if ["smallint", "integer", "bigint", "real", "double precision"]
                    .contains(&t.as_str())
                    || t.starts_with("numeric")
                {
                    Holds::Number
                } else {
                    Holds::Other
                }
            }
            _ => match t.as_str() {
                "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "decimal"
                | "numeric" | "float" | "double" | "real" => Holds::Number,
                "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" => Holds::Text,
                "datetime" | "timestamp" => Holds::Timestamp,
                _ => Holds::Other,
            },
        }
    }

    /// Whether a column of this kind on `backend` holds instants in `format`.
    fn holds(self, backend: Backend, format: TimeFormat) -> bool {
        use TimeFormat::*;
        match (self, format) {
            (Holds::Anything, _) => true,
            (Holds::Number, EpochSeconds | EpochMillis) => true,
            (Holds::Text, Iso8601Text) => true,
            // SQLite has no timestamp type: the driver binds chrono values as text, which
            // compare as strings with text written the same way.
            (Holds::Text, Timestamp | TimestampTz) => backend == Backend::Sqlite,
            (Holds::Timestamp, Timestamp) | (Holds::TimestampTz, TimestampTz) => true,
            // MySQL binds a UTC `DateTime` as a plain date and time.
            (Holds::Timestamp, TimestampTz) => backend == Backend::MySql,
            _ => false,
        }
    }

    /// The advice of a [`SchemaError::WrongType`]: the formats this kind of column holds.
    fn fix(self) -> String {
        let set = |formats: &str| {
            format!(
                "set time_format = {formats} in this cleanup's configuration section, or point `expires_column` / `created_column` at the right column"
            )
        };
        match self {
            Holds::Number => set("\"epoch_seconds\" (or \"epoch_millis\")"),
            Holds::Text => set("\"iso8601_text\" (RFC 3339 text in UTC)"),
            Holds::Timestamp => set("\"timestamp\""),
            Holds::TimestampTz => set("\"timestamp_tz\""),
            Holds::Anything | Holds::Other => {
                "no time_format reads this type; use a column of epoch seconds, RFC 3339 text or a native timestamp".into()
            }
        }
    }
}

/// Check `columns` against `db`'s catalogue: every table exists, every column exists, every
/// time column's type holds its format. One catalogue query per table. `Ok(Some(_))` is the
/// first problem found; `Err` a failure to read the catalogue.
pub(crate) async fn check_columns(
    db: &Database,
    columns: &[CheckedColumn],
) -> Result<Option<SchemaError>, JobError> {
    let backend = db.backend();
    let mut tables: Vec<&Identifier> = Vec::new();
    for c in columns {
        if !tables.contains(&&c.table) {
            tables.push(&c.table);
        }
    }
    for table in tables {
        let mut catalogue = Vec::new();
        for row in db.fetch_all(&backend.table_columns(table)).await? {
            let name = row.opt_string("column_name")?.unwrap_or_default();
            let declared = row.opt_string("data_type")?.unwrap_or_default();
            catalogue.push((name, declared));
        }
        if catalogue.is_empty() {
            return Ok(Some(SchemaError::MissingTable {
                table: table.to_string(),
            }));
        }
        for c in columns.iter().filter(|c| &c.table == table) {
            // Unquoted names are case-insensitive on SQLite and MySQL; ours are quoted, but a
            // host's migration may have created `Expires_At`. PostgreSQL folds nothing inside
            // quotes, and two columns differing only in case would be the host's own puzzle.
            let Some((_, declared)) = catalogue
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(c.column.as_str()))
            else {
                return Ok(Some(SchemaError::MissingColumn {
                    table: table.to_string(),
                    column: c.column.to_string(),
                    setting: c.setting,
                }));
            };
            if let Some(format) = c.format {
                let holds = Holds::of(backend, declared);
                if !holds.holds(backend, format) {
                    return Ok(Some(SchemaError::WrongType {
                        table: table.to_string(),
                        column: c.column.to_string(),
                        column_type: if declared.is_empty() {
                            "untyped".into()
                        } else {
                            declared.clone()
                        },
                        format: format.name(),
                        fix: holds.fix(),
                    }));
                }
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_types_are_classified_per_backend() {
        use Backend::{MySql, Postgres, Sqlite};
        for (backend, declared, holds) in [
            (Sqlite, "INTEGER", Holds::Number),
            (Sqlite, "bigint", Holds::Number),
            (Sqlite, "TEXT", Holds::Text),
            (Sqlite, "varchar(255)", Holds::Text),
            (Sqlite, "", Holds::Anything),
            (Sqlite, "DATETIME", Holds::Anything),
            (Sqlite, "BLOB", Holds::Other),
            (Sqlite, "DOUBLE", Holds::Number),
            (Postgres, "bigint", Holds::Number),
            (Postgres, "numeric(20,0)", Holds::Number),
            (Postgres, "text", Holds::Text),
            (Postgres, "character varying(255)", Holds::Text),
            (Postgres, "timestamp without time zone", Holds::Timestamp),
            (Postgres, "timestamp(3) with time zone", Holds::TimestampTz),
            (Postgres, "date", Holds::Other),
            (MySql, "bigint", Holds::Number),
            (MySql, "varchar", Holds::Text),
            (MySql, "longtext", Holds::Text),
            (MySql, "datetime", Holds::Timestamp),
            (MySql, "json", Holds::Other),
        ] {
            assert_eq!(
                Holds::of(backend, declared),
                holds,
                "{backend:?} {declared}"
            );
        }
    }

    #[test]
    fn text_holds_only_iso8601_outside_sqlite() {
        use TimeFormat::*;
        assert!(Holds::Text.holds(Backend::Postgres, Iso8601Text));
        assert!(!Holds::Text.holds(Backend::Postgres, EpochSeconds));
        assert!(!Holds::Text.holds(Backend::MySql, Timestamp));
        assert!(Holds::Text.holds(Backend::Sqlite, TimestampTz));
        assert!(!Holds::Text.holds(Backend::Sqlite, EpochSeconds));
        assert!(!Holds::Number.holds(Backend::Sqlite, Iso8601Text));
        assert!(!Holds::Timestamp.holds(Backend::Postgres, TimestampTz));
        assert!(Holds::Timestamp.holds(Backend::MySql, TimestampTz));
    }
}

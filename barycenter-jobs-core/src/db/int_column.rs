//! Reading an integer column at whatever width its table declares: the part of the [`Row`]
//! impls that all three drivers share, as a generic type rather than a macro, so that each
//! backend's `impl Row` stays written out in its own module.
//!
//! [`Row`]: super::backend::Row

use std::fmt::Display;

use sqlx::{ColumnIndex, Decode, Type};

use crate::error::{Error, Result};

/// One integer column of a row being read: try the backend's integer types in turn with
/// [`width`](Self::width), widest first, and end with [`or_bool`](Self::or_bool).
///
/// ```text
/// IntColumn::new(row, "success").width::<i64>().width::<i32>().or_bool()
/// ```
///
/// The first type that decodes gives the value, and the widths after it are not tried; a
/// type mismatch moves on to the next, any other error (no such column) is the answer.
pub(crate) struct IntColumn<'r, R, I> {
    row: &'r R,
    col: I,
    /// The answer, once a width decoded or failed other than by a type mismatch.
    read: Option<Result<Option<i64>>>,
    /// The first type mismatch: the error reported when no width fits, because it names the
    /// widest type, the one the crate's own tables use.
    mismatch: Option<sqlx::Error>,
}

impl<'r, R, I> IntColumn<'r, R, I>
where
    R: sqlx::Row,
    I: ColumnIndex<R> + Copy + Display,
{
    /// Column `col` of `row`, nothing tried yet.
    pub(crate) fn new(row: &'r R, col: I) -> Self {
        Self {
            row,
            col,
            read: None,
            mismatch: None,
        }
    }

    /// Try the column as a `T`, unless an earlier width already answered.
    pub(crate) fn width<T>(mut self) -> Self
    where
        T: Decode<'r, R::Database> + Type<R::Database> + Copy + Display,
        i64: TryFrom<T>,
    {
        if self.read.is_some() {
            return self;
        }
        match self.row.try_get::<Option<T>, I>(self.col) {
            Ok(value) => self.read = Some(value.map(|v| widen(v, self.col)).transpose()),
            Err(e @ sqlx::Error::ColumnDecode { .. }) => {
                self.mismatch.get_or_insert(e);
            }
            Err(e) => self.read = Some(Err(e.into())),
        }
        self
    }

    /// The answer of the widths tried, else the column as a boolean (0 or 1), else the first
    /// type mismatch.
    pub(crate) fn or_bool(self) -> Result<Option<i64>>
    where
        bool: Decode<'r, R::Database> + Type<R::Database>,
    {
        if let Some(read) = self.read {
            return read;
        }
        match self.row.try_get::<Option<bool>, I>(self.col) {
            Ok(value) => Ok(value.map(i64::from)),
            Err(e) => Err(self.mismatch.unwrap_or(e).into()),
        }
    }
}

/// `value` as an i64, checked: an unsigned value past `i64::MAX` (MySQL `BIGINT UNSIGNED`)
/// is a decode error, never a silent wrap to a negative number.
fn widen<T: Copy + Display>(value: T, col: impl Display) -> Result<i64>
where
    i64: TryFrom<T>,
{
    i64::try_from(value).map_err(|_| {
        Error::Database(sqlx::Error::Decode(
            format!("column {col}: {value} does not fit a 64-bit signed integer").into(),
        ))
    })
}

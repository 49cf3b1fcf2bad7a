//! The sea-query statements the database handle accepts, sealed: each is wrapped in the
//! variant of its kind, which the dialects match on to render it. A new statement type is
//! a variant here plus its impl, and the compiler then asks every dialect to render it.

use sea_query::{
    DeleteStatement, IndexCreateStatement, IndexDropStatement, InsertStatement, SelectStatement,
    TableAlterStatement, TableCreateStatement, TableDropStatement, UpdateStatement,
};

/// Only this module's types are statements.
pub trait Sealed {}

/// A query statement the database handle runs: SELECT, INSERT, UPDATE or DELETE built with
/// sea-query. Sealed.
pub trait Statement: Sealed {
    #[doc(hidden)]
    fn as_query(&self) -> QueryStmt<'_>;
}

/// A schema statement the database handle runs (CREATE / ALTER / DROP TABLE, CREATE / DROP
/// INDEX). Sealed.
pub trait SchemaStatement: Sealed {
    #[doc(hidden)]
    fn as_schema(&self) -> SchemaStmt<'_>;
}

/// A query statement, by kind, for the dialects to render.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub enum QueryStmt<'a> {
    Select(&'a SelectStatement),
    Insert(&'a InsertStatement),
    Update(&'a UpdateStatement),
    Delete(&'a DeleteStatement),
}

/// A schema statement, by kind, for the dialects to render.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub enum SchemaStmt<'a> {
    TableCreate(&'a TableCreateStatement),
    TableAlter(&'a TableAlterStatement),
    TableDrop(&'a TableDropStatement),
    IndexCreate(&'a IndexCreateStatement),
    IndexDrop(&'a IndexDropStatement),
}

impl Sealed for SelectStatement {}
impl Statement for SelectStatement {
    fn as_query(&self) -> QueryStmt<'_> {
        QueryStmt::Select(self)
    }
}

impl Sealed for InsertStatement {}
impl Statement for InsertStatement {
    fn as_query(&self) -> QueryStmt<'_> {
        QueryStmt::Insert(self)
    }
}

impl Sealed for UpdateStatement {}
impl Statement for UpdateStatement {
    fn as_query(&self) -> QueryStmt<'_> {
        QueryStmt::Update(self)
    }
}

impl Sealed for DeleteStatement {}
impl Statement for DeleteStatement {
    fn as_query(&self) -> QueryStmt<'_> {
        QueryStmt::Delete(self)
    }
}

impl Sealed for TableCreateStatement {}
impl SchemaStatement for TableCreateStatement {
    fn as_schema(&self) -> SchemaStmt<'_> {
        SchemaStmt::TableCreate(self)
    }
}

impl Sealed for TableAlterStatement {}
impl SchemaStatement for TableAlterStatement {
    fn as_schema(&self) -> SchemaStmt<'_> {
        SchemaStmt::TableAlter(self)
    }
}

impl Sealed for TableDropStatement {}
impl SchemaStatement for TableDropStatement {
    fn as_schema(&self) -> SchemaStmt<'_> {
        SchemaStmt::TableDrop(self)
    }
}

impl Sealed for IndexCreateStatement {}
impl SchemaStatement for IndexCreateStatement {
    fn as_schema(&self) -> SchemaStmt<'_> {
        SchemaStmt::IndexCreate(self)
    }
}

impl Sealed for IndexDropStatement {}
impl SchemaStatement for IndexDropStatement {
    fn as_schema(&self) -> SchemaStmt<'_> {
        SchemaStmt::IndexDrop(self)
    }
}

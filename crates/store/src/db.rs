//! What the SQL engine needs of a sqlx database, stated once.
//!
//! sqlx's generic API asks every generic function for a long list of bounds (that a
//! connection is an executor, that arguments convert, that each Rust type encodes and
//! decodes), and Rust does not carry such bounds from a trait to its users. So they are
//! written once here, on the blanket implementation of [`SqlDb`], whose methods do the
//! generic work; the engine, the decoders and the dialects only ever say `DB: SqlDb`.
//! SQLite and PostgreSQL both satisfy it, with the same Rust types for the same columns
//! (TEXT, BIGINT, BLOB/BYTEA).

use std::future::Future;
use std::pin::Pin;

use psp_core::ports::StoreError;
use sqlx::query::Query;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Row, Type};

/// A statement of database `DB` with its arguments.
pub(crate) type Statement<'q, DB> = Query<'q, DB, <DB as Database>::Arguments<'q>>;

/// A statement running on a connection: sqlx's own boxed future, passed on as it is. (A
/// future type that depends on the statement's lifetimes would have to be proven `Send`
/// wherever a concrete store is awaited, which rustc cannot yet do for such lifetimes:
/// rust-lang/rust#100013.)
pub(crate) type Pending<'e, T> = Pin<Box<dyn Future<Output = Result<T, sqlx::Error>> + Send + 'e>>;

/// Maps a database error to the store's error.
pub(crate) fn db(err: sqlx::Error) -> StoreError {
    StoreError::Backend(err.to_string())
}

/// A value bound to a statement: the store binds only integers and (nullable) text.
#[derive(Debug)]
pub enum Arg<'q> {
    /// A BIGINT.
    Int(i64),
    /// A borrowed TEXT, or NULL.
    Text(Option<&'q str>),
    /// An owned TEXT, or NULL.
    Owned(Option<String>),
}

impl From<i64> for Arg<'_> {
    fn from(value: i64) -> Self {
        Arg::Int(value)
    }
}

impl<'q> From<&'q str> for Arg<'q> {
    fn from(value: &'q str) -> Self {
        Arg::Text(Some(value))
    }
}

impl<'q> From<&'q String> for Arg<'q> {
    fn from(value: &'q String) -> Self {
        Arg::Text(Some(value))
    }
}

impl<'q> From<Option<&'q str>> for Arg<'q> {
    fn from(value: Option<&'q str>) -> Self {
        Arg::Text(value)
    }
}

impl From<String> for Arg<'_> {
    fn from(value: String) -> Self {
        Arg::Owned(Some(value))
    }
}

impl From<Option<String>> for Arg<'_> {
    fn from(value: Option<String>) -> Self {
        Arg::Owned(value)
    }
}

/// How many rows a statement changed. sqlx gives each database's result its own inherent
/// method, so each dialect implements this for its result type.
pub trait RowsAffected {
    /// The number of rows the statement inserted, updated or deleted.
    fn rows_affected(&self) -> u64;
}

/// A sqlx database the engine can run on: it binds [`Arg`]s, runs statements on a
/// connection and reads the column types the store uses. Implemented for every database
/// that meets the bounds below, which SQLite and PostgreSQL do.
pub trait SqlDb: Database {
    /// Binds one argument.
    fn bind<'q>(statement: Statement<'q, Self>, arg: Arg<'q>) -> Statement<'q, Self>;

    /// Runs a statement.
    fn execute<'e, 'q: 'e>(
        conn: &'e mut Self::Connection,
        statement: Statement<'q, Self>,
    ) -> Pending<'e, Self::QueryResult>;

    /// How many rows a statement changed.
    fn rows_affected(result: &Self::QueryResult) -> u64;

    /// Runs a query; every row.
    fn fetch_all<'e, 'q: 'e>(
        conn: &'e mut Self::Connection,
        statement: Statement<'q, Self>,
    ) -> Pending<'e, Vec<Self::Row>>;

    /// Runs a query; its first row, if any.
    fn fetch_optional<'e, 'q: 'e>(
        conn: &'e mut Self::Connection,
        statement: Statement<'q, Self>,
    ) -> Pending<'e, Option<Self::Row>>;

    /// A BIGINT column (or NULL).
    fn int(row: &Self::Row, column: &str) -> Result<Option<i64>, sqlx::Error>;

    /// A TEXT column (or NULL).
    fn text(row: &Self::Row, column: &str) -> Result<Option<String>, sqlx::Error>;

    /// A BLOB (SQLite) or BYTEA (PostgreSQL) column.
    fn bytes(row: &Self::Row, column: &str) -> Result<Vec<u8>, sqlx::Error>;
}

impl<DB> SqlDb for DB
where
    DB: Database,
    DB::QueryResult: RowsAffected,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'a> &'a str: ColumnIndex<DB::Row> + Type<DB>,
    for<'a> Option<&'a str>: Encode<'a, DB>,
    i64: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
    String: Type<DB> + for<'r> Decode<'r, DB>,
    Option<String>: for<'q> Encode<'q, DB>,
    Vec<u8>: Type<DB> + for<'r> Decode<'r, DB>,
{
    fn bind<'q>(statement: Statement<'q, Self>, arg: Arg<'q>) -> Statement<'q, Self> {
        match arg {
            Arg::Int(value) => statement.bind(value),
            Arg::Text(value) => statement.bind(value),
            Arg::Owned(value) => statement.bind(value),
        }
    }

    fn execute<'e, 'q: 'e>(
        conn: &'e mut Self::Connection,
        statement: Statement<'q, Self>,
    ) -> Pending<'e, Self::QueryResult> {
        conn.execute(statement)
    }

    fn rows_affected(result: &Self::QueryResult) -> u64 {
        result.rows_affected()
    }

    fn fetch_all<'e, 'q: 'e>(
        conn: &'e mut Self::Connection,
        statement: Statement<'q, Self>,
    ) -> Pending<'e, Vec<Self::Row>> {
        conn.fetch_all(statement)
    }

    fn fetch_optional<'e, 'q: 'e>(
        conn: &'e mut Self::Connection,
        statement: Statement<'q, Self>,
    ) -> Pending<'e, Option<Self::Row>> {
        conn.fetch_optional(statement)
    }

    fn int(row: &Self::Row, column: &str) -> Result<Option<i64>, sqlx::Error> {
        row.try_get(column)
    }

    fn text(row: &Self::Row, column: &str) -> Result<Option<String>, sqlx::Error> {
        row.try_get(column)
    }

    fn bytes(row: &Self::Row, column: &str) -> Result<Vec<u8>, sqlx::Error> {
        row.try_get(column)
    }
}

/// Binding an [`Arg`] in place, so that statements read as with sqlx's own `bind`.
pub(crate) trait Bind<'q>: Sized {
    /// Binds the next placeholder.
    fn arg(self, value: impl Into<Arg<'q>>) -> Self;
}

impl<'q, DB: SqlDb> Bind<'q> for Statement<'q, DB> {
    fn arg(self, value: impl Into<Arg<'q>>) -> Self {
        DB::bind(self, value.into())
    }
}

/// A Rust type read from a column.
pub(crate) trait Column: Sized {
    /// Reads column `name` of `row`.
    fn read<DB: SqlDb>(row: &DB::Row, name: &str) -> Result<Self, sqlx::Error>;
}

/// A NOT NULL column read as a plain value: NULL there is a decoding error, as sqlx reports
/// it for a non-`Option` type.
fn required<T>(name: &str, value: Option<T>) -> Result<T, sqlx::Error> {
    value.ok_or_else(|| sqlx::Error::ColumnDecode {
        index: name.to_string(),
        source: "unexpected NULL".into(),
    })
}

impl Column for i64 {
    fn read<DB: SqlDb>(row: &DB::Row, name: &str) -> Result<Self, sqlx::Error> {
        required(name, DB::int(row, name)?)
    }
}

impl Column for Option<i64> {
    fn read<DB: SqlDb>(row: &DB::Row, name: &str) -> Result<Self, sqlx::Error> {
        DB::int(row, name)
    }
}

impl Column for String {
    fn read<DB: SqlDb>(row: &DB::Row, name: &str) -> Result<Self, sqlx::Error> {
        required(name, DB::text(row, name)?)
    }
}

impl Column for Option<String> {
    fn read<DB: SqlDb>(row: &DB::Row, name: &str) -> Result<Self, sqlx::Error> {
        DB::text(row, name)
    }
}

impl Column for Vec<u8> {
    fn read<DB: SqlDb>(row: &DB::Row, name: &str) -> Result<Self, sqlx::Error> {
        DB::bytes(row, name)
    }
}

/// A row of a [`SqlDb`], read column by column by name.
pub(crate) trait SqlRow: Row {
    /// Column `name`, as a `T`.
    fn col<T: Column>(&self, name: &str) -> Result<T, StoreError>;
}

impl<R> SqlRow for R
where
    R: Row,
    R::Database: SqlDb<Row = R>,
{
    fn col<T: Column>(&self, name: &str) -> Result<T, StoreError> {
        T::read::<R::Database>(self, name).map_err(db)
    }
}

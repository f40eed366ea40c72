//! The SQL text of both backends, one module per table.
//!
//! Architecture invariant: every statement here is portable SQL (`$n` placeholders,
//! `INSERT … ON CONFLICT`, `RETURNING`, `CASE`, `CAST`, no database-only functions) that
//! SQLite and PostgreSQL both run as written. What differs between the two (how a write
//! transaction begins, row locks, `SKIP LOCKED`, the batched webhook insert, column types)
//! is kept outside them: in the migrations and in `postgres::sql`.

pub(crate) mod cart_claims;
pub(crate) mod completions;
pub(crate) mod job_history;
pub(crate) mod jobs;
pub(crate) mod sessions;
pub(crate) mod webhook_inbox;

/// Appends `$first, $first+1, …` (`count` placeholders) to `sql`, for an `IN (…)` list
/// whose length is only known at run time.
pub(crate) fn push_placeholders(sql: &mut String, first: usize, count: usize) {
    for i in 0..count {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push('$');
        sql.push_str(&(first + i).to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::push_placeholders;

    #[test]
    fn placeholders_are_numbered_from_the_first() {
        let mut sql = String::from("IN (");
        push_placeholders(&mut sql, 3, 3);
        sql.push(')');
        assert_eq!(sql, "IN ($3, $4, $5)");
    }
}

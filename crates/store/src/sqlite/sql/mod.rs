//! The SQL text of the SQLite backend, one module per table.
//!
//! Architecture invariant: every statement here is portable SQL (`$n` placeholders,
//! `INSERT … ON CONFLICT`, `RETURNING`, `CASE`, no SQLite-only functions), so that the
//! PostgreSQL backend can mirror these modules file by file. What differs between the two
//! (how a write transaction begins, the column type of raw bodies) is kept outside them.

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

//! Completion records, their history, and cart claims.

use async_trait::async_trait;
use psp_core::ports::rules::{self, CompletionChange, CompletionFields};
use psp_core::ports::{
    CartClaim, Completion, CompletionState, CompletionTransition, CompletionUpdate, Completions,
    StoreError,
};
use sqlx::Database;
use uuid::Uuid;

use super::{execute, fetch_optional, SqlStore};
use crate::clock::now_ms;
use crate::db::{db, Bind};
use crate::decode;
use crate::dialect::Dialect;
use crate::sql::{cart_claims, completions};

impl<D: Dialect> SqlStore<D> {
    /// The completion record of `update`, locked for the rest of `tx`, creating it first
    /// when it does not exist. `Ok(None)` means this call created it (with `created`).
    async fn lock_completion(
        &self,
        tx: &mut <D::Db as Database>::Connection,
        update: &CompletionUpdate,
        created: &CompletionFields,
        now: i64,
    ) -> Result<Option<Completion>, StoreError> {
        let get = || {
            Self::query(&self.locked.completion)
                .arg(&update.provider)
                .arg(&update.psp_ref)
        };
        if let Some(row) = fetch_optional(&mut *tx, get()).await? {
            return decode::completion(&row).map(Some);
        }
        let insert = Self::query(completions::INSERT)
            .arg(&update.provider)
            .arg(&update.psp_ref)
            .arg(update.cart_id.to_string())
            .arg(created.state.as_str())
            .arg(created.payment_id.map(|p| p.to_string()))
            .arg(created.reason.as_deref())
            .arg(now);
        if execute(&mut *tx, insert).await? > 0 {
            return Ok(None);
        }
        // A concurrent transaction created it between our read and our insert, and has
        // committed (the insert waited for it): read it, locked, and apply the rules to it.
        // (With SQLite's write lock held from the start, this cannot happen.)
        let row = fetch_optional(&mut *tx, get()).await?.ok_or_else(|| {
            StoreError::NotFound(format!("completion {} {}", update.provider, update.psp_ref))
        })?;
        decode::completion(&row).map(Some)
    }
}

#[async_trait]
impl<D: Dialect> Completions for SqlStore<D> {
    async fn completion(
        &self,
        provider: &str,
        psp_ref: &str,
    ) -> Result<Option<Completion>, StoreError> {
        self.fetch_optional(Self::query(completions::GET).arg(provider).arg(psp_ref))
            .await?
            .map(|row| decode::completion(&row))
            .transpose()
    }

    async fn advance_completion(&self, update: CompletionUpdate) -> Result<Completion, StoreError> {
        let now = now_ms();
        // The record is read locked (created first if absent) in a write transaction, so
        // two connections, processes or replicas advancing it run one after the other, each
        // seeing what the other committed: the state never moves backwards and the first
        // final state wins, as the rules say.
        let created = rules::completion_created(&update);
        let mut tx = self.begin_write().await?;
        let Some(stored) = self
            .lock_completion(&mut *tx, &update, &created, now)
            .await?
        else {
            let history = Self::query(completions::HISTORY_APPEND)
                .arg(&update.provider)
                .arg(&update.psp_ref)
                .arg(created.state.as_str())
                .arg(update.reason.as_deref())
                .arg(now);
            execute(&mut *tx, history).await?;
            tx.commit().await.map_err(db)?;
            return Ok(Completion {
                provider: update.provider,
                psp_ref: update.psp_ref,
                cart_id: update.cart_id,
                state: created.state,
                payment_id: created.payment_id,
                reason: created.reason,
                updated_at_ms: now,
            });
        };
        let fields = CompletionFields {
            state: stored.state,
            payment_id: stored.payment_id,
            reason: stored.reason.clone(),
        };
        let (fields, state_changed) = match rules::advance_completion(Some(&fields), &update) {
            CompletionChange::Keep => {
                // Nothing to write. Rolled back here rather than on drop, for the same
                // reason as in `schedule_sync`.
                tx.rollback().await.map_err(db)?;
                return Ok(stored);
            }
            CompletionChange::Write {
                fields,
                state_changed,
            } => (fields, state_changed),
        };
        let write = Self::query(completions::UPDATE)
            .arg(&update.provider)
            .arg(&update.psp_ref)
            .arg(fields.state.as_str())
            .arg(fields.payment_id.map(|p| p.to_string()))
            .arg(fields.reason.as_deref())
            .arg(now);
        execute(&mut *tx, write).await?;
        if state_changed {
            let history = Self::query(completions::HISTORY_APPEND)
                .arg(&update.provider)
                .arg(&update.psp_ref)
                .arg(fields.state.as_str())
                .arg(update.reason.as_deref())
                .arg(now);
            execute(&mut *tx, history).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(Completion {
            cart_id: stored.cart_id,
            provider: update.provider,
            psp_ref: update.psp_ref,
            state: fields.state,
            payment_id: fields.payment_id,
            reason: fields.reason,
            updated_at_ms: now,
        })
    }

    async fn completions_in(
        &self,
        states: &[CompletionState],
        limit: u32,
    ) -> Result<Vec<Completion>, StoreError> {
        if states.is_empty() {
            return Ok(Vec::new());
        }
        let sql = completions::in_states(states.len());
        let mut statement = Self::query(&sql);
        for state in states {
            statement = statement.arg(state.as_str());
        }
        self.fetch_all(statement.arg(i64::from(limit)))
            .await?
            .iter()
            .map(decode::completion)
            .collect()
    }

    async fn completion_history(
        &self,
        provider: &str,
        psp_ref: &str,
    ) -> Result<Vec<CompletionTransition>, StoreError> {
        self.fetch_all(Self::query(completions::HISTORY).arg(provider).arg(psp_ref))
            .await?
            .iter()
            .map(decode::transition)
            .collect()
    }

    async fn cart_claim(&self, cart_id: Uuid) -> Result<Option<CartClaim>, StoreError> {
        self.fetch_optional(Self::query(cart_claims::GET).arg(cart_id.to_string()))
            .await?
            .map(|row| decode::claim(&row))
            .transpose()
    }

    async fn claim_cart(
        &self,
        cart_id: Uuid,
        provider: &str,
        psp_ref: &str,
    ) -> Result<CartClaim, StoreError> {
        self.execute(
            Self::query(cart_claims::INSERT)
                .arg(cart_id.to_string())
                .arg(provider)
                .arg(psp_ref)
                .arg(now_ms()),
        )
        .await?;
        // Claims are never changed or deleted, so whoever holds it now holds it for good.
        self.cart_claim(cart_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("claim of cart {cart_id}")))
    }
}

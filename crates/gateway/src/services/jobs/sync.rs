//! The `sync` job: bring an open PSP session in step with its cart after `OnCartMutation`.
//!
//! The hook stores the latest payload on the session row and makes sure one sync job is
//! waiting (see `Store::schedule_sync`); the job reads the latest payload when it runs, so a
//! burst of mutations reaches the PSP as one update, the newest. After the PSP accepted it,
//! its hash is stored as synced, and the cart's `<provider>SyncHash` field is set;
//! `<provider>PendingHash` is set before the PSP is called, so a storefront can tell that a
//! sync is in flight (`PendingHash != SyncHash`).
//!
//! A session that is authorized or completed is never changed: a changed cart is recorded
//! on the session for a person instead.

use std::time::Duration;

use psp_core::ports::{PendingSync, Session, SessionStatus, SessionSync, SyncScheduled};
use psp_core::{Provider, ProviderError, RenderedCart, SyncRequest};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{Attempt, JobCtx};
use crate::services::Services;

/// The payload of a sync job. The payload to send is not in it (it is read from the session
/// when the job runs); what is in it is the idempotency key of the PSP update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncPayload {
    /// The provider id.
    pub(crate) provider: String,
    /// The cart.
    pub(crate) cart_id: Uuid,
    /// The key of the last PSP update attempted, fixed before it was sent.
    #[serde(default)]
    pub(crate) key: Option<String>,
    /// The payload hash that key was used for.
    #[serde(default)]
    pub(crate) key_hash: Option<String>,
    /// How many keys this job has made.
    #[serde(default)]
    pub(crate) keys: u32,
}

/// How long a sync waits for a checkout that is creating the PSP session: longer than a
/// checkout request may take.
const CREATING_PATIENCE_MS: i64 = 120_000;

/// The cart field holding the hash a sync is sending, e.g. `kustomPendingHash`. The
/// `field:` prefix is what makes a dynamic field appear under the rendered cart's `fields`,
/// where a storefront reads it.
pub(crate) fn pending_field(provider: &str) -> String {
    format!("field:{provider}PendingHash")
}

/// The cart field holding the hash the PSP holds, e.g. `kustomSyncHash`.
pub(crate) fn synced_field(provider: &str) -> String {
    format!("field:{provider}SyncHash")
}

/// What a cart mutation did for one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionOutcome {
    /// The session's provider.
    pub provider: String,
    /// `scheduled`, `coalesced`, `unchanged`, `needs_attention` or `ignored`.
    pub outcome: &'static str,
    /// The sync job that sends the change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<i64>,
    /// Why nothing is sent, or why a person must look.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Why a session's payment and the cart no longer agree, if they do not.
fn drift(
    session: &Session,
    sync: Option<&SessionSync>,
    cart: &RenderedCart,
    hash: &str,
) -> Option<String> {
    let total = match cart.total() {
        Ok(t) => t,
        Err(e) => return Some(format!("the cart total cannot be paid: {e}")),
    };
    let paid = session.amount_minor.zip(session.currency.as_deref());
    if paid != Some((total.minor, total.currency.code())) {
        return Some(format!(
            "the cart changed after its {} payment was authorized: the cart total is now {total}, the payment is for {} {}",
            session.provider,
            session.amount_minor.map_or("?".to_string(), |m| m.to_string()),
            session.currency.as_deref().unwrap_or("?"),
        ));
    }
    let synced = sync.and_then(|s| s.synced_hash.as_deref());
    if synced.is_some_and(|s| s != hash) {
        return Some(format!(
            "the cart changed after its {} payment was authorized (same total, other content)",
            session.provider
        ));
    }
    None
}

/// Handles `OnCartMutation` for every session of the cart: schedules syncs for open ones,
/// records a changed cart on authorized ones. Called by the hook endpoint.
pub async fn on_mutation(
    services: &Services,
    cart: &RenderedCart,
    cart_json: &serde_json::Value,
) -> Result<Vec<SessionOutcome>, psp_core::ports::StoreError> {
    let mut outcomes = Vec::new();
    for session in services.store.sessions_of_cart(cart.cart_id).await? {
        let outcome =
            |outcome: &'static str, job_id: Option<i64>, reason: Option<String>| SessionOutcome {
                provider: session.provider.clone(),
                outcome,
                job_id,
                reason,
            };
        let Some(provider) = services.registry.get(&session.provider).cloned() else {
            outcomes.push(outcome(
                "ignored",
                None,
                Some("provider not enabled".into()),
            ));
            continue;
        };
        let payload = match provider.sync_payload(cart) {
            Ok(p) => p,
            Err(e) => {
                outcomes.push(outcome("ignored", None, Some(e.to_string())));
                continue;
            }
        };
        let hash = payload_hash(&payload);
        match session.status {
            SessionStatus::Failed | SessionStatus::Canceled => {
                outcomes.push(outcome(
                    "ignored",
                    None,
                    Some("the session has ended".into()),
                ));
            }
            SessionStatus::Authorized | SessionStatus::Completed => {
                let sync = services
                    .store
                    .session_sync(cart.cart_id, provider.id())
                    .await?;
                match drift(&session, sync.as_ref(), cart, &hash) {
                    Some(reason) => {
                        tracing::warn!(provider = provider.id(), cart_id = %cart.cart_id, %reason, "cart changed after authorization");
                        services
                            .store
                            .flag_session(cart.cart_id, provider.id(), &reason)
                            .await?;
                        outcomes.push(outcome("needs_attention", None, Some(reason)));
                    }
                    None => outcomes.push(outcome("unchanged", None, None)),
                }
            }
            SessionStatus::Creating | SessionStatus::Open => {
                if !provider.capabilities().update_amount {
                    outcomes.push(outcome(
                        "ignored",
                        None,
                        Some("the provider cannot update a session".into()),
                    ));
                    continue;
                }
                let pending = PendingSync {
                    cart_id: cart.cart_id,
                    provider: provider.id().to_string(),
                    hash,
                    payload,
                    cart: cart_json.clone(),
                };
                let delay = Duration::from_millis(services.worker.sync_delay_ms);
                let pending_hash = pending.hash.clone();
                let scheduled = services.jobs.schedule_sync(pending, delay).await?;
                if matches!(
                    scheduled,
                    SyncScheduled::Scheduled(_) | SyncScheduled::Coalesced(_)
                ) {
                    // The storefront learns at once that a sync is coming (it suspends the
                    // PSP's widget while the pending and synced hashes differ), as Hantera's
                    // own Kustom app does in the mutation. The job sets it again, so a
                    // failure here only delays that signal.
                    let mut fields = serde_json::Map::new();
                    fields.insert(pending_field(provider.id()), pending_hash.into());
                    if let Err(e) = services
                        .hantera
                        .set_cart_fields(cart.cart_id, &fields)
                        .await
                    {
                        tracing::warn!(cart_id = %cart.cart_id, error = %e, "setting the pending sync hash failed");
                    }
                }
                outcomes.push(match scheduled {
                    SyncScheduled::NoSession => outcome("ignored", None, None),
                    SyncScheduled::Unchanged => outcome("unchanged", None, None),
                    SyncScheduled::Coalesced(id) => outcome("coalesced", Some(id), None),
                    SyncScheduled::Scheduled(id) => outcome("scheduled", Some(id), None),
                });
            }
        }
    }
    Ok(outcomes)
}

pub(crate) async fn run(ctx: &JobCtx<'_>, mut p: SyncPayload) -> Attempt {
    let Some(provider) = ctx.services.provider(&p.provider) else {
        return Attempt::Fail(format!("provider {:?} is not enabled", p.provider));
    };
    let store = &ctx.services.store;
    let (session, sync) = match (
        store.session(p.cart_id, provider.id()).await,
        store.session_sync(p.cart_id, provider.id()).await,
    ) {
        (Ok(Some(session)), Ok(Some(sync))) => (session, sync),
        (Ok(_), Ok(_)) => return Attempt::Done,
        (Err(e), _) | (_, Err(e)) => return Attempt::Retry(e.to_string()),
    };
    if sync.pending_hash.is_none() {
        return Attempt::Done;
    }
    // Hooks can arrive out of order, so the cart in the newest hook is not necessarily the
    // newest cart. The job syncs what Hantera holds now, read at the last moment.
    let cart = match ctx.services.hantera.get_cart(p.cart_id).await {
        Ok(Some(cart)) => cart,
        Ok(None) => return Attempt::Done,
        Err(e) if e.is_transient() => {
            ctx.services.metrics.upstream_error("hantera");
            return Attempt::Retry(format!("reading the cart: {e}"));
        }
        Err(e) => return Attempt::Fail(format!("reading the cart: {e}")),
    };
    match cart.cart_state {
        psp_core::CartState::Open => {}
        // A completed cart has nothing left to sync, but it may have been completed with a
        // total its payment does not cover (a change that raced the completion): that must
        // not end here unseen.
        psp_core::CartState::Completed => {
            return audit_completed(ctx, provider.as_ref(), &session, &cart).await
        }
        psp_core::CartState::Rejected => return Attempt::Done,
    }
    let payload = match provider.sync_payload(&cart) {
        Ok(payload) => payload,
        Err(e) => return Attempt::Fail(format!("the cart cannot be synced: {e}")),
    };
    let hash = payload_hash(&payload);
    if sync.synced_hash.as_deref() == Some(hash.as_str()) {
        // A newer job, or checkout, sent it already, or the cart changed back to what the
        // PSP holds. The pending field may still name a hash that will never be sent, which
        // would keep a storefront's widget suspended, so it is set to the synced one.
        if let Err(stop) = set_field(ctx, &cart, &pending_field(provider.id()), &hash).await {
            return stop;
        }
        return Attempt::Done;
    }
    match session.status {
        SessionStatus::Failed | SessionStatus::Canceled => return Attempt::Done,
        SessionStatus::Authorized | SessionStatus::Completed => {
            if let Some(reason) = drift(&session, Some(&sync), &cart, &hash) {
                return flag(ctx, &session, reason).await;
            }
            return Attempt::Done;
        }
        SessionStatus::Creating | SessionStatus::Open => {}
    }
    let Some(psp_ref) = session.psp_ref.clone() else {
        // The checkout that creates the PSP session compares what it sent with the latest
        // payload when it finishes, and schedules a sync if they differ; waiting here only
        // covers a checkout that crashed in between. A session still creating after that
        // long has no checkout behind it any more.
        let age_ms = crate::services::now_ms().saturating_sub(session.updated_at_ms);
        if age_ms < CREATING_PATIENCE_MS {
            return Attempt::Retry("the PSP session is still being created".into());
        }
        return Attempt::Done;
    };
    let amount = match cart.total() {
        Ok(a) => a,
        Err(e) => return Attempt::Fail(format!("the cart total cannot be paid: {e}")),
    };

    // The key is fixed, and stored, before the PSP is called: a retry after no answer
    // reuses it, and a different payload gets a new one (a PSP refuses a key reused for a
    // different request).
    if p.key_hash.as_deref() != Some(hash.as_str()) || p.key.is_none() {
        p.keys += 1;
        p.key = Some(format!("{}:{}", ctx.job.dedupe_key, p.keys));
        p.key_hash = Some(hash.clone());
        if let Err(stop) = ctx.save(&p).await {
            return stop;
        }
    }
    let key = p.key.clone().unwrap_or_default();

    if let Err(stop) = set_field(ctx, &cart, &pending_field(provider.id()), &hash).await {
        return stop;
    }
    let result = provider
        .sync(SyncRequest {
            psp_ref: &psp_ref,
            cart: &cart,
            amount,
            payload: &payload,
            idempotency_key: &key,
        })
        .await;
    match result {
        Ok(()) => {}
        Err(ProviderError::Locked(why)) => {
            let reason = format!(
                "the cart changed but the {} session can no longer change: {why}",
                provider.id()
            );
            return flag(ctx, &session, reason).await;
        }
        Err(ProviderError::Unsupported(_)) => return Attempt::Done,
        Err(e) if e.is_transient() => {
            ctx.services.metrics.upstream_error(provider.id());
            return Attempt::Retry(format!("PSP sync: {e}"));
        }
        Err(e) => return Attempt::Fail(format!("the PSP refused the sync: {e}")),
    }
    // The session is now for the amount the PSP holds; checkout's reuse and the check of a
    // cart changed after authorization compare against it.
    if let Err(e) = store
        .set_session_amount(p.cart_id, provider.id(), &psp_ref, amount)
        .await
    {
        return Attempt::Retry(e.to_string());
    }
    if let Err(e) = store.mark_synced(p.cart_id, provider.id(), &hash).await {
        // The PSP holds the payload; a repeat sends it again under the same key.
        return Attempt::Retry(e.to_string());
    }
    if let Err(stop) = set_field(ctx, &cart, &synced_field(provider.id()), &hash).await {
        return stop;
    }
    tracing::info!(provider = provider.id(), cart_id = %p.cart_id, %amount, "PSP session in step with the cart");
    Attempt::Done
}

/// Sets one of the cart's sync fields. They are for storefronts to read; a refusal is
/// logged and does not stop the sync, a failure to reach Hantera retries the job.
async fn set_field(
    ctx: &JobCtx<'_>,
    cart: &RenderedCart,
    field: &str,
    hash: &str,
) -> Result<(), Attempt> {
    let mut fields = serde_json::Map::new();
    fields.insert(
        field.to_string(),
        serde_json::Value::String(hash.to_string()),
    );
    match ctx
        .services
        .hantera
        .set_cart_fields(cart.cart_id, &fields)
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if e.is_transient() => {
            ctx.services.metrics.upstream_error("hantera");
            Err(Attempt::Retry(format!("setting {field}: {e}")))
        }
        Err(e) => {
            tracing::warn!(cart_id = %cart.cart_id, field, error = %e, "Hantera refused a sync field");
            Ok(())
        }
    }
}

async fn flag(ctx: &JobCtx<'_>, session: &Session, reason: String) -> Attempt {
    tracing::warn!(provider = %session.provider, cart_id = %session.cart_id, %reason, "cart sync needs attention");
    match ctx
        .services
        .store
        .flag_session(session.cart_id, &session.provider, &reason)
        .await
    {
        Ok(()) => Attempt::Done,
        Err(e) => Attempt::Retry(e.to_string()),
    }
}

/// Checks a completed cart against what its session's payment authorized. The completion
/// record turns `underpaid` (the Hantera payment tagged, the metric counted) and the
/// session is flagged, so the admin API lists it either way.
async fn audit_completed(
    ctx: &JobCtx<'_>,
    provider: &dyn Provider,
    session: &Session,
    cart: &RenderedCart,
) -> Attempt {
    let Some(psp_ref) = session.psp_ref.as_deref() else {
        return Attempt::Done;
    };
    match ctx
        .services
        .completer
        .audit_completed(provider, psp_ref, cart)
        .await
    {
        Ok(Some(outcome)) => {
            ctx.services
                .metrics
                .completion(provider.id(), outcome.label());
            if let psp_core::CompletionOutcome::Underpaid { reason, .. } = outcome {
                return flag(ctx, session, reason).await;
            }
            Attempt::Done
        }
        Ok(None) => Attempt::Done,
        Err(e) if e.is_transient() => Attempt::Retry(format!("checking the completed cart: {e}")),
        Err(e) => Attempt::Fail(format!("checking the completed cart: {e}")),
    }
}

/// Records at checkout that the PSP session holds the cart as it is now, so that a later
/// mutation that changes nothing the PSP needs (an email address) sends nothing.
///
/// A mutation that arrived while the checkout talked to the PSP may be newer than the cart
/// the checkout read; its payload is then sent by a sync scheduled here.
pub(crate) async fn record_checkout(
    services: &Services,
    provider: &dyn Provider,
    cart: &RenderedCart,
) -> Result<(), psp_core::ports::StoreError> {
    let Ok(payload) = provider.sync_payload(cart) else {
        return Ok(());
    };
    let hash = payload_hash(&payload);
    services
        .store
        .mark_synced(cart.cart_id, provider.id(), &hash)
        .await?;
    let Some(sync) = services
        .store
        .session_sync(cart.cart_id, provider.id())
        .await?
    else {
        return Ok(());
    };
    let (Some(pending), Some(payload), Some(pending_cart)) =
        (sync.pending_hash, sync.pending_payload, sync.pending_cart)
    else {
        return Ok(());
    };
    if pending == hash || !provider.capabilities().update_amount {
        return Ok(());
    }
    let pending = PendingSync {
        cart_id: cart.cart_id,
        provider: provider.id().to_string(),
        hash: pending,
        payload,
        cart: pending_cart,
    };
    services.jobs.schedule_sync(pending, Duration::ZERO).await?;
    Ok(())
}

/// The hash a sync compares: SHA-256, in hex, of the payload's canonical JSON (object keys
/// sorted at every level, no whitespace, numbers as their exact text). Two payloads that
/// mean the same bytes-for-bytes hash the same whatever order their maps were built in.
pub fn payload_hash(payload: &serde_json::Value) -> String {
    let mut canonical = String::new();
    write_canonical(payload, &mut canonical);
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

fn write_canonical(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_payload_hash_does_not_depend_on_key_order() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"amount":1000,"currency":"SEK","lines":[{"b":1,"a":2}]}"#)
                .unwrap();
        let b: serde_json::Value =
            serde_json::from_str(r#"{"lines":[{"a":2,"b":1}],"currency":"SEK","amount":1000}"#)
                .unwrap();
        assert_eq!(payload_hash(&a), payload_hash(&b));
        assert_eq!(payload_hash(&a).len(), 64);
    }

    #[test]
    fn the_payload_hash_is_stable_across_releases() {
        // A stored hash is compared with one computed by a later release: the canonical
        // form must not drift. This value is sha256 of {"amount":1000,"currency":"SEK"}.
        assert_eq!(
            payload_hash(&json!({ "currency": "SEK", "amount": 1000 })),
            "7f0573d72c2b34722d4dd99f8323f01a1135252235be79bec2ee6ac7d7ed484f"
        );
    }

    #[test]
    fn the_payload_hash_changes_with_any_value_and_keeps_exact_numbers() {
        let base = payload_hash(&json!({ "amount": 1000, "currency": "SEK" }));
        assert_ne!(
            base,
            payload_hash(&json!({ "amount": 1001, "currency": "SEK" }))
        );
        assert_ne!(
            base,
            payload_hash(&json!({ "amount": 1000, "currency": "EUR" }))
        );
        let exact: serde_json::Value = serde_json::from_str(r#"{"total":10.10}"#).unwrap();
        let other: serde_json::Value = serde_json::from_str(r#"{"total":10.1}"#).unwrap();
        // With serde_json's arbitrary_precision the number text is kept as written, so a
        // provider must build its payload from exact values (minor units), never floats.
        assert_ne!(payload_hash(&exact), payload_hash(&other));
    }
}

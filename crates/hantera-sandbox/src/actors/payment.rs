//! The payment actor: `create`, `applyCommands`, `charge`, `completeCapture` and
//! `query`.
//!
//! A `charge` covers the payment's pending captures, oldest first: each capture's
//! `capturedAmount` grows by what the charge brings, and a capture with nothing remaining
//! becomes `completed` with a `capture` journal entry, as Hantera documents for
//! `OnPaymentCapture` ("a new charge is made on the payment to cover for the capture").

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{apply_tag, command_body, command_kind, set_dynamic_fields, AddActivityLog, Message};
use crate::error::ApiError;
use crate::state::{
    now_rfc3339, Authorization, AuthorizationState, CaptureState, Payment, PaymentCapture,
    PaymentJournalEntry, Txn,
};

/// The prefix of the number a payment gets when its `create` does not ask for one.
/// Hantera always gives a payment a number; what it uses by default is not documented.
const DEFAULT_NUMBER_PREFIX: &str = "P";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Create {
    currency_code: String,
    provider_key: Option<String>,
    external_reference: Option<String>,
    #[serde(default)]
    commands: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ApplyCommands {
    commands: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Charge {
    #[serde(with = "rust_decimal::serde::arbitrary_precision")]
    amount: Decimal,
    authorization_number: Option<String>,
    transaction_reference: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CompleteCapture {
    payment_capture_id: Uuid,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GenerateNumber {
    prefix: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateAuthorization {
    authorization_number: String,
    #[serde(with = "rust_decimal::serde::arbitrary_precision")]
    amount: Decimal,
    authorization_state: Option<AuthorizationState>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SetDynamicFields {
    fields: Map<String, Value>,
}

/// Applies one message to the payment `id` within the batch's transaction.
pub(super) fn apply(txn: &mut Txn<'_>, id: Uuid, message: &Message) -> Result<Value, ApiError> {
    match message.kind.as_str() {
        "create" => create(txn, id, message.body_as()?),
        "applyCommands" => {
            let ApplyCommands { commands } = message.body_as()?;
            let mut payment = existing(txn, id)?.clone();
            for command in &commands {
                apply_command(txn, &mut payment, command)?;
            }
            txn.insert_payment(payment);
            Ok(ok())
        }
        "charge" => charge(txn, id, message.body_as()?),
        "completeCapture" => complete_capture(txn, id, message.body_as()?),
        "query" => serde_json::to_value(existing(txn, id)?)
            .map_err(|e| ApiError::invalid_command(format!("cannot render payment: {e}"))),
        other => Err(ApiError::invalid_message_body(format!(
            "the payment actor has no message '{other}' in the sandbox \
             (known: create, applyCommands, charge, completeCapture, query)"
        ))),
    }
}

fn ok() -> Value {
    Value::String("OK".into())
}

fn existing<'t>(txn: &'t Txn<'_>, id: Uuid) -> Result<&'t Payment, ApiError> {
    txn.payment(id)
        .ok_or_else(|| ApiError::not_found(format!("no payment {id}")))
}

fn create(txn: &mut Txn<'_>, id: Uuid, body: Create) -> Result<Value, ApiError> {
    if body.currency_code.len() != 3 || !body.currency_code.bytes().all(|b| b.is_ascii_uppercase())
    {
        return Err(ApiError::invalid_message_body(format!(
            "currencyCode '{}' is not an ISO 4217 code",
            body.currency_code
        )));
    }
    if txn.payment(id).is_some() {
        return Err(ApiError::already_exists(format!(
            "payment {id} already exists"
        )));
    }
    if let Some(reference) = &body.external_reference {
        if let Some(holder) = txn.payment_by_ref(reference) {
            return Err(ApiError::duplicate_id(format!(
                "externalReference '{reference}' is already used by payment {holder}"
            ))
            .with_detail("paymentId", holder.to_string()));
        }
    }
    let now = now_rfc3339();
    let mut payment = Payment {
        payment_id: id,
        payment_number: String::new(),
        provider_key: body.provider_key,
        currency_code: body.currency_code,
        external_reference: body.external_reference,
        created_at: now,
        dynamic: Map::new(),
        tags: Vec::new(),
        authorizations: Vec::new(),
        captures: Vec::new(),
        journal_entries: Vec::new(),
        activity_log: Vec::new(),
        created_seq: txn.next_created(),
    };
    for command in &body.commands {
        apply_command(txn, &mut payment, command)?;
    }
    if payment.payment_number.is_empty() {
        payment.payment_number = txn.next_payment_number(DEFAULT_NUMBER_PREFIX);
    }
    txn.insert_payment(payment);
    Ok(ok())
}

/// Applies one payment command to a payment that is not yet back in the transaction
/// (the command may itself need the transaction, to draw a number).
fn apply_command(
    txn: &mut Txn<'_>,
    payment: &mut Payment,
    command: &Value,
) -> Result<(), ApiError> {
    let (kind, fields) = command_kind(command)?;
    match kind.as_str() {
        "generatePaymentNumberByPrefix" => {
            let GenerateNumber { prefix } = command_body(&kind, fields)?;
            payment.payment_number = txn.next_payment_number(&prefix);
        }
        "createAuthorization" => {
            let auth: CreateAuthorization = command_body(&kind, fields)?;
            if auth.amount.is_sign_negative() {
                return Err(ApiError::invalid_command(format!(
                    "authorization amount {} is negative",
                    auth.amount
                )));
            }
            if payment
                .authorizations
                .iter()
                .any(|a| a.authorization_number == auth.authorization_number)
            {
                return Err(ApiError::invalid_command(format!(
                    "authorization '{}' already exists on payment {}",
                    auth.authorization_number, payment.payment_id
                )));
            }
            payment.authorizations.push(Authorization {
                payment_authorization_id: Uuid::new_v4(),
                authorization_number: auth.authorization_number,
                amount: auth.amount,
                authorization_state: auth
                    .authorization_state
                    .unwrap_or(AuthorizationState::Successful),
                created_at: now_rfc3339(),
            });
        }
        "addActivityLog" => {
            let log: AddActivityLog = command_body(&kind, fields)?;
            payment.activity_log.push(log.into_entry());
        }
        "setDynamicFields" => {
            let SetDynamicFields { fields } = command_body(&kind, fields)?;
            set_dynamic_fields(&mut payment.dynamic, fields);
        }
        "addTag" | "removeTag" => apply_tag(&mut payment.tags, &kind, fields)?,
        other => {
            return Err(ApiError::invalid_message_body(format!(
                "the sandbox knows no payment command '{other}' (known: \
                 generatePaymentNumberByPrefix, createAuthorization, addActivityLog, \
                 setDynamicFields, addTag, removeTag)"
            )))
        }
    }
    Ok(())
}

/// `charge`: the provider took money. With an authorization number the charge draws
/// down that authorization, as Hantera documents, so it must fit in what is left of it.
fn charge(txn: &mut Txn<'_>, id: Uuid, body: Charge) -> Result<Value, ApiError> {
    existing(txn, id)?;
    if body.amount <= Decimal::ZERO {
        return Err(ApiError::invalid_command(format!(
            "charge amount {} is not positive",
            body.amount
        )));
    }
    let payment = txn
        .payment_mut(id)
        .ok_or_else(|| ApiError::not_found(format!("no payment {id}")))?;
    if let Some(number) = &body.authorization_number {
        let auth = payment
            .authorizations
            .iter_mut()
            .find(|a| a.authorization_number == *number)
            .ok_or_else(|| {
                ApiError::invalid_command(format!("no authorization '{number}' on payment {id}"))
            })?;
        if auth.authorization_state == AuthorizationState::Failed {
            return Err(ApiError::invalid_command(format!(
                "authorization '{number}' has failed and cannot be charged"
            )));
        }
        if body.amount > auth.amount {
            return Err(ApiError::invalid_command(format!(
                "charge {} exceeds the {} left on authorization '{number}'",
                body.amount, auth.amount
            )));
        }
        auth.amount -= body.amount;
    }
    payment.journal_entries.push(PaymentJournalEntry {
        payment_journal_entry_id: Uuid::new_v4(),
        amount: body.amount,
        payment_journal_entry_type: "charge",
        authorization_number: body.authorization_number,
        transaction_reference: body.transaction_reference,
        capture_id: None,
        invoice_id: None,
        order_id: None,
        timestamp: now_rfc3339(),
    });
    let mut brought = body.amount;
    let mut completed = Vec::new();
    for capture in payment
        .captures
        .iter_mut()
        .filter(|c| c.state == CaptureState::Pending)
    {
        if brought <= Decimal::ZERO {
            break;
        }
        let covered = brought.min(capture.remaining_amount);
        capture.captured_amount += covered;
        capture.remaining_amount -= covered;
        brought -= covered;
        if capture.remaining_amount <= Decimal::ZERO {
            capture.state = CaptureState::Completed;
            completed.push(capture.clone());
        }
    }
    for capture in completed {
        payment.journal_entries.push(capture_entry(&capture));
    }
    Ok(ok())
}

/// The journal entry of a completed capture.
fn capture_entry(capture: &PaymentCapture) -> PaymentJournalEntry {
    PaymentJournalEntry {
        payment_journal_entry_id: Uuid::new_v4(),
        amount: capture.amount,
        payment_journal_entry_type: "capture",
        authorization_number: None,
        transaction_reference: None,
        capture_id: Some(capture.payment_capture_id),
        invoice_id: Some(capture.invoice_id),
        order_id: Some(capture.order_id),
        timestamp: now_rfc3339(),
    }
}

/// `completeCapture`: completes a pending capture even without a charge covering it, as
/// Hantera documents (for money settled outside the payment's provider).
fn complete_capture(txn: &mut Txn<'_>, id: Uuid, body: CompleteCapture) -> Result<Value, ApiError> {
    existing(txn, id)?;
    let payment = txn
        .payment_mut(id)
        .ok_or_else(|| ApiError::not_found(format!("no payment {id}")))?;
    let capture = payment
        .captures
        .iter_mut()
        .find(|c| c.payment_capture_id == body.payment_capture_id)
        .ok_or_else(|| {
            ApiError::invalid_command(format!(
                "no capture {} on payment {id}",
                body.payment_capture_id
            ))
        })?;
    if capture.state != CaptureState::Pending {
        return Err(ApiError::invalid_command(format!(
            "capture {} is already completed",
            body.payment_capture_id
        )));
    }
    capture.state = CaptureState::Completed;
    let entry = capture_entry(capture);
    payment.journal_entries.push(entry);
    Ok(ok())
}

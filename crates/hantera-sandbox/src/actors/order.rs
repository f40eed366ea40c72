//! The order actor: `capturePayments` and `query`.
//!
//! `capturePayments` is how a shop asks for its money once it ships: for what is left
//! to capture of the order's total, it creates an invoice and a pending capture on the
//! order's payments, which fires `OnPaymentCapture`. The PSP integration (here, the
//! gateway) captures at the PSP and sends `charge` to the payment, which covers the
//! pending capture and completes it (see the payment actor).

use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

use super::Message;
use crate::catalog::round_money;
use crate::error::ApiError;
use crate::state::{
    now_rfc3339, Amount, AuthorizationState, CaptureState, OrderState, PaymentCapture, Txn,
};

/// Applies one message to the order `id` within the batch's transaction.
pub(super) fn apply(txn: &mut Txn<'_>, id: Uuid, message: &Message) -> Result<Value, ApiError> {
    match message.kind.as_str() {
        "capturePayments" => capture_payments(txn, id),
        "query" => query(txn, id),
        other => Err(ApiError::invalid_message_body(format!(
            "the order actor has no message '{other}' in the sandbox \
             (known: capturePayments, query)"
        ))),
    }
}

/// The money a payment can still be captured for: its successful authorizations (which
/// charges draw down) less what pending captures already claim.
fn capturable(txn: &Txn<'_>, payment_id: Uuid) -> Decimal {
    let Some(payment) = txn.payment(payment_id) else {
        return Decimal::ZERO;
    };
    let authorized: Decimal = payment
        .authorizations
        .iter()
        .filter(|a| a.authorization_state == AuthorizationState::Successful)
        .map(|a| a.amount)
        .sum();
    let claimed: Decimal = payment
        .captures
        .iter()
        .filter(|c| c.state == CaptureState::Pending)
        .map(|c| c.remaining_amount)
        .sum();
    (authorized - claimed).max(Decimal::ZERO)
}

fn capture_payments(txn: &mut Txn<'_>, id: Uuid) -> Result<Value, ApiError> {
    let order = txn
        .order(id)
        .ok_or_else(|| ApiError::not_found(format!("no order {id}")))?
        .clone();
    if order.order_state == OrderState::Cancelled {
        return Err(ApiError::invalid_command(format!(
            "order {} is cancelled",
            order.order_number
        )));
    }
    if order.payment_ids.is_empty() {
        return Err(ApiError::invalid_command(format!(
            "order {} has no payments to capture",
            order.order_number
        )));
    }
    // What earlier calls already asked for, pending or completed, is not asked again.
    let asked: Decimal = order
        .payment_ids
        .iter()
        .filter_map(|p| txn.payment(*p))
        .flat_map(|p| &p.captures)
        .filter(|c| c.order_id == id)
        .map(|c| c.amount)
        .sum();
    let mut left = order.order_total - asked;
    // Zero written with the currency's decimals (`0.00`), like every other amount.
    let zero = round_money(Decimal::ZERO, &order.currency_code);
    let invoice_id = Uuid::new_v4();
    let mut created = Vec::new();
    for payment_id in &order.payment_ids {
        if left <= Decimal::ZERO {
            break;
        }
        let amount = left.min(capturable(txn, *payment_id));
        if amount <= Decimal::ZERO {
            continue;
        }
        let capture = PaymentCapture {
            payment_capture_id: Uuid::new_v4(),
            order_id: id,
            invoice_id,
            amount,
            captured_amount: zero,
            remaining_amount: amount,
            state: CaptureState::Pending,
            created_at: now_rfc3339(),
        };
        let capture_id = capture.payment_capture_id;
        let payment = txn
            .payment_mut(*payment_id)
            .ok_or_else(|| ApiError::invalid_command(format!("no payment {payment_id}")))?;
        payment.captures.push(capture);
        txn.note_new_capture(*payment_id, capture_id);
        left -= amount;
        created.push(json!({
            "orderId": id,
            "invoiceId": invoice_id,
            "paymentId": payment_id,
            "paymentCaptureId": capture_id,
            "amount": Amount(amount),
            "capturedAmount": Amount(zero),
            "remainingAmount": Amount(amount),
        }));
    }
    Ok(Value::Array(created))
}

/// The order with the captures its payments hold for it.
fn query(txn: &Txn<'_>, id: Uuid) -> Result<Value, ApiError> {
    let order = txn
        .order(id)
        .ok_or_else(|| ApiError::not_found(format!("no order {id}")))?;
    let captures: Vec<&PaymentCapture> = order
        .payment_ids
        .iter()
        .filter_map(|p| txn.payment(*p))
        .flat_map(|p| &p.captures)
        .filter(|c| c.order_id == id)
        .collect();
    let mut value = serde_json::to_value(order)
        .map_err(|e| ApiError::invalid_command(format!("cannot render order: {e}")))?;
    value["captures"] = serde_json::to_value(captures)
        .map_err(|e| ApiError::invalid_command(format!("cannot render captures: {e}")))?;
    Ok(value)
}

//! The in-memory model of the emulated Hantera instance.
//!
//! Everything mutable lives in [`Inner`] behind one `parking_lot::Mutex`, held only for
//! the synchronous part of a request and never across an `.await`. One lock keeps the
//! journal's order equal to the order in which batches took effect, which is what tests
//! read it for.
//!
//! Actor batches are atomic. Rather than cloning the whole world per batch (which would
//! make every batch cost as much as the number of payments ever made, and the gateway's
//! load tests make many), a batch runs against a [`Txn`]: a copy-on-write overlay that
//! clones only the records the batch touches. Committing moves the overlay into the
//! world; dropping it discards the batch without a trace.

use std::collections::HashMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use rust_decimal::Decimal;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::catalog::{CartProfile, Catalog, Coupon};
use crate::events::CartEvent;
use crate::faults::Faults;
use crate::hooks::{Hooks, Outbox};

/// What every handler shares: fixed configuration, the catalog, the channels that tell
/// the outside about changes, and the mutable state.
pub(crate) struct Shared {
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    pub(crate) token_ttl: std::time::Duration,
    pub(crate) catalog: Catalog,
    /// The faults configured at start, which a reset goes back to.
    pub(crate) initial_faults: Faults,
    /// The bridge app's rules configured at start, which a reset goes back to.
    pub(crate) initial_rules: crate::rules::Rules,
    /// Every change to a cart, for the SSE streams of `/ingress/commerce/carts/{id}/events`.
    pub(crate) events: tokio::sync::broadcast::Sender<CartEvent>,
    /// Set once to end every SSE stream, so that a server shutting down gracefully is
    /// not held open by browsers that keep listening.
    pub(crate) closing: tokio::sync::watch::Sender<bool>,
    /// Where hooks go and the task that delivers them.
    pub(crate) hooks: Hooks,
    pub(crate) state: Mutex<Inner>,
}

/// The mutable part of the sandbox.
#[derive(Default)]
pub(crate) struct Inner {
    pub(crate) world: World,
    pub(crate) journal: Vec<JournalRecord>,
    /// How many faults were injected, by kind, so a test can tell its faults struck.
    pub(crate) injected: crate::faults::Injected,
    /// Access tokens and the instant each stops being valid.
    pub(crate) tokens: HashMap<String, Instant>,
    pub(crate) faults: Faults,
    /// Hooks waiting to be delivered to the gateway, and the recent deliveries.
    pub(crate) outbox: Outbox,
}

/// The business data: the records Hantera would persist.
#[derive(Default)]
pub(crate) struct World {
    pub(crate) payments: HashMap<Uuid, Payment>,
    /// `externalReference` → payment, which Hantera keeps unique across all payments.
    pub(crate) payment_by_ref: HashMap<String, Uuid>,
    /// The last number handed out per payment-number prefix.
    pub(crate) payment_number_seq: HashMap<String, u64>,
    /// Tickets; in the sandbox every ticket is a Commerce cart.
    pub(crate) tickets: HashMap<Uuid, Ticket>,
    pub(crate) orders: HashMap<Uuid, Order>,
    pub(crate) last_order_number: u64,
    pub(crate) last_cart_number: u64,
    /// A counter that orders records by creation, for listings.
    pub(crate) last_created: u64,
    /// The bridge app's rules in force.
    pub(crate) rules: crate::rules::Rules,
}

/// Numbers start here, so that the first order is `O1001` and the first payment with
/// prefix `MOCK-` is `MOCK-1001`, as Hantera's examples look.
const FIRST_NUMBER: u64 = 1001;

fn next_number(last: u64) -> u64 {
    if last < FIRST_NUMBER {
        FIRST_NUMBER
    } else {
        last + 1
    }
}

impl World {
    pub(crate) fn next_cart_number(&mut self) -> String {
        self.last_cart_number = next_number(self.last_cart_number);
        format!("C{}", self.last_cart_number)
    }

    pub(crate) fn next_created(&mut self) -> u64 {
        self.last_created += 1;
        self.last_created
    }

    /// Moves a committed batch into the world.
    pub(crate) fn apply(&mut self, changes: Changes) {
        for (id, payment) in changes.payments {
            if let Some(reference) = &payment.external_reference {
                self.payment_by_ref.insert(reference.clone(), id);
            }
            self.payments.insert(id, payment);
        }
        self.tickets.extend(changes.tickets);
        self.orders.extend(changes.orders);
        self.payment_number_seq.extend(changes.payment_number_seq);
        if let Some(n) = changes.last_order_number {
            self.last_order_number = n;
        }
        if let Some(n) = changes.last_created {
            self.last_created = n;
        }
    }
}

/// A batch in progress: reads fall through to the world, writes land in the overlay.
pub(crate) struct Txn<'w> {
    base: &'w World,
    changes: Changes,
}

/// The records a batch wrote, ready to be committed with [`World::apply`].
#[derive(Default)]
pub(crate) struct Changes {
    payments: HashMap<Uuid, Payment>,
    tickets: HashMap<Uuid, Ticket>,
    orders: HashMap<Uuid, Order>,
    payment_number_seq: HashMap<String, u64>,
    last_order_number: Option<u64>,
    last_created: Option<u64>,
    /// `(paymentId, paymentCaptureId)` of every capture the batch created, in order, so
    /// that `OnPaymentCapture` can be fired for each once the batch commits.
    new_captures: Vec<(Uuid, Uuid)>,
}

impl Changes {
    /// The tickets the batch changed.
    pub(crate) fn ticket_ids(&self) -> Vec<Uuid> {
        self.tickets.keys().copied().collect()
    }

    /// The captures the batch created, in the order they were created.
    pub(crate) fn new_captures(&self) -> Vec<(Uuid, Uuid)> {
        self.new_captures.clone()
    }
}

impl<'w> Txn<'w> {
    pub(crate) fn new(base: &'w World) -> Self {
        Self {
            base,
            changes: Changes::default(),
        }
    }

    /// The bridge app's rules in force for this batch.
    pub(crate) fn rules(&self) -> crate::rules::Rules {
        self.base.rules
    }

    pub(crate) fn into_changes(self) -> Changes {
        self.changes
    }

    pub(crate) fn payment(&self, id: Uuid) -> Option<&Payment> {
        self.changes
            .payments
            .get(&id)
            .or_else(|| self.base.payments.get(&id))
    }

    pub(crate) fn payment_mut(&mut self, id: Uuid) -> Option<&mut Payment> {
        if !self.changes.payments.contains_key(&id) {
            let payment = self.base.payments.get(&id)?.clone();
            self.changes.payments.insert(id, payment);
        }
        self.changes.payments.get_mut(&id)
    }

    pub(crate) fn insert_payment(&mut self, payment: Payment) {
        self.changes.payments.insert(payment.payment_id, payment);
    }

    /// The payment holding an external reference, including payments this batch made.
    pub(crate) fn payment_by_ref(&self, reference: &str) -> Option<Uuid> {
        self.changes
            .payments
            .values()
            .find(|p| p.external_reference.as_deref() == Some(reference))
            .map(|p| p.payment_id)
            .or_else(|| self.base.payment_by_ref.get(reference).copied())
    }

    pub(crate) fn ticket(&self, id: Uuid) -> Option<&Ticket> {
        self.changes
            .tickets
            .get(&id)
            .or_else(|| self.base.tickets.get(&id))
    }

    pub(crate) fn ticket_mut(&mut self, id: Uuid) -> Option<&mut Ticket> {
        if !self.changes.tickets.contains_key(&id) {
            let ticket = self.base.tickets.get(&id)?.clone();
            self.changes.tickets.insert(id, ticket);
        }
        self.changes.tickets.get_mut(&id)
    }

    pub(crate) fn insert_ticket(&mut self, ticket: Ticket) {
        self.changes.tickets.insert(ticket.ticket_id, ticket);
    }

    pub(crate) fn insert_order(&mut self, order: Order) {
        self.changes.orders.insert(order.order_id, order);
    }

    pub(crate) fn order(&self, id: Uuid) -> Option<&Order> {
        self.changes
            .orders
            .get(&id)
            .or_else(|| self.base.orders.get(&id))
    }

    /// The order with this number (`O1001`), which Hantera accepts in place of the id.
    pub(crate) fn order_by_number(&self, number: &str) -> Option<Uuid> {
        self.changes
            .orders
            .values()
            .chain(self.base.orders.values())
            .find(|o| o.order_number == number)
            .map(|o| o.order_id)
    }

    /// Notes a capture created in this batch, for `OnPaymentCapture`.
    pub(crate) fn note_new_capture(&mut self, payment_id: Uuid, capture_id: Uuid) {
        self.changes.new_captures.push((payment_id, capture_id));
    }

    pub(crate) fn next_payment_number(&mut self, prefix: &str) -> String {
        let last = self
            .changes
            .payment_number_seq
            .get(prefix)
            .or_else(|| self.base.payment_number_seq.get(prefix))
            .copied()
            .unwrap_or(0);
        let n = next_number(last);
        self.changes.payment_number_seq.insert(prefix.to_owned(), n);
        format!("{prefix}{n}")
    }

    pub(crate) fn next_order_number(&mut self) -> String {
        let last = self
            .changes
            .last_order_number
            .unwrap_or(self.base.last_order_number);
        let n = next_number(last);
        self.changes.last_order_number = Some(n);
        format!("O{n}")
    }

    pub(crate) fn next_created(&mut self) -> u64 {
        let n = self.changes.last_created.unwrap_or(self.base.last_created) + 1;
        self.changes.last_created = Some(n);
        n
    }
}

/// A decimal written as an exact JSON number (`123.45`, never `123.45000000001`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Amount(pub(crate) Decimal);

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        rust_decimal::serde::arbitrary_precision::serialize(&self.0, serializer)
    }
}

/// The state of a payment authorization, as Hantera names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum AuthorizationState {
    Pending,
    Successful,
    Failed,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Authorization {
    pub(crate) payment_authorization_id: Uuid,
    pub(crate) authorization_number: String,
    #[serde(with = "rust_decimal::serde::arbitrary_precision")]
    pub(crate) amount: Decimal,
    pub(crate) authorization_state: AuthorizationState,
    pub(crate) created_at: String,
}

/// One line of a payment's money journal: a `charge` (money taken by the provider) or a
/// `capture` (a pending capture covered and completed), the latter naming its capture,
/// invoice and order.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PaymentJournalEntry {
    pub(crate) payment_journal_entry_id: Uuid,
    #[serde(with = "rust_decimal::serde::arbitrary_precision")]
    pub(crate) amount: Decimal,
    pub(crate) payment_journal_entry_type: &'static str,
    pub(crate) authorization_number: Option<String>,
    pub(crate) transaction_reference: Option<String>,
    pub(crate) capture_id: Option<Uuid>,
    pub(crate) invoice_id: Option<Uuid>,
    pub(crate) order_id: Option<Uuid>,
    pub(crate) timestamp: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ActivityLogEntry {
    pub(crate) message_template: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) dynamic: Option<Value>,
    pub(crate) created_at: String,
}

/// A payment actor, serialized in the shape of Hantera's `Payment` type.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Payment {
    pub(crate) payment_id: Uuid,
    pub(crate) payment_number: String,
    pub(crate) provider_key: Option<String>,
    pub(crate) currency_code: String,
    pub(crate) external_reference: Option<String>,
    pub(crate) created_at: String,
    pub(crate) dynamic: Map<String, Value>,
    pub(crate) tags: Vec<String>,
    pub(crate) authorizations: Vec<Authorization>,
    pub(crate) captures: Vec<PaymentCapture>,
    pub(crate) journal_entries: Vec<PaymentJournalEntry>,
    pub(crate) activity_log: Vec<ActivityLogEntry>,
    #[serde(skip)]
    pub(crate) created_seq: u64,
}

/// Whether a capture still waits for money (`pending`) or has been covered by charges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum CaptureState {
    Pending,
    Completed,
}

/// A capture of a payment for an order's invoice, in the shape of Hantera's
/// `PaymentCapture`: created pending by the order's `capturePayments`, then covered by
/// the payment's `charge` messages.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PaymentCapture {
    pub(crate) payment_capture_id: Uuid,
    pub(crate) order_id: Uuid,
    pub(crate) invoice_id: Uuid,
    #[serde(with = "rust_decimal::serde::arbitrary_precision")]
    pub(crate) amount: Decimal,
    #[serde(with = "rust_decimal::serde::arbitrary_precision")]
    pub(crate) captured_amount: Decimal,
    #[serde(with = "rust_decimal::serde::arbitrary_precision")]
    pub(crate) remaining_amount: Decimal,
    pub(crate) state: CaptureState,
    pub(crate) created_at: String,
}

/// The lifecycle state of a ticket, which for a cart is its `cartState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TicketState {
    Open,
    Completed,
    Rejected,
}

impl TicketState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TicketState::Open => "open",
            TicketState::Completed => "completed",
            TicketState::Rejected => "rejected",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Relation {
    pub(crate) relation_key: String,
    pub(crate) node_id: Uuid,
}

/// One line of a cart. The unit price, name and image are copied from the catalog when
/// the line is added, as a shop freezes the price a customer saw. Discounts are not
/// stored: they follow from the cart's coupons whenever the cart is priced.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CartLine {
    pub(crate) cart_item_id: Uuid,
    pub(crate) product_number: String,
    pub(crate) quantity: i64,
    pub(crate) description: Option<String>,
    pub(crate) image: Option<String>,
    #[serde(with = "rust_decimal::serde::arbitrary_precision")]
    pub(crate) unit_price: Decimal,
}

/// A postal address in the storefront SDK's field names. Every field is optional, and
/// unknown fields are refused so that a misspelt one is not silently dropped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Address {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) care_of: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) attention: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) address_line1: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) address_line2: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) postal_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) country_code: Option<String>,
}

/// Who the invoice goes to: an address plus the tax identity of a business buyer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct InvoiceRecipient {
    // The address fields are repeated rather than flattened from `Address`: serde cannot
    // refuse unknown fields through `flatten`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) care_of: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) attention: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) address_line1: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) address_line2: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) postal_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) country_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tax_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tax_id_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tax_country_code: Option<String>,
}

/// A ticket actor. Hantera's Commerce cart is a ticket of type `cart`; the sandbox only
/// creates carts, so the cart's own data (profile, lines, contact details) lives here.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Ticket {
    pub(crate) ticket_id: Uuid,
    pub(crate) type_key: &'static str,
    pub(crate) ticket_number: String,
    pub(crate) state: TicketState,
    /// A copy of the profile the cart was opened under, which fixes its currency, tax
    /// and shipping for the cart's lifetime.
    pub(crate) profile: CartProfile,
    pub(crate) locale: Option<String>,
    pub(crate) country_code: String,
    pub(crate) email: Option<String>,
    pub(crate) phone: Option<String>,
    pub(crate) address: Option<Address>,
    pub(crate) invoice_recipient: Option<InvoiceRecipient>,
    pub(crate) lines: Vec<CartLine>,
    /// The coupons added, in the order they were added.
    pub(crate) coupons: Vec<Coupon>,
    pub(crate) relations: Vec<Relation>,
    pub(crate) dynamic: Map<String, Value>,
    pub(crate) tags: Vec<String>,
    pub(crate) activity_log: Vec<ActivityLogEntry>,
    pub(crate) order_id: Option<Uuid>,
    pub(crate) order_number: Option<String>,
    pub(crate) created_at: String,
    pub(crate) closed_at: Option<String>,
    #[serde(skip)]
    pub(crate) created_seq: u64,
}

/// Whether an order stands or was cancelled through the cart's `cancel-order`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum OrderState {
    Open,
    Cancelled,
}

/// The order a completed cart turns into: a snapshot of the rendered cart at completion
/// and the payments linked to it. Its captures live on those payments.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Order {
    pub(crate) order_id: Uuid,
    pub(crate) order_number: String,
    pub(crate) order_state: OrderState,
    pub(crate) cart_id: Uuid,
    pub(crate) currency_code: String,
    #[serde(with = "rust_decimal::serde::arbitrary_precision")]
    pub(crate) order_total: Decimal,
    #[serde(with = "rust_decimal::serde::arbitrary_precision")]
    pub(crate) order_tax_total: Decimal,
    pub(crate) items: Value,
    pub(crate) payment_ids: Vec<Uuid>,
    pub(crate) created_at: String,
    pub(crate) cancelled_at: Option<String>,
}

/// One actor batch as it arrived, for `/sandbox/journal`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JournalRecord {
    pub(crate) seq: u64,
    pub(crate) actor_type: String,
    pub(crate) actor_id: String,
    pub(crate) message_types: Vec<String>,
    pub(crate) applied: bool,
    pub(crate) preview: bool,
    pub(crate) error_code: Option<String>,
    pub(crate) received_at: String,
}

/// The current UTC time as RFC 3339 with milliseconds (`2025-01-31T12:00:00.123Z`).
///
/// Written by hand from the civil-from-days algorithm (Howard Hinnant's) so that the
/// sandbox needs no date crate for the one format it prints.
pub(crate) fn now_rfc3339() -> String {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format_rfc3339(since_epoch.as_secs(), since_epoch.subsec_millis())
}

fn format_rfc3339(secs: u64, millis: u32) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (hour, minute, second) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_formatted_as_rfc3339_utc() {
        assert_eq!(format_rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(
            format_rfc3339(1_735_689_599, 999),
            "2024-12-31T23:59:59.999Z"
        );
    }

    #[test]
    fn numbers_start_at_1001_and_count_per_prefix() {
        let world = World::default();
        let mut txn = Txn::new(&world);
        assert_eq!(txn.next_payment_number("MOCK-"), "MOCK-1001");
        assert_eq!(txn.next_payment_number("MOCK-"), "MOCK-1002");
        assert_eq!(txn.next_payment_number("STRIPE-"), "STRIPE-1001");
        assert_eq!(txn.next_order_number(), "O1001");
    }

    #[test]
    fn a_discarded_transaction_leaves_the_world_unchanged() {
        let mut world = World::default();
        {
            let mut txn = Txn::new(&world);
            txn.next_payment_number("P");
        }
        assert!(world.payment_number_seq.is_empty());
        let changes = {
            let mut txn = Txn::new(&world);
            txn.next_payment_number("P");
            txn.into_changes()
        };
        world.apply(changes);
        assert_eq!(world.payment_number_seq.get("P"), Some(&1001));
    }
}

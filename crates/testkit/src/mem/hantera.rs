//! `MemHantera`: Hantera as the completion orchestrator sees it, in memory.
//!
//! The semantics follow `docs/hantera-wire.md`:
//! - a payment is created at an id the caller chooses; an existing id answers
//!   `ALREADY_EXISTS` and an external reference held by another payment `DUPLICATE_ID`;
//! - `createRelation` + `complete` is one atomic batch: any error leaves nothing changed;
//!   completing a cart that is not open, or relating a payment that does not exist,
//!   answers `500 INVALID_COMMAND`;
//! - every call is logged in order, with whether it changed anything and what the caller
//!   was told, so tests can assert orderings such as "the payment was created before the
//!   cart was completed".
//!
//! Faults are scripted per operation as a queue of actions consumed one call at a time:
//! fail before doing anything, apply and then lose the answer, or answer "not found" as a
//! lagging read would. An empty queue means the call behaves normally.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use psp_core::ports::{
    Charge, CreateOutcome, Hantera, HanteraError, JournalEntry, NewPayment, PaymentRef,
};
use psp_core::{CartState, Money, RenderedCart};
use rust_decimal::Decimal;
use uuid::Uuid;

/// An operation of the [`Hantera`] port, to aim faults at and to count calls by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// [`Hantera::get_cart`].
    GetCart,
    /// [`Hantera::find_payment`].
    FindPayment,
    /// [`Hantera::create_payment`].
    CreatePayment,
    /// [`Hantera::link_and_complete`].
    LinkAndComplete,
    /// [`Hantera::charge`].
    Charge,
    /// [`Hantera::payment_journal`].
    PaymentJournal,
    /// [`Hantera::cart_payment_ids`].
    CartPayments,
    /// [`Hantera::add_payment_activity`].
    PaymentActivity,
    /// [`Hantera::flag_payment`].
    FlagPayment,
    /// [`Hantera::set_cart_fields`].
    SetCartFields,
    /// [`Hantera::ping`].
    Ping,
}

/// One call as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// A cart was read.
    GetCart {
        /// The cart.
        cart_id: Uuid,
    },
    /// A payment was looked up by external reference.
    FindPayment {
        /// The reference looked up.
        external_reference: String,
    },
    /// A payment create was sent.
    CreatePayment {
        /// The id chosen by the caller.
        payment_id: Uuid,
        /// Its external reference.
        external_reference: String,
    },
    /// The relate-and-complete batch was sent.
    LinkAndComplete {
        /// The cart.
        cart_id: Uuid,
        /// The payment to relate.
        payment_id: Uuid,
    },
    /// A charge was sent.
    Charge {
        /// The payment.
        payment_id: Uuid,
        /// The amount in major units.
        amount: Decimal,
    },
    /// A payment's journal was read.
    PaymentJournal {
        /// The payment.
        payment_id: Uuid,
    },
    /// A cart's related payments were read.
    CartPayments {
        /// The cart.
        cart_id: Uuid,
    },
    /// An activity log entry was added to a payment.
    PaymentActivity {
        /// The payment.
        payment_id: Uuid,
        /// The entry.
        message: String,
    },
    /// A payment was tagged, with an activity log entry.
    FlagPayment {
        /// The payment.
        payment_id: Uuid,
        /// The tag.
        tag: String,
        /// The entry.
        message: String,
    },
    /// Dynamic fields were set on a cart.
    SetCartFields {
        /// The cart.
        cart_id: Uuid,
        /// The fields as sent.
        fields: serde_json::Map<String, serde_json::Value>,
    },
    /// Readiness was asked.
    Ping,
}

impl Call {
    /// The operation of the call.
    pub fn op(&self) -> Op {
        match self {
            Call::GetCart { .. } => Op::GetCart,
            Call::FindPayment { .. } => Op::FindPayment,
            Call::CreatePayment { .. } => Op::CreatePayment,
            Call::LinkAndComplete { .. } => Op::LinkAndComplete,
            Call::Charge { .. } => Op::Charge,
            Call::PaymentJournal { .. } => Op::PaymentJournal,
            Call::CartPayments { .. } => Op::CartPayments,
            Call::PaymentActivity { .. } => Op::PaymentActivity,
            Call::FlagPayment { .. } => Op::FlagPayment,
            Call::SetCartFields { .. } => Op::SetCartFields,
            Call::Ping => Op::Ping,
        }
    }
}

/// A logged call: what was asked, whether Hantera's state changed, what the caller got.
#[derive(Debug, Clone)]
pub struct CallRecord {
    /// The call.
    pub call: Call,
    /// Whether the call changed Hantera's state (a payment created, a cart completed, a
    /// charge recorded). A lost answer has `changed == true` and an error.
    pub changed: bool,
    /// The error the caller received, if any.
    pub error: Option<HanteraError>,
}

/// An authorization on a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemAuthorization {
    /// Unique within the payment.
    pub authorization_number: String,
    /// Major units.
    pub amount: Decimal,
    /// Always `successful` for payments the gateway creates.
    pub authorization_state: String,
}

/// A payment actor.
#[derive(Debug, Clone)]
pub struct MemPayment {
    /// The actor id.
    pub payment_id: Uuid,
    /// `providerKey`.
    pub provider_key: String,
    /// `externalReference`, unique across payments.
    pub external_reference: String,
    /// ISO 4217 code.
    pub currency_code: String,
    /// The number generated from the prefix, e.g. `MOCK-1001`.
    pub payment_number: String,
    /// The authorizations.
    pub authorizations: Vec<MemAuthorization>,
    /// The charges recorded after captures.
    pub charges: Vec<Charge>,
    /// Activity log entries, oldest first.
    pub activity: Vec<String>,
    /// Tags, a set in the order they were added.
    pub tags: Vec<String>,
}

/// A call held at the door: it waits, before doing anything, until the test releases
/// it. Tests use it to put another actor's work exactly between two steps of a caller.
#[derive(Debug, Clone)]
pub struct Hold {
    gate: Arc<Gate>,
}

#[derive(Debug)]
struct Gate {
    reached: tokio::sync::Semaphore,
    released: tokio::sync::Semaphore,
}

impl Hold {
    /// Waits until the held call has arrived.
    pub async fn reached(&self) {
        self.gate
            .reached
            .acquire()
            .await
            .expect("the gate is never closed")
            .forget();
    }

    /// Lets the held call go on; it then behaves normally.
    pub fn release(&self) {
        self.gate.released.add_permits(1);
    }
}

#[derive(Debug, Clone)]
enum Action {
    Pass,
    Hold(Hold),
    Fail(HanteraError),
    ApplyThenFail(HanteraError),
    AnswerNone,
}

#[derive(Debug, Clone)]
struct MemCart {
    cart: RenderedCart,
    payments: Vec<Uuid>,
    fields: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Default)]
struct State {
    carts: HashMap<Uuid, MemCart>,
    payments: HashMap<Uuid, MemPayment>,
    by_reference: HashMap<String, Uuid>,
    // Creation order, so listings are stable.
    payment_order: Vec<Uuid>,
    calls: Vec<CallRecord>,
    faults: HashMap<Op, VecDeque<Action>>,
    next_number: u64,
    next_cart_number: u64,
}

/// Hantera in memory. Cheap to share: wrap it in an `Arc` and hand clones to the code
/// under test and to the test's assertions.
#[derive(Debug, Default)]
pub struct MemHantera {
    state: Mutex<State>,
}

fn unavailable(op: Op) -> HanteraError {
    HanteraError::Unavailable(format!("injected fault on {op:?}"))
}

fn api(status: u16, code: &str, message: impl Into<String>) -> HanteraError {
    HanteraError::Api {
        status,
        code: code.to_string(),
        message: message.into(),
    }
}

impl MemHantera {
    /// An empty Hantera.
    pub fn new() -> Self {
        Self::default()
    }

    // ----- carts ---------------------------------------------------------------------

    /// Adds an open cart whose `orderTotal` and `currencyCode` are `total`, and returns
    /// its id.
    pub fn add_cart(&self, total: Money) -> Uuid {
        self.add_cart_decimal(total.currency.code(), total.to_decimal())
    }

    /// Adds an open cart with a total given as a decimal (which may be one the currency
    /// cannot pay, such as `1.005 SEK`), and returns its id.
    pub fn add_cart_decimal(&self, currency_code: &str, order_total: Decimal) -> Uuid {
        let cart_id = Uuid::new_v4();
        let number = {
            let mut s = self.state.lock();
            s.next_cart_number += 1;
            s.next_cart_number
        };
        self.insert_cart(RenderedCart {
            cart_id,
            cart_number: Some(format!("C{}", 1000 + number)),
            cart_state: CartState::Open,
            currency_code: currency_code.to_string(),
            order_total,
            order_tax_total: Decimal::ZERO,
            items: Vec::new(),
            order_number: None,
        });
        cart_id
    }

    /// Adds (or replaces) a cart exactly as given.
    pub fn insert_cart(&self, cart: RenderedCart) {
        let mut s = self.state.lock();
        let payments = s
            .carts
            .get(&cart.cart_id)
            .map(|c| c.payments.clone())
            .unwrap_or_default();
        s.carts.insert(
            cart.cart_id,
            MemCart {
                cart,
                payments,
                fields: serde_json::Map::new(),
            },
        );
    }

    /// The cart as `get_cart` would render it, without logging a call.
    pub fn cart(&self, cart_id: Uuid) -> Option<RenderedCart> {
        self.state
            .lock()
            .carts
            .get(&cart_id)
            .map(|c| c.cart.clone())
    }

    /// The dynamic fields set on a cart, without logging a call.
    pub fn cart_fields(&self, cart_id: Uuid) -> serde_json::Map<String, serde_json::Value> {
        self.state
            .lock()
            .carts
            .get(&cart_id)
            .map(|c| c.fields.clone())
            .unwrap_or_default()
    }

    /// The cart's state, without logging a call.
    pub fn cart_state(&self, cart_id: Uuid) -> Option<CartState> {
        self.cart(cart_id).map(|c| c.cart_state)
    }

    /// The payments related to the cart (`relationKey: payments`), in relation order.
    pub fn cart_payments(&self, cart_id: Uuid) -> Vec<Uuid> {
        self.state
            .lock()
            .carts
            .get(&cart_id)
            .map(|c| c.payments.clone())
            .unwrap_or_default()
    }

    /// Sets a cart's state as someone else would: a person, another channel, a rule.
    /// Completing gives the cart an order number. Panics on an unknown cart.
    pub fn set_cart_state(&self, cart_id: Uuid, state: CartState) {
        let mut s = self.state.lock();
        let cart = s
            .carts
            .get_mut(&cart_id)
            .unwrap_or_else(|| panic!("MemHantera: no cart {cart_id}"));
        cart.cart.cart_state = state;
        if state == CartState::Completed && cart.cart.order_number.is_none() {
            cart.cart.order_number = Some(format!("O-{}", cart_id.simple()));
        }
    }

    /// Changes a cart's total and currency, as a customer editing the cart would.
    /// Panics on an unknown cart.
    pub fn set_cart_total(&self, cart_id: Uuid, total: Money) {
        let mut s = self.state.lock();
        let cart = s
            .carts
            .get_mut(&cart_id)
            .unwrap_or_else(|| panic!("MemHantera: no cart {cart_id}"));
        cart.cart.currency_code = total.currency.code().to_string();
        cart.cart.order_total = total.to_decimal();
    }

    // ----- payments ------------------------------------------------------------------

    /// Every payment, in creation order.
    pub fn payments(&self) -> Vec<MemPayment> {
        let s = self.state.lock();
        s.payment_order
            .iter()
            .filter_map(|id| s.payments.get(id).cloned())
            .collect()
    }

    /// One payment.
    pub fn payment(&self, payment_id: Uuid) -> Option<MemPayment> {
        self.state.lock().payments.get(&payment_id).cloned()
    }

    /// The payment holding an external reference.
    pub fn payment_by_reference(&self, external_reference: &str) -> Option<MemPayment> {
        let s = self.state.lock();
        s.by_reference
            .get(external_reference)
            .and_then(|id| s.payments.get(id).cloned())
    }

    /// Creates a payment directly, without logging a call, as something other than the
    /// gateway would (a person, an older deployment). Panics when the id or the external
    /// reference is taken.
    pub fn seed_payment(&self, payment_id: Uuid, payment: &NewPayment) {
        let mut s = self.state.lock();
        let outcome = s.create_payment(payment_id, payment);
        assert_eq!(
            outcome,
            CreateOutcome::Created,
            "MemHantera: seed_payment could not create {payment_id}"
        );
    }

    // ----- the call log --------------------------------------------------------------

    /// Every call so far, in arrival order.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.state.lock().calls.clone()
    }

    /// How many calls of `op` arrived (including failed ones).
    pub fn count(&self, op: Op) -> usize {
        self.state
            .lock()
            .calls
            .iter()
            .filter(|c| c.call.op() == op)
            .count()
    }

    /// How many calls of `op` changed Hantera's state (a lost answer counts).
    pub fn applied(&self, op: Op) -> usize {
        self.state
            .lock()
            .calls
            .iter()
            .filter(|c| c.call.op() == op && c.changed)
            .count()
    }

    /// The position in the log of the first call of `op` that changed the state.
    pub fn first_applied(&self, op: Op) -> Option<usize> {
        self.state
            .lock()
            .calls
            .iter()
            .position(|c| c.call.op() == op && c.changed)
    }

    /// Forgets the log (not the state), so a test can look at one phase alone.
    pub fn clear_calls(&self) {
        self.state.lock().calls.clear();
    }

    // ----- faults --------------------------------------------------------------------

    /// The next `n` calls of `op` fail with `Unavailable` before doing anything.
    pub fn fail_next(&self, op: Op, n: usize) {
        self.push(op, n, Action::Fail(unavailable(op)));
    }

    /// The next `n` calls of `op` fail with `error` before doing anything.
    pub fn fail_next_with(&self, op: Op, n: usize, error: HanteraError) {
        self.push(op, n, Action::Fail(error));
    }

    /// The next `n` calls of `op` are applied, but the caller gets `Unavailable`, as when
    /// a connection drops after Hantera committed the batch.
    pub fn apply_then_lose_answer(&self, op: Op, n: usize) {
        self.push(op, n, Action::ApplyThenFail(unavailable(op)));
    }

    /// The next `n` calls of `op` behave normally. Queued before other faults, this aims a
    /// fault at a later call, e.g. the second `get_cart` of a completion.
    pub fn pass_next(&self, op: Op, n: usize) {
        self.push(op, n, Action::Pass);
    }

    /// The next `n` reads of `op` answer "not found", as a lagging index would. Only
    /// `GetCart`, `FindPayment` and `PaymentJournal` can miss; panics for other operations.
    pub fn answer_none_next(&self, op: Op, n: usize) {
        assert!(
            matches!(op, Op::GetCart | Op::FindPayment | Op::PaymentJournal),
            "MemHantera: only reads can answer none, not {op:?}"
        );
        self.push(op, n, Action::AnswerNone);
    }

    /// Holds the next call of `op` until [`Hold::release`]; [`Hold::reached`] says when it
    /// has arrived. Queued like the faults, so it can follow `pass_next`.
    pub fn hold_next(&self, op: Op) -> Hold {
        let hold = Hold {
            gate: Arc::new(Gate {
                reached: tokio::sync::Semaphore::new(0),
                released: tokio::sync::Semaphore::new(0),
            }),
        };
        self.push(op, 1, Action::Hold(hold.clone()));
        hold
    }

    /// Removes every scripted fault.
    pub fn clear_faults(&self) {
        self.state.lock().faults.clear();
    }

    fn push(&self, op: Op, n: usize, action: Action) {
        let mut s = self.state.lock();
        let queue = s.faults.entry(op).or_default();
        queue.extend(std::iter::repeat_n(action, n));
    }

    /// Runs one call: takes the next scripted action, applies `apply` under the lock when
    /// the action lets it, logs, and answers. `apply` returns the answer and whether the
    /// state changed. `none` is the answer of a read that misses.
    async fn run<T>(
        &self,
        call: Call,
        none: Option<T>,
        apply: impl FnOnce(&mut State) -> (Result<T, HanteraError>, bool),
    ) -> Result<T, HanteraError> {
        // A yield point per call lets concurrent callers interleave the way they would
        // against a remote Hantera, instead of each running to completion in turn.
        tokio::task::yield_now().await;
        let action = self
            .state
            .lock()
            .faults
            .get_mut(&call.op())
            .and_then(VecDeque::pop_front)
            .unwrap_or(Action::Pass);
        if let Action::Hold(hold) = &action {
            hold.gate.reached.add_permits(1);
            hold.gate
                .released
                .acquire()
                .await
                .expect("the gate is never closed")
                .forget();
        }
        let mut s = self.state.lock();
        let (answer, changed) = match action {
            Action::Pass | Action::Hold(_) => apply(&mut s),
            Action::Fail(e) => (Err(e), false),
            Action::ApplyThenFail(e) => {
                let (_, changed) = apply(&mut s);
                (Err(e), changed)
            }
            Action::AnswerNone => match none {
                Some(none) => (Ok(none), false),
                None => apply(&mut s),
            },
        };
        s.calls.push(CallRecord {
            call,
            changed,
            error: answer.as_ref().err().cloned(),
        });
        answer
    }
}

impl State {
    fn create_payment(&mut self, payment_id: Uuid, p: &NewPayment) -> CreateOutcome {
        if self.payments.contains_key(&payment_id) {
            return CreateOutcome::AlreadyExists;
        }
        if self.by_reference.contains_key(&p.external_reference) {
            return CreateOutcome::DuplicateExternalReference;
        }
        self.next_number += 1;
        let payment = MemPayment {
            payment_id,
            provider_key: p.provider_key.clone(),
            external_reference: p.external_reference.clone(),
            currency_code: p.amount.currency.code().to_string(),
            payment_number: format!("{}{}", p.payment_number_prefix, 1000 + self.next_number),
            authorizations: vec![MemAuthorization {
                authorization_number: p.authorization_number.clone(),
                amount: p.amount.to_decimal(),
                authorization_state: "successful".into(),
            }],
            charges: Vec::new(),
            activity: Vec::new(),
            tags: Vec::new(),
        };
        self.by_reference
            .insert(p.external_reference.clone(), payment_id);
        self.payments.insert(payment_id, payment);
        self.payment_order.push(payment_id);
        CreateOutcome::Created
    }

    fn link_and_complete(&mut self, cart_id: Uuid, payment_id: Uuid) -> Result<(), HanteraError> {
        // Everything is checked before anything changes: the batch is atomic.
        let payment_exists = self.payments.contains_key(&payment_id);
        let Some(cart) = self.carts.get_mut(&cart_id) else {
            return Err(api(404, "NOT_FOUND", format!("ticket {cart_id} not found")));
        };
        if !payment_exists {
            return Err(api(
                500,
                "INVALID_COMMAND",
                format!("createRelation: node {payment_id} is no payment"),
            ));
        }
        if cart.cart.cart_state != CartState::Open {
            return Err(api(500, "INVALID_COMMAND", "ticket is not open"));
        }
        if !cart.payments.contains(&payment_id) {
            cart.payments.push(payment_id);
        }
        cart.cart.cart_state = CartState::Completed;
        cart.cart.order_number = Some(format!("O-{}", cart_id.simple()));
        Ok(())
    }

    fn charge(&mut self, payment_id: Uuid, charge: &Charge) -> Result<(), HanteraError> {
        let Some(payment) = self.payments.get_mut(&payment_id) else {
            return Err(api(
                404,
                "NOT_FOUND",
                format!("payment {payment_id} not found"),
            ));
        };
        if let Some(number) = &charge.authorization_number {
            if !payment
                .authorizations
                .iter()
                .any(|a| &a.authorization_number == number)
            {
                return Err(api(
                    500,
                    "INVALID_COMMAND",
                    format!("charge: no authorization {number}"),
                ));
            }
        }
        payment.charges.push(charge.clone());
        Ok(())
    }
}

#[async_trait]
impl Hantera for MemHantera {
    async fn get_cart(&self, cart_id: Uuid) -> Result<Option<RenderedCart>, HanteraError> {
        self.run(Call::GetCart { cart_id }, Some(None), |s| {
            (Ok(s.carts.get(&cart_id).map(|c| c.cart.clone())), false)
        })
        .await
    }

    async fn find_payment(
        &self,
        external_reference: &str,
    ) -> Result<Option<PaymentRef>, HanteraError> {
        let call = Call::FindPayment {
            external_reference: external_reference.to_string(),
        };
        self.run(call, Some(None), |s| {
            let found = s
                .by_reference
                .get(external_reference)
                .and_then(|id| s.payments.get(id))
                .map(|p| PaymentRef {
                    payment_id: p.payment_id,
                    payment_number: Some(p.payment_number.clone()),
                });
            (Ok(found), false)
        })
        .await
    }

    async fn create_payment(
        &self,
        payment_id: Uuid,
        payment: &NewPayment,
    ) -> Result<CreateOutcome, HanteraError> {
        let call = Call::CreatePayment {
            payment_id,
            external_reference: payment.external_reference.clone(),
        };
        self.run(call, None, |s| {
            let outcome = s.create_payment(payment_id, payment);
            (Ok(outcome), outcome == CreateOutcome::Created)
        })
        .await
    }

    async fn link_and_complete(&self, cart_id: Uuid, payment_id: Uuid) -> Result<(), HanteraError> {
        self.run(
            Call::LinkAndComplete {
                cart_id,
                payment_id,
            },
            None,
            |s| {
                let result = s.link_and_complete(cart_id, payment_id);
                let changed = result.is_ok();
                (result, changed)
            },
        )
        .await
    }

    async fn charge(&self, payment_id: Uuid, charge: &Charge) -> Result<(), HanteraError> {
        let call = Call::Charge {
            payment_id,
            amount: charge.amount,
        };
        self.run(call, None, |s| {
            let result = s.charge(payment_id, charge);
            let changed = result.is_ok();
            (result, changed)
        })
        .await
    }

    async fn payment_journal(
        &self,
        payment_id: Uuid,
    ) -> Result<Option<Vec<JournalEntry>>, HanteraError> {
        let call = Call::PaymentJournal { payment_id };
        self.run(call, Some(None), |s| {
            let journal = s.payments.get(&payment_id).map(|p| {
                p.charges
                    .iter()
                    .map(|c| JournalEntry {
                        entry_type: "charge".into(),
                        amount: c.amount,
                        authorization_number: c.authorization_number.clone(),
                        transaction_reference: c.transaction_reference.clone(),
                    })
                    .collect()
            });
            (Ok(journal), false)
        })
        .await
    }

    async fn cart_payment_ids(&self, cart_id: Uuid) -> Result<Option<Vec<Uuid>>, HanteraError> {
        self.run(Call::CartPayments { cart_id }, None, |s| {
            (Ok(s.carts.get(&cart_id).map(|c| c.payments.clone())), false)
        })
        .await
    }

    async fn add_payment_activity(
        &self,
        payment_id: Uuid,
        message: &str,
    ) -> Result<(), HanteraError> {
        let call = Call::PaymentActivity {
            payment_id,
            message: message.to_string(),
        };
        self.run(call, None, |s| match s.payments.get_mut(&payment_id) {
            Some(p) => {
                p.activity.push(message.to_string());
                (Ok(()), true)
            }
            None => (
                Err(api(
                    404,
                    "NOT_FOUND",
                    format!("payment {payment_id} not found"),
                )),
                false,
            ),
        })
        .await
    }

    async fn flag_payment(
        &self,
        payment_id: Uuid,
        tag: &str,
        message: &str,
    ) -> Result<(), HanteraError> {
        let call = Call::FlagPayment {
            payment_id,
            tag: tag.to_string(),
            message: message.to_string(),
        };
        self.run(call, None, |s| match s.payments.get_mut(&payment_id) {
            Some(p) => {
                if !p.tags.iter().any(|t| t == tag) {
                    p.tags.push(tag.to_string());
                }
                p.activity.push(message.to_string());
                (Ok(()), true)
            }
            None => (
                Err(api(
                    404,
                    "NOT_FOUND",
                    format!("payment {payment_id} not found"),
                )),
                false,
            ),
        })
        .await
    }

    async fn set_cart_fields(
        &self,
        cart_id: Uuid,
        fields: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), HanteraError> {
        let call = Call::SetCartFields {
            cart_id,
            fields: fields.clone(),
        };
        self.run(call, None, |s| match s.carts.get_mut(&cart_id) {
            Some(c) => {
                for (k, v) in fields {
                    if v.is_null() {
                        c.fields.remove(k);
                    } else {
                        c.fields.insert(k.clone(), v.clone());
                    }
                }
                (Ok(()), true)
            }
            None => (
                Err(api(404, "NOT_FOUND", format!("cart {cart_id} not found"))),
                false,
            ),
        })
        .await
    }

    async fn ping(&self) -> Result<(), HanteraError> {
        self.run(Call::Ping, None, |_| (Ok(()), false)).await
    }
}

//! Telling the outside world that a cart changed.
//!
//! Every change to a cart, whether a storefront mutation or an actor batch (the gateway
//! linking a payment and completing the cart), is [`publish`]ed while the state lock is
//! still held, so that listeners see changes in the order they took effect:
//! - SSE subscribers of `GET /ingress/commerce/carts/{cartId}/events` get an `updated`
//!   event with the rendered cart, or `error` when the cart was rejected (it can no longer
//!   be paid);
//! - a storefront mutation is also forwarded to the gateway as `OnCartMutation`, as
//!   Hantera's Commerce app fires that hook after every successful mutation and not after
//!   actor messages.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::stream::{self, Stream, StreamExt};
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use crate::commerce::{parse_cart_id, render_value};
use crate::error::ApiError;
use crate::hooks;
use crate::state::{Inner, Shared, TicketState};

/// How many cart changes an SSE subscriber may fall behind before it skips to the
/// current cart. Skipping loses nothing a subscriber needs: every event carries the whole
/// cart.
pub(crate) const EVENT_BUFFER: usize = 1024;

/// What kind of change a [`CartEvent`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventKind {
    /// The cart changed; sent as the SSE event `updated`.
    Updated,
    /// The cart was rejected; sent as the SSE event `error`.
    Error,
    /// The sandbox was reset and every cart is gone: every stream ends.
    Reset,
}

/// One change to one cart, with the cart as rendered right after it.
#[derive(Debug, Clone)]
pub(crate) struct CartEvent {
    pub(crate) cart_id: Uuid,
    pub(crate) kind: EventKind,
    pub(crate) cart: Arc<str>,
}

/// Who changed the cart, which decides whether the gateway hears of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// A storefront call to the Commerce ingress: forwarded as `OnCartMutation`.
    Storefront,
    /// An actor batch: only published to SSE subscribers.
    Actor,
}

/// Publishes the current state of cart `cart_id` (already stored in `inner`).
pub(crate) fn publish(shared: &Arc<Shared>, inner: &mut Inner, cart_id: Uuid, source: Source) {
    let listening = shared.events.receiver_count() > 0;
    let forwarding = source == Source::Storefront && shared.hooks.target.is_some();
    // Nobody listening and nothing to forward is the common case under load (the
    // gateway completing carts): the cart is then not even rendered.
    if !listening && !forwarding {
        return;
    }
    let Some(ticket) = inner.world.tickets.get(&cart_id) else {
        return;
    };
    let kind = if ticket.state == TicketState::Rejected {
        EventKind::Error
    } else {
        EventKind::Updated
    };
    let cart = render_value(ticket);
    if listening {
        let _ = shared.events.send(CartEvent {
            cart_id,
            kind,
            cart: cart.to_string().into(),
        });
    }
    if forwarding {
        let mut body = serde_json::Map::new();
        body.insert("hook".into(), Value::String("OnCartMutation".into()));
        if let Value::Object(fields) = cart {
            body.extend(fields);
        }
        hooks::enqueue(
            shared,
            &mut inner.outbox,
            "OnCartMutation",
            Some(cart_id),
            Value::Object(body),
        );
    }
}

/// Tells every SSE stream that the carts are gone (after a reset).
pub(crate) fn publish_reset(shared: &Shared) {
    let _ = shared.events.send(CartEvent {
        cart_id: Uuid::nil(),
        kind: EventKind::Reset,
        cart: "".into(),
    });
}

fn sse_event(kind: EventKind, data: &str) -> Event {
    let name = match kind {
        EventKind::Updated | EventKind::Reset => "updated",
        EventKind::Error => "error",
    };
    Event::default().event(name).data(data)
}

/// What a subscriber's stream holds between events.
struct Subscriber {
    shared: Arc<Shared>,
    cart_id: Uuid,
    events: tokio::sync::broadcast::Receiver<CartEvent>,
    closing: tokio::sync::watch::Receiver<bool>,
}

impl Subscriber {
    /// The next event for this cart, or `None` when the stream should end.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if *self.closing.borrow() {
                return None;
            }
            tokio::select! {
                // Either the sandbox is closing its streams or it is gone: end.
                _ = self.closing.changed() => return None,
                received = self.events.recv() => match received {
                    Ok(event) if event.kind == EventKind::Reset => return None,
                    Ok(event) if event.cart_id == self.cart_id => {
                        return Some(sse_event(event.kind, &event.cart));
                    }
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_)) => {
                        // Missed events are replaced by the cart as it is now.
                        let state = self.shared.state.lock();
                        let ticket = state.world.tickets.get(&self.cart_id)?;
                        let kind = if ticket.state == TicketState::Rejected {
                            EventKind::Error
                        } else {
                            EventKind::Updated
                        };
                        return Some(sse_event(kind, &render_value(ticket).to_string()));
                    }
                    Err(RecvError::Closed) => return None,
                },
            }
        }
    }
}

/// `GET /ingress/commerce/carts/{cartId}/events`: `init` with the cart as it is, then
/// `updated` (or `error`) after every change, until the client goes away.
pub(crate) async fn stream_cart(
    State(shared): State<Arc<Shared>>,
    Path(raw_id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let cart_id = parse_cart_id(&raw_id)?;
    // Subscribing under the lock that also guards changes means no change can fall
    // between the `init` snapshot and the first `updated`.
    let (init, events) = {
        let state = shared.state.lock();
        let ticket = state
            .world
            .tickets
            .get(&cart_id)
            .ok_or_else(|| ApiError::not_found(format!("no cart with id '{raw_id}'")))?;
        (render_value(ticket).to_string(), shared.events.subscribe())
    };
    let subscriber = Subscriber {
        closing: shared.closing.subscribe(),
        shared,
        cart_id,
        events,
    };
    let first = stream::once(async move { Ok(Event::default().event("init").data(init)) });
    let rest = stream::unfold(subscriber, |mut subscriber| async move {
        let event = subscriber.next().await?;
        Some((Ok(event), subscriber))
    });
    // Comments every 15 s keep proxies and browsers from timing out an idle stream.
    Ok(Sse::new(first.chain(rest)).keep_alive(KeepAlive::default()))
}

//! The public Commerce ingress (`/ingress/commerce/…`), as the storefront SDK's cart
//! client calls it.
//!
//! Every mutation answers the rendered cart ([`render`]). A mutation runs on a copy of
//! the cart and replaces it only when it succeeds, so a refused one changes nothing and
//! tells no one; a successful one is published to the cart's SSE subscribers and
//! forwarded to the gateway as `OnCartMutation` (see [`crate::events::publish`]). Only an
//! open cart can be changed: a completed or rejected one answers `CART_NOT_OPEN`.
//!
//! Errors are Hantera's ingress errors: `{"errors":[…]}`, 400 for every code but
//! `NOT_FOUND`, which is 404.

mod pricing;
mod render;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

pub(crate) use render::{render, render_value, RenderedCart};

use crate::catalog::{CartProfile, Catalog};
use crate::error::ApiError;
use crate::events::{publish, Source};
use crate::state::{
    now_rfc3339, ActivityLogEntry, Address, CartLine, InvoiceRecipient, OrderState, Shared, Ticket,
    TicketState,
};

/// The most units of one product a cart line may hold. Real shops cap quantities too;
/// here the cap also keeps every total far inside `Decimal`'s range, so that pricing can
/// never overflow.
pub(crate) const MAX_QUANTITY: i64 = 1_000_000;

/// Parses a cart id from the path. A malformed id is as unknown as a missing one, so
/// both answer `NOT_FOUND`, as Hantera does for a non-GUID.
pub(crate) fn parse_cart_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found(format!("no cart with id '{raw}'")))
}

fn no_cart(raw: &str) -> ApiError {
    ApiError::not_found(format!("no cart with id '{raw}'"))
}

/// Parses an ingress JSON body; an empty body reads as `{}`, because the SDK posts
/// `remove-field` and `cancel-order` with no body at all.
fn parse_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    let value: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request("INVALID_BODY", format!("body is not JSON: {e}")))?
    };
    serde_json::from_value(value)
        .map_err(|e| ApiError::bad_request("INVALID_BODY", format!("unexpected body: {e}")))
}

/// A whole number of units from 1 to [`MAX_QUANTITY`]; anything else (0, negative,
/// fractional, a string) is refused rather than coerced.
fn parse_quantity(raw: &Value) -> Result<i64, ApiError> {
    raw.as_i64()
        .filter(|q| (1..=MAX_QUANTITY).contains(q))
        .ok_or_else(|| {
            ApiError::bad_request(
                "INVALID_QUANTITY",
                format!("quantity must be a whole number from 1 to {MAX_QUANTITY}, got {raw}"),
            )
        })
}

/// Runs a storefront mutation on an open cart and answers the rendered cart.
///
/// The change is made on a copy, so an error leaves the cart as it was; the lock is held
/// throughout, so mutations of one cart apply (and are published) one at a time.
fn mutate(
    shared: &Arc<Shared>,
    raw_id: &str,
    change: impl FnOnce(&mut Ticket, &Catalog) -> Result<(), ApiError>,
) -> Result<Json<RenderedCart>, ApiError> {
    let id = parse_cart_id(raw_id)?;
    let mut state = shared.state.lock();
    let ticket = state
        .world
        .tickets
        .get(&id)
        .ok_or_else(|| no_cart(raw_id))?;
    if ticket.state != TicketState::Open {
        return Err(ApiError::bad_request(
            "CART_NOT_OPEN",
            format!(
                "the cart is {} and can no longer be changed",
                ticket.state.as_str()
            ),
        )
        .with_detail("cartState", ticket.state.as_str()));
    }
    let mut updated = ticket.clone();
    change(&mut updated, &shared.catalog)?;
    let rendered = render(&updated);
    state.world.tickets.insert(id, updated);
    publish(shared, &mut state, id, Source::Storefront);
    Ok(Json(rendered))
}

fn find_line<'t>(ticket: &'t mut Ticket, raw: &str) -> Result<&'t mut CartLine, ApiError> {
    let not_in_cart = || {
        ApiError::bad_request(
            "CART_ITEM_NOT_FOUND",
            format!("the cart has no item '{raw}'"),
        )
    };
    let id = Uuid::parse_str(raw).map_err(|_| not_in_cart())?;
    ticket
        .lines
        .iter_mut()
        .find(|line| line.cart_item_id == id)
        .ok_or_else(not_in_cart)
}

pub(crate) async fn cart_profiles(State(shared): State<Arc<Shared>>) -> Json<Vec<CartProfile>> {
    Json(shared.catalog.profiles.clone())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateCart {
    profile_key: Option<String>,
    locale: Option<String>,
    country_code: Option<String>,
}

/// Checks a country code against the profile's allowed countries and answers it in
/// upper case.
fn allowed_country(profile: &CartProfile, country: &str) -> Result<String, ApiError> {
    let upper = country.trim().to_ascii_uppercase();
    if profile.allowed_countries.contains(&upper) {
        Ok(upper)
    } else {
        Err(ApiError::bad_request(
            "INVALID_COUNTRY",
            format!(
                "country '{country}' is not allowed in profile '{}' (allowed: {})",
                profile.profile_key,
                profile.allowed_countries.join(", ")
            ),
        ))
    }
}

/// `POST /ingress/commerce/carts`. Creating a cart is not a mutation: it fires no hook.
pub(crate) async fn create_cart(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let request: CreateCart = parse_body(&body)?;
    let profile_key = request.profile_key.as_deref().unwrap_or("default");
    let profile = shared.catalog.profile(profile_key).ok_or_else(|| {
        ApiError::bad_request(
            "INVALID_PROFILE",
            format!("no cart profile '{profile_key}'"),
        )
    })?;
    let country_code = match request.country_code {
        Some(country) => allowed_country(profile, &country)?,
        None => profile.default_country_code.clone(),
    };
    let cart_id = Uuid::new_v4();
    let mut state = shared.state.lock();
    let ticket = Ticket {
        ticket_id: cart_id,
        type_key: "cart",
        ticket_number: state.world.next_cart_number(),
        state: TicketState::Open,
        profile: profile.clone(),
        locale: request.locale,
        country_code,
        email: None,
        phone: None,
        address: None,
        invoice_recipient: None,
        lines: Vec::new(),
        coupons: Vec::new(),
        relations: Vec::new(),
        dynamic: Map::new(),
        tags: Vec::new(),
        activity_log: Vec::new(),
        order_id: None,
        order_number: None,
        created_at: now_rfc3339(),
        closed_at: None,
        created_seq: state.world.next_created(),
    };
    state.world.tickets.insert(cart_id, ticket);
    Ok(Json(json!({ "cartId": cart_id })))
}

pub(crate) async fn get_cart(
    State(shared): State<Arc<Shared>>,
    Path(cart_id): Path<String>,
) -> Result<Json<RenderedCart>, ApiError> {
    let id = parse_cart_id(&cart_id)?;
    let state = shared.state.lock();
    let ticket = state
        .world
        .tickets
        .get(&id)
        .ok_or_else(|| no_cart(&cart_id))?;
    Ok(Json(render(ticket)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AddItem {
    product_number: String,
    quantity: Value,
}

/// `add-item`: adds units of a product, to its existing line if the cart has one.
pub(crate) async fn add_item(
    State(shared): State<Arc<Shared>>,
    Path(cart_id): Path<String>,
    body: Bytes,
) -> Result<Json<RenderedCart>, ApiError> {
    parse_cart_id(&cart_id)?;
    let request: AddItem = parse_body(&body)?;
    let quantity = parse_quantity(&request.quantity)?;
    mutate(&shared, &cart_id, |ticket, catalog| {
        let product = catalog.product(&request.product_number).ok_or_else(|| {
            ApiError::bad_request(
                "PRODUCT_NOT_FOUND",
                format!("no product '{}'", request.product_number),
            )
        })?;
        let currency = &ticket.profile.currency_code;
        let unit_price = *product.prices.get(currency).ok_or_else(|| {
            ApiError::bad_request(
                "PRODUCT_NOT_AVAILABLE",
                format!(
                    "product '{}' has no price in {currency}",
                    product.product_number
                ),
            )
        })?;
        match ticket
            .lines
            .iter_mut()
            .find(|line| line.product_number == product.product_number)
        {
            Some(line) => {
                let total = line.quantity + quantity;
                if total > MAX_QUANTITY {
                    return Err(ApiError::bad_request(
                        "INVALID_QUANTITY",
                        format!("a line holds at most {MAX_QUANTITY} units"),
                    ));
                }
                line.quantity = total;
            }
            None => ticket.lines.push(CartLine {
                cart_item_id: Uuid::new_v4(),
                product_number: product.product_number.clone(),
                quantity,
                description: Some(product.name.clone()),
                image: Some(product.image.clone()),
                unit_price,
            }),
        }
        Ok(())
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RemoveItem {
    cart_item_id: String,
}

pub(crate) async fn remove_item(
    State(shared): State<Arc<Shared>>,
    Path(cart_id): Path<String>,
    body: Bytes,
) -> Result<Json<RenderedCart>, ApiError> {
    parse_cart_id(&cart_id)?;
    let request: RemoveItem = parse_body(&body)?;
    mutate(&shared, &cart_id, |ticket, _| {
        let id = find_line(ticket, &request.cart_item_id)?.cart_item_id;
        ticket.lines.retain(|line| line.cart_item_id != id);
        Ok(())
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SetQuantity {
    cart_item_id: String,
    quantity: Value,
}

pub(crate) async fn set_quantity(
    State(shared): State<Arc<Shared>>,
    Path(cart_id): Path<String>,
    body: Bytes,
) -> Result<Json<RenderedCart>, ApiError> {
    parse_cart_id(&cart_id)?;
    let request: SetQuantity = parse_body(&body)?;
    let quantity = parse_quantity(&request.quantity)?;
    mutate(&shared, &cart_id, |ticket, _| {
        find_line(ticket, &request.cart_item_id)?.quantity = quantity;
        Ok(())
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CouponRequest {
    coupon_code: String,
}

pub(crate) async fn add_coupon(
    State(shared): State<Arc<Shared>>,
    Path(cart_id): Path<String>,
    body: Bytes,
) -> Result<Json<RenderedCart>, ApiError> {
    parse_cart_id(&cart_id)?;
    let request: CouponRequest = parse_body(&body)?;
    mutate(&shared, &cart_id, |ticket, catalog| {
        let coupon = catalog.coupon(&request.coupon_code).ok_or_else(|| {
            ApiError::bad_request(
                "COUPON_NOT_FOUND",
                format!("no coupon '{}'", request.coupon_code.trim()),
            )
        })?;
        if ticket.coupons.iter().any(|c| c.code == coupon.code) {
            return Err(ApiError::bad_request(
                "COUPON_ALREADY_ADDED",
                format!("coupon '{}' is already on the cart", coupon.code),
            ));
        }
        ticket.coupons.push(coupon.clone());
        Ok(())
    })
}

pub(crate) async fn remove_coupon(
    State(shared): State<Arc<Shared>>,
    Path(cart_id): Path<String>,
    body: Bytes,
) -> Result<Json<RenderedCart>, ApiError> {
    parse_cart_id(&cart_id)?;
    let request: CouponRequest = parse_body(&body)?;
    mutate(&shared, &cart_id, |ticket, _| {
        let before = ticket.coupons.len();
        ticket
            .coupons
            .retain(|c| !c.code.eq_ignore_ascii_case(request.coupon_code.trim()));
        if ticket.coupons.len() == before {
            return Err(ApiError::bad_request(
                "COUPON_NOT_IN_CART",
                format!("coupon '{}' is not on the cart", request.coupon_code.trim()),
            ));
        }
        Ok(())
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SetAddress {
    address: Option<Address>,
    /// An `InvoiceRecipient`, or the string `"unset"` to remove it.
    invoice_recipient: Option<Value>,
}

/// `address`: sets the delivery address, the invoice recipient, or both; each country
/// must be one the cart's profile allows.
pub(crate) async fn set_address(
    State(shared): State<Arc<Shared>>,
    Path(cart_id): Path<String>,
    body: Bytes,
) -> Result<Json<RenderedCart>, ApiError> {
    parse_cart_id(&cart_id)?;
    let request: SetAddress = parse_body(&body)?;
    let invoice = match request.invoice_recipient {
        None => None,
        Some(Value::String(s)) if s == "unset" => Some(None),
        Some(value) => Some(Some(
            serde_json::from_value::<InvoiceRecipient>(value).map_err(|e| {
                ApiError::bad_request(
                    "INVALID_BODY",
                    format!("invoiceRecipient must be an address or \"unset\": {e}"),
                )
            })?,
        )),
    };
    if request.address.is_none() && invoice.is_none() {
        return Err(ApiError::bad_request(
            "INVALID_BODY",
            "give an address, an invoiceRecipient, or both",
        ));
    }
    mutate(&shared, &cart_id, |ticket, _| {
        if let Some(mut address) = request.address {
            if let Some(country) = &address.country_code {
                let country = allowed_country(&ticket.profile, country)?;
                ticket.country_code = country.clone();
                address.country_code = Some(country);
            }
            ticket.address = Some(address);
        }
        if let Some(invoice) = invoice {
            ticket.invoice_recipient = match invoice {
                Some(mut recipient) => {
                    if let Some(country) = &recipient.country_code {
                        recipient.country_code = Some(allowed_country(&ticket.profile, country)?);
                    }
                    Some(recipient)
                }
                None => None,
            };
        }
        Ok(())
    })
}

#[derive(Deserialize)]
struct SetEmail {
    email: String,
}

/// A plausible e-mail address: one `@` between a local part and a dotted domain, no
/// spaces. Real validation is sending mail; this only catches what is plainly not one.
fn plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && email.len() <= 254
        && !email.chars().any(char::is_whitespace)
}

pub(crate) async fn set_email(
    State(shared): State<Arc<Shared>>,
    Path(cart_id): Path<String>,
    body: Bytes,
) -> Result<Json<RenderedCart>, ApiError> {
    parse_cart_id(&cart_id)?;
    let SetEmail { email } = parse_body(&body)?;
    let email = email.trim().to_owned();
    if !plausible_email(&email) {
        return Err(ApiError::bad_request(
            "INVALID_EMAIL",
            format!("'{email}' is not an e-mail address"),
        ));
    }
    mutate(&shared, &cart_id, |ticket, _| {
        ticket.email = Some(email);
        Ok(())
    })
}

#[derive(Deserialize)]
struct SetPhone {
    phone: String,
}

/// A plausible phone number: digits with the usual separators and an optional leading
/// `+`, at least five digits.
fn plausible_phone(phone: &str) -> bool {
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    let body = phone.strip_prefix('+').unwrap_or(phone);
    (5..=20).contains(&digits)
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '(' | ')' | '.'))
}

pub(crate) async fn set_phone(
    State(shared): State<Arc<Shared>>,
    Path(cart_id): Path<String>,
    body: Bytes,
) -> Result<Json<RenderedCart>, ApiError> {
    parse_cart_id(&cart_id)?;
    let SetPhone { phone } = parse_body(&body)?;
    let phone = phone.trim().to_owned();
    if !plausible_phone(&phone) {
        return Err(ApiError::bad_request(
            "INVALID_PHONE",
            format!("'{phone}' is not a phone number"),
        ));
    }
    mutate(&shared, &cart_id, |ticket, _| {
        ticket.phone = Some(phone);
        Ok(())
    })
}

/// A custom field's key: what fits in a URL segment and a dynamic field name.
fn check_field_key(key: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&key.len())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "INVALID_FIELD_KEY",
            format!("field key '{key}' must be 1 to 64 letters, digits, '_', '-' or '.'"),
        ))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetField {
    value: Value,
}

/// `set-field/{key}`: stored as the dynamic field `field:{key}` on the ticket, shown
/// under `fields`. A `null` value removes the field, as `setDynamicFields` does.
pub(crate) async fn set_field(
    State(shared): State<Arc<Shared>>,
    Path((cart_id, key)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<RenderedCart>, ApiError> {
    parse_cart_id(&cart_id)?;
    check_field_key(&key)?;
    let raw: Value = parse_body(&body)?;
    if raw.get("value").is_none() {
        return Err(ApiError::bad_request(
            "INVALID_BODY",
            "expected {\"value\": …}",
        ));
    }
    let SetField { value } = serde_json::from_value(raw)
        .map_err(|e| ApiError::bad_request("INVALID_BODY", format!("unexpected body: {e}")))?;
    mutate(&shared, &cart_id, |ticket, _| {
        let name = format!("field:{key}");
        if value.is_null() {
            ticket.dynamic.remove(&name);
        } else {
            ticket.dynamic.insert(name, value);
        }
        Ok(())
    })
}

/// `remove-field/{key}`: removing a field the cart does not have succeeds and changes
/// nothing, as `setDynamicFields` with `null` does.
pub(crate) async fn remove_field(
    State(shared): State<Arc<Shared>>,
    Path((cart_id, key)): Path<(String, String)>,
) -> Result<Json<RenderedCart>, ApiError> {
    parse_cart_id(&cart_id)?;
    check_field_key(&key)?;
    mutate(&shared, &cart_id, |ticket, _| {
        ticket.dynamic.remove(&format!("field:{key}"));
        Ok(())
    })
}

/// `cancel-order`: cancels the order a completed cart became, while nothing of it has
/// been captured (the sandbox's stand-in for "before any delivery enters processing").
///
/// It changes the order, not the cart, so it is the one cart endpoint that needs a
/// completed cart, and it publishes nothing and fires no `OnCartMutation`.
pub(crate) async fn cancel_order(
    State(shared): State<Arc<Shared>>,
    Path(cart_id): Path<String>,
) -> Result<Json<RenderedCart>, ApiError> {
    let id = parse_cart_id(&cart_id)?;
    let mut state = shared.state.lock();
    let world = &mut state.world;
    let ticket = world.tickets.get(&id).ok_or_else(|| no_cart(&cart_id))?;
    let Some(order_id) = ticket.order_id else {
        return Err(ApiError::bad_request(
            "NO_ORDER",
            format!("cart {cart_id} has no order to cancel"),
        ));
    };
    let captured = world
        .payments
        .values()
        .flat_map(|p| &p.captures)
        .any(|c| c.order_id == order_id);
    let order = world
        .orders
        .get_mut(&order_id)
        .ok_or_else(|| no_cart(&cart_id))?;
    if order.order_state == OrderState::Cancelled {
        return Err(ApiError::bad_request(
            "CANCEL_ORDER_FAILED",
            format!("order {} is already cancelled", order.order_number),
        ));
    }
    if captured {
        return Err(ApiError::bad_request(
            "CANCEL_ORDER_FAILED",
            format!(
                "order {} has captured payments and can no longer be cancelled",
                order.order_number
            ),
        ));
    }
    let now = now_rfc3339();
    order.order_state = OrderState::Cancelled;
    order.cancelled_at = Some(now.clone());
    let message = format!("Order {} cancelled by the customer", order.order_number);
    let ticket = world
        .tickets
        .get_mut(&id)
        .ok_or_else(|| no_cart(&cart_id))?;
    ticket.activity_log.push(ActivityLogEntry {
        message_template: message,
        dynamic: None,
        created_at: now,
    });
    Ok(Json(render(ticket)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plausible_emails_and_phones_are_told_from_typos() {
        assert!(plausible_email("ada@example.com"));
        for bad in [
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
        ] {
            assert!(!plausible_email(bad), "{bad}");
        }
        assert!(plausible_phone("+46 70-123 45 67"));
        assert!(plausible_phone("(08) 123456"));
        for bad in ["", "123", "call me", "+46 70 123 45 67 ext. 5"] {
            assert!(!plausible_phone(bad), "{bad}");
        }
    }

    #[test]
    fn field_keys_must_fit_a_url_segment() {
        assert!(check_field_key("paymentProvider").is_ok());
        assert!(check_field_key("a.b-c_d").is_ok());
        assert!(check_field_key("").is_err());
        assert!(check_field_key("has space").is_err());
        assert!(check_field_key(&"k".repeat(65)).is_err());
    }
}

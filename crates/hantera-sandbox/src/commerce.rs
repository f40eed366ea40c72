//! The public Commerce ingress (`/ingress/commerce/…`) and the rendered cart.
//!
//! Pricing is exact decimal arithmetic:
//! - a line's total is `unitPrice × quantity − discount`;
//! - a line's tax is `total × rate / (1 + rate)` when prices include tax and
//!   `total × rate` when they do not, rounded per line to the currency's decimals, half
//!   away from zero;
//! - shipping is taxed the same way;
//! - `orderTotal` is the line totals plus shipping, plus all tax when prices exclude it;
//!   `orderTaxTotal` is the line taxes plus the shipping tax.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::catalog::{round_money, CartProfile};
use crate::error::ApiError;
use crate::state::{now_rfc3339, Amount, CartLine, Shared, Ticket, TicketState};

/// The most units of one product a cart line may hold. Real shops cap quantities too;
/// here the cap also keeps every total far inside `Decimal`'s range, so that pricing can
/// never overflow.
const MAX_QUANTITY: i64 = 1_000_000;

/// One rendered cart line, in Hantera's field names.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RenderedItem {
    cart_item_id: Uuid,
    product_number: String,
    quantity: i64,
    description: Option<String>,
    image: Option<String>,
    total: Amount,
    tax: Amount,
    unit_price: Amount,
    discount: Amount,
}

/// The rendered cart: every field of Hantera's storefront cart, null or empty where the
/// sandbox has nothing to put.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RenderedCart {
    cart_id: Uuid,
    cart_number: String,
    cart_state: TicketState,
    profile_key: String,
    order_id: Option<Uuid>,
    order_number: Option<String>,
    channel_key: String,
    currency_code: String,
    tax_included: bool,
    locale: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    coupons: Vec<Value>,
    fields: Map<String, Value>,
    pub(crate) product_total: Amount,
    pub(crate) order_total: Amount,
    pub(crate) order_tax_total: Amount,
    shipping_total: Amount,
    shipping_tax: Amount,
    shipping_discount: Amount,
    address: Option<Value>,
    invoice_address: Option<Value>,
    pub(crate) items: Vec<RenderedItem>,
    promotions: Vec<Value>,
}

/// The priced amounts of a cart.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Totals {
    /// `(total, tax)` per line, in line order.
    pub(crate) lines: Vec<(Decimal, Decimal)>,
    pub(crate) product_total: Decimal,
    pub(crate) shipping_total: Decimal,
    pub(crate) shipping_tax: Decimal,
    pub(crate) shipping_discount: Decimal,
    pub(crate) order_total: Decimal,
    pub(crate) order_tax_total: Decimal,
}

/// Prices cart lines under a profile; see the module documentation for the rules.
pub(crate) fn price(lines: &[CartLine], profile: &CartProfile) -> Totals {
    let currency = profile.currency_code.as_str();
    let tax_of = |amount: Decimal| {
        let rate = profile.tax_rate;
        let raw = if profile.tax_included {
            amount * rate / (Decimal::ONE + rate)
        } else {
            amount * rate
        };
        round_money(raw, currency)
    };
    let priced: Vec<(Decimal, Decimal)> = lines
        .iter()
        .map(|line| {
            let total = round_money(
                line.unit_price * Decimal::from(line.quantity) - line.discount,
                currency,
            );
            (total, tax_of(total))
        })
        .collect();
    let zero = round_money(Decimal::ZERO, currency);
    let product_total = priced.iter().fold(zero, |sum, (total, _)| sum + total);
    // An empty cart ships nothing, so it owes no shipping.
    let shipping_total = if lines.is_empty() {
        zero
    } else {
        round_money(profile.shipping, currency)
    };
    let shipping_discount = zero;
    let shipping_tax = tax_of(shipping_total - shipping_discount);
    let order_tax_total = priced.iter().fold(shipping_tax, |sum, (_, tax)| sum + tax);
    let mut order_total = product_total + shipping_total - shipping_discount;
    if !profile.tax_included {
        order_total += order_tax_total;
    }
    Totals {
        lines: priced,
        product_total,
        shipping_total,
        shipping_tax,
        shipping_discount,
        order_total,
        order_tax_total,
    }
}

/// Renders a cart ticket the way `GET /ingress/commerce/carts/{cartId}` answers.
pub(crate) fn render(ticket: &Ticket) -> RenderedCart {
    let totals = price(&ticket.lines, &ticket.profile);
    let items = ticket
        .lines
        .iter()
        .zip(&totals.lines)
        .map(|(line, (total, tax))| RenderedItem {
            cart_item_id: line.cart_item_id,
            product_number: line.product_number.clone(),
            quantity: line.quantity,
            description: line.description.clone(),
            image: line.image.clone(),
            total: Amount(*total),
            tax: Amount(*tax),
            unit_price: Amount(line.unit_price),
            discount: Amount(line.discount),
        })
        .collect();
    // Commerce stores custom cart fields as `field:`-prefixed dynamic fields on the
    // ticket and shows them without the prefix.
    let fields = ticket
        .dynamic
        .iter()
        .filter_map(|(key, value)| {
            key.strip_prefix("field:")
                .map(|name| (name.to_owned(), value.clone()))
        })
        .collect();
    RenderedCart {
        cart_id: ticket.ticket_id,
        cart_number: ticket.ticket_number.clone(),
        cart_state: ticket.state,
        profile_key: ticket.profile.profile_key.clone(),
        order_id: ticket.order_id,
        order_number: ticket.order_number.clone(),
        channel_key: ticket.profile.channel_key.clone(),
        currency_code: ticket.profile.currency_code.clone(),
        tax_included: ticket.profile.tax_included,
        locale: ticket.locale.clone(),
        email: ticket.email.clone(),
        phone: ticket.phone.clone(),
        coupons: Vec::new(),
        fields,
        product_total: Amount(totals.product_total),
        order_total: Amount(totals.order_total),
        order_tax_total: Amount(totals.order_tax_total),
        shipping_total: Amount(totals.shipping_total),
        shipping_tax: Amount(totals.shipping_tax),
        shipping_discount: Amount(totals.shipping_discount),
        address: None,
        invoice_address: None,
        items,
        promotions: Vec::new(),
    }
}

/// Parses a cart id from the path. A malformed id is as unknown as a missing one, so
/// both answer `NOT_FOUND`, as Hantera does for a non-GUID.
pub(crate) fn parse_cart_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found(format!("no cart with id '{raw}'")))
}

/// Parses an ingress JSON body; an empty body reads as `{}` so that a bare `POST` works.
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
        Some(country) if !profile.allowed_countries.contains(&country) => {
            return Err(ApiError::bad_request(
                "INVALID_COUNTRY",
                format!(
                    "country '{country}' is not allowed in profile '{profile_key}' (allowed: {})",
                    profile.allowed_countries.join(", ")
                ),
            ));
        }
        Some(country) => country,
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
        lines: Vec::new(),
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
        .ok_or_else(|| ApiError::not_found(format!("no cart with id '{cart_id}'")))?;
    Ok(Json(render(ticket)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AddItem {
    product_number: String,
    quantity: Value,
}

pub(crate) async fn add_item(
    State(shared): State<Arc<Shared>>,
    Path(cart_id): Path<String>,
    body: Bytes,
) -> Result<Json<RenderedCart>, ApiError> {
    let id = parse_cart_id(&cart_id)?;
    let request: AddItem = parse_body(&body)?;
    let quantity = request
        .quantity
        .as_i64()
        .filter(|q| (1..=MAX_QUANTITY).contains(q))
        .ok_or_else(|| {
            ApiError::bad_request(
                "INVALID_QUANTITY",
                format!(
                    "quantity must be a whole number from 1 to {MAX_QUANTITY}, got {}",
                    request.quantity
                ),
            )
        })?;

    let mut state = shared.state.lock();
    let ticket = state
        .world
        .tickets
        .get_mut(&id)
        .ok_or_else(|| ApiError::not_found(format!("no cart with id '{cart_id}'")))?;
    if ticket.state != TicketState::Open {
        return Err(ApiError::bad_request(
            "CART_NOT_OPEN",
            format!("the cart is {}", ticket.state.as_str()),
        ));
    }
    let product = shared
        .catalog
        .product(&request.product_number)
        .ok_or_else(|| {
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
            discount: round_money(Decimal::ZERO, currency),
        }),
    }
    Ok(Json(render(ticket)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    fn line(unit_price: &str, quantity: i64) -> CartLine {
        CartLine {
            cart_item_id: Uuid::nil(),
            product_number: "P".into(),
            quantity,
            description: None,
            image: None,
            unit_price: unit_price.parse().unwrap_or_default(),
            discount: Decimal::ZERO,
        }
    }

    fn profile(key: &str) -> CartProfile {
        Catalog::seed()
            .profile(key)
            .cloned()
            .unwrap_or_else(|| panic!("profile {key} is seeded"))
    }

    fn s(d: Decimal) -> String {
        d.to_string()
    }

    #[test]
    fn tax_included_prices_extract_the_tax_from_the_line_total() {
        let totals = price(&[line("99.90", 3)], &profile("default"));
        assert_eq!(s(totals.lines[0].0), "299.70");
        assert_eq!(s(totals.lines[0].1), "59.94");
        assert_eq!(s(totals.order_total), "299.70");
        assert_eq!(s(totals.order_tax_total), "59.94");
        assert_eq!(s(totals.shipping_total), "0.00");
    }

    #[test]
    fn tax_excluded_prices_add_the_tax_on_top() {
        // 2 × 3.250 = 6.500 KWD; 5% of it is 0.325.
        let totals = price(&[line("3.250", 2), line("5.999", 1)], &profile("kw"));
        assert_eq!(s(totals.product_total), "12.499");
        // 5.999 × 0.05 = 0.29995, rounded half away from zero to 0.300.
        assert_eq!(s(totals.lines[1].1), "0.300");
        assert_eq!(s(totals.order_tax_total), "0.625");
        assert_eq!(s(totals.order_total), "13.124");
    }

    #[test]
    fn shipping_is_added_and_taxed_when_a_profile_charges_for_it() {
        let mut p = profile("default");
        p.shipping = "49".parse().unwrap_or_default();
        let totals = price(&[line("100.00", 1)], &p);
        assert_eq!(s(totals.shipping_total), "49.00");
        assert_eq!(s(totals.shipping_tax), "9.80");
        assert_eq!(s(totals.order_total), "149.00");
        assert_eq!(s(totals.order_tax_total), "29.80");
        let empty = price(&[], &p);
        assert_eq!(s(empty.order_total), "0.00");
    }

    #[test]
    fn yen_totals_have_no_decimals() {
        let totals = price(&[line("1500", 3)], &profile("jp"));
        // 4500 × 0.10 / 1.10 = 409.0909…, which rounds to 409.
        assert_eq!(s(totals.order_total), "4500");
        assert_eq!(s(totals.order_tax_total), "409");
    }
}

//! The rendered cart as Hantera's Commerce ingress returns it (`GET
//! /ingress/commerce/carts/{cartId}`) and as `OnCartMutation` carries it.
//!
//! Only the fields the gateway reads are typed; amounts are decimals in major units and
//! are parsed exactly from the JSON number text (serde_json's `arbitrary_precision`).
//! Fields it does not read (a line's `cartItemId`, which the storefront SDK types as any
//! string) are not typed at all, and the ones it only displays (the cart number, a line's
//! description, the order number) are read leniently: neither ever refuses a cart.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::{Currency, Money, MoneyError};

/// The state of a cart ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CartState {
    /// Can be modified and paid.
    Open,
    /// Paid; an order exists.
    Completed,
    /// Abandoned.
    Rejected,
}

impl CartState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            CartState::Open => "open",
            CartState::Completed => "completed",
            CartState::Rejected => "rejected",
        }
    }
}

/// One line of a rendered cart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CartItem {
    /// The product.
    pub product_number: String,
    /// How many.
    pub quantity: i64,
    /// Display text.
    #[serde(
        default,
        deserialize_with = "crate::lenient::text",
        skip_serializing_if = "Option::is_none"
    )]
    pub description: Option<String>,
    /// Price of one unit.
    #[serde(with = "rust_decimal::serde::arbitrary_precision")]
    pub unit_price: Decimal,
    /// Line total after discount.
    #[serde(with = "rust_decimal::serde::arbitrary_precision")]
    pub total: Decimal,
    /// Tax in the line total.
    #[serde(with = "rust_decimal::serde::arbitrary_precision")]
    pub tax: Decimal,
    /// Discount on the line.
    #[serde(default, with = "rust_decimal::serde::arbitrary_precision")]
    pub discount: Decimal,
}

/// The subset of Hantera's rendered cart that payment needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RenderedCart {
    /// The cart (ticket) id.
    pub cart_id: Uuid,
    /// Human-readable number.
    #[serde(
        default,
        deserialize_with = "crate::lenient::text",
        skip_serializing_if = "Option::is_none"
    )]
    pub cart_number: Option<String>,
    /// Open, completed or rejected.
    pub cart_state: CartState,
    /// ISO 4217 code, upper case.
    pub currency_code: String,
    /// What the customer pays, in major units.
    #[serde(with = "rust_decimal::serde::arbitrary_precision")]
    pub order_total: Decimal,
    /// Tax included in the total.
    #[serde(default, with = "rust_decimal::serde::arbitrary_precision")]
    pub order_tax_total: Decimal,
    /// The lines.
    #[serde(default)]
    pub items: Vec<CartItem>,
    /// The order created on completion.
    #[serde(
        default,
        deserialize_with = "crate::lenient::text",
        skip_serializing_if = "Option::is_none"
    )]
    pub order_number: Option<String>,
}

impl RenderedCart {
    /// The amount to pay, exactly, in minor units.
    pub fn total(&self) -> Result<Money, MoneyError> {
        let currency = Currency::from_code(&self.currency_code)?;
        Money::from_decimal(self.order_total, currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_rendered_cart_parses_decimal_totals_exactly() {
        let json = r#"{"cartId":"0199a9b6-8608-7360-b98b-d2f9adeb2848","cartNumber":"C1",
            "cartState":"open","currencyCode":"SEK","orderTotal":0.3,"orderTaxTotal":0.06,
            "extraField":{"x":1},"items":[{"cartItemId":"0199a9b6-8608-7360-b98b-d2f9adeb2849",
            "productNumber":"P1","quantity":3,"unitPrice":0.1,"total":0.3,"tax":0.06,"discount":0}]}"#;
        let cart: RenderedCart = serde_json::from_str(json).unwrap();
        assert_eq!(cart.total().unwrap().minor, 30);
        assert_eq!(cart.items[0].unit_price.to_string(), "0.1");
        assert_eq!(cart.cart_state, CartState::Open);
        let back = serde_json::to_string(&cart).unwrap();
        assert!(back.contains(r#""orderTotal":0.3"#), "{back}");
    }

    const CART_ID: &str = "0199a9b6-8608-7360-b98b-d2f9adeb2848";

    fn cart_with(patch: serde_json::Value, item_patch: serde_json::Value) -> serde_json::Value {
        let mut item = serde_json::json!({ "productNumber": "P1", "quantity": 1,
            "unitPrice": 10.0, "total": 10.0, "tax": 2.0 });
        let mut cart = serde_json::json!({ "cartId": CART_ID, "cartState": "open",
            "currencyCode": "SEK", "orderTotal": 10.0 });
        for (target, patch) in [(&mut item, item_patch), (&mut cart, patch)] {
            if let (Some(t), Some(p)) = (target.as_object_mut(), patch.as_object()) {
                t.extend(p.clone());
            }
        }
        cart["items"] = serde_json::json!([item]);
        cart
    }

    #[test]
    fn fields_the_gateway_does_not_read_never_refuse_a_cart() {
        for (cart_patch, item_patch) in [
            // The storefront SDK types cartItemId as a string: any string is a line id.
            (json!({}), json!({ "cartItemId": "line-1" })),
            (json!({}), json!({ "cartItemId": 17 })),
            (
                json!({}),
                json!({ "cartItemId": null, "image": { "url": "x" } }),
            ),
            // Display fields of another type than expected are dropped, not refused.
            (
                json!({ "cartNumber": 1042 }),
                json!({ "description": { "sv": "Mugg" } }),
            ),
            (
                json!({ "orderNumber": ["O-1"], "taxIncluded": "yes" }),
                json!({ "description": null }),
            ),
            (
                json!({ "fields": [1, 2], "extra": { "deep": [null] } }),
                json!({ "extra": true }),
            ),
        ] {
            let json = cart_with(cart_patch.clone(), item_patch.clone());
            let cart: RenderedCart = serde_json::from_value(json)
                .unwrap_or_else(|e| panic!("{cart_patch} {item_patch}: {e}"));
            assert_eq!(cart.total().unwrap().minor, 1000);
            assert_eq!(cart.items[0].product_number, "P1");
        }
        let cart: RenderedCart =
            serde_json::from_value(cart_with(json!({ "cartNumber": 1042 }), json!({}))).unwrap();
        assert_eq!(cart.cart_number.as_deref(), Some("1042"));
    }

    #[test]
    fn fields_the_gateway_reads_are_still_checked() {
        for (cart_patch, item_patch, field) in [
            (json!({ "cartId": "cart-1" }), json!({}), "UUID"),
            (json!({ "cartState": "pending" }), json!({}), "pending"),
            (json!({ "orderTotal": { "amount": 10 } }), json!({}), ""),
            (json!({}), json!({ "quantity": "two" }), ""),
        ] {
            let json = cart_with(cart_patch.clone(), item_patch.clone());
            let err = serde_json::from_value::<RenderedCart>(json)
                .err()
                .unwrap_or_else(|| panic!("{cart_patch} {item_patch} was accepted"));
            assert!(err.to_string().contains(field), "{err}");
        }
    }

    #[test]
    fn a_total_with_too_many_decimals_is_refused() {
        let json = r#"{"cartId":"0199a9b6-8608-7360-b98b-d2f9adeb2848","cartState":"open",
            "currencyCode":"JPY","orderTotal":10.5}"#;
        let cart: RenderedCart = serde_json::from_str(json).unwrap();
        assert!(cart.total().is_err());
    }
}

//! The rendered cart: what every Commerce cart endpoint answers, what SSE streams carry
//! and what `OnCartMutation` forwards, in the storefront SDK's `Cart` shape.

use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::pricing::price;
use crate::state::{Address, Amount, InvoiceRecipient, Ticket, TicketState};

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

/// One promotion a coupon gave, in the SDK's `promotions` shape plus the coupon's code.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Promotion {
    calculated_total: Amount,
    description: String,
    message_rendered: Option<String>,
    message_template: Option<String>,
    message_type: Option<String>,
    coupon_code: String,
}

/// The rendered cart: every field of Hantera's storefront cart, null or empty where the
/// sandbox has nothing to put.
///
/// The invoice address appears twice: the Commerce API reference calls it
/// `invoiceAddress` and the storefront SDK's `Cart` type `invoiceRecipient` (with tax
/// identity fields), and a storefront may read either.
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
    pub(crate) currency_code: String,
    tax_included: bool,
    locale: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    coupons: Vec<String>,
    fields: Map<String, Value>,
    pub(crate) product_total: Amount,
    pub(crate) order_total: Amount,
    pub(crate) order_tax_total: Amount,
    pub(crate) shipping_total: Amount,
    pub(crate) shipping_tax: Amount,
    pub(crate) shipping_discount: Amount,
    address: Option<Address>,
    invoice_address: Option<InvoiceRecipient>,
    invoice_recipient: Option<InvoiceRecipient>,
    pub(crate) items: Vec<RenderedItem>,
    promotions: Vec<Promotion>,
}

/// Renders a cart ticket the way `GET /ingress/commerce/carts/{cartId}` answers.
pub(crate) fn render(ticket: &Ticket) -> RenderedCart {
    let totals = price(&ticket.lines, &ticket.coupons, &ticket.profile);
    let items = ticket
        .lines
        .iter()
        .zip(&totals.lines)
        .map(|(line, priced)| RenderedItem {
            cart_item_id: line.cart_item_id,
            product_number: line.product_number.clone(),
            quantity: line.quantity,
            description: line.description.clone(),
            image: line.image.clone(),
            total: Amount(priced.total),
            tax: Amount(priced.tax),
            unit_price: Amount(line.unit_price),
            discount: Amount(priced.discount),
        })
        .collect();
    let promotions = ticket
        .coupons
        .iter()
        .zip(&totals.promotions)
        .map(|(coupon, taken)| Promotion {
            calculated_total: Amount(*taken),
            description: coupon.description.clone(),
            message_rendered: Some(format!("{}: {}", coupon.code, coupon.description)),
            message_template: None,
            message_type: None,
            coupon_code: coupon.code.clone(),
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
        coupons: ticket.coupons.iter().map(|c| c.code.clone()).collect(),
        fields,
        product_total: Amount(totals.product_total),
        order_total: Amount(totals.order_total),
        order_tax_total: Amount(totals.order_tax_total),
        shipping_total: Amount(totals.shipping_total),
        shipping_tax: Amount(totals.shipping_tax),
        shipping_discount: Amount(totals.shipping_discount),
        address: ticket.address.clone(),
        invoice_address: ticket.invoice_recipient.clone(),
        invoice_recipient: ticket.invoice_recipient.clone(),
        items,
        promotions,
    }
}

/// The rendered cart as a JSON value, for hooks and events.
pub(crate) fn render_value(ticket: &Ticket) -> Value {
    // Rendering plain data into a `Value` cannot fail; `Null` keeps the signature honest.
    serde_json::to_value(render(ticket)).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    //! Property tests: whatever the lines, coupons and profile, the rendered totals are
    //! exactly the sums of the rendered lines, tax and shipping, and every amount is
    //! written with the currency's decimals.

    use proptest::prelude::*;
    use rust_decimal::Decimal;
    use serde_json::{Map, Value};
    use uuid::Uuid;

    use super::render;
    use crate::catalog::{currency_decimals, CartProfile, Catalog};
    use crate::state::{CartLine, Ticket, TicketState};

    /// An amount exactly as the JSON text has it.
    fn amount(value: &Value) -> Decimal {
        assert!(value.is_number(), "{value} is not a number");
        value
            .to_string()
            .parse()
            .unwrap_or_else(|e| panic!("{value} is not a decimal: {e}"))
    }

    fn ticket(profile: CartProfile, lines: Vec<CartLine>, coupons: &[&str]) -> Ticket {
        let catalog = Catalog::seed();
        Ticket {
            ticket_id: Uuid::nil(),
            type_key: "cart",
            ticket_number: "C1".into(),
            state: TicketState::Open,
            country_code: profile.default_country_code.clone(),
            profile,
            locale: None,
            email: None,
            phone: None,
            address: None,
            invoice_recipient: None,
            lines,
            coupons: coupons
                .iter()
                .filter_map(|code| catalog.coupon(code).cloned())
                .collect(),
            relations: Vec::new(),
            dynamic: Map::new(),
            tags: Vec::new(),
            activity_log: Vec::new(),
            order_id: None,
            order_number: None,
            created_at: String::new(),
            closed_at: None,
            created_seq: 0,
        }
    }

    /// A cart profile in one of the four currency shapes, with a shipping fee and a
    /// free-shipping threshold drawn at random (in whole minor units).
    fn profile() -> impl Strategy<Value = CartProfile> {
        (
            prop::sample::select(vec!["default", "eu", "jp", "kw"]),
            0i64..=100_000,
            prop::option::of(0i64..=10_000_000),
        )
            .prop_map(|(key, shipping, free_from)| {
                let mut profile = Catalog::seed()
                    .profile(key)
                    .cloned()
                    .unwrap_or_else(|| panic!("profile {key} is seeded"));
                let dp = currency_decimals(&profile.currency_code);
                profile.shipping = Decimal::new(shipping, dp);
                profile.free_shipping_from = free_from.map(|f| Decimal::new(f, dp));
                profile
            })
    }

    /// Up to eight lines with unit prices up to 100 000 major units and up to 1000 each.
    fn lines(dp: u32) -> impl Strategy<Value = Vec<CartLine>> {
        prop::collection::vec((1i64..=100_000 * 10i64.pow(dp), 1i64..=1000), 0..8).prop_map(
            move |lines| {
                lines
                    .into_iter()
                    .enumerate()
                    .map(|(i, (minor, quantity))| CartLine {
                        cart_item_id: Uuid::from_u128(i as u128 + 1),
                        product_number: format!("P{i}"),
                        quantity,
                        description: None,
                        image: None,
                        unit_price: Decimal::new(minor, dp),
                    })
                    .collect()
            },
        )
    }

    fn cart() -> impl Strategy<Value = Ticket> {
        (
            profile(),
            prop::sample::subsequence(vec!["WELCOME10", "VIP20", "FREESHIP"], 0..=3),
        )
            .prop_flat_map(|(profile, coupons)| {
                let dp = currency_decimals(&profile.currency_code);
                (Just(profile), lines(dp), Just(coupons))
            })
            .prop_map(|(profile, lines, coupons)| ticket(profile, lines, &coupons))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn rendered_totals_are_exactly_the_sums_of_lines_tax_and_shipping(ticket in cart()) {
            // Through JSON text, as a storefront or the gateway reads it.
            let text = serde_json::to_string(&render(&ticket)).expect("renders");
            let cart: Value = serde_json::from_str(&text).expect("parses");
            let dp = currency_decimals(&ticket.profile.currency_code);
            let items = cart["items"].as_array().cloned().unwrap_or_default();

            let mut lines = Decimal::ZERO;
            let mut taxes = Decimal::ZERO;
            let mut discounts = Decimal::ZERO;
            for item in &items {
                let unit = amount(&item["unitPrice"]);
                let quantity = Decimal::from(item["quantity"].as_i64().unwrap_or_default());
                let (total, tax, discount) =
                    (amount(&item["total"]), amount(&item["tax"]), amount(&item["discount"]));
                prop_assert_eq!(total, unit * quantity - discount);
                prop_assert!(discount >= Decimal::ZERO && discount <= unit * quantity);
                // The tax is the exact tax rounded to the currency: off by half a unit
                // of its last decimal at most.
                let rate = ticket.profile.tax_rate;
                let exact = if ticket.profile.tax_included {
                    total * rate / (Decimal::ONE + rate)
                } else {
                    total * rate
                };
                prop_assert!((tax - exact).abs() <= Decimal::new(5, dp + 1));
                for value in [&item["total"], &item["tax"], &item["discount"]] {
                    prop_assert_eq!(amount(value).scale(), dp, "{}", value);
                }
                lines += total;
                taxes += tax;
                discounts += discount;
            }

            let product_total = amount(&cart["productTotal"]);
            let shipping = amount(&cart["shippingTotal"]);
            let shipping_discount = amount(&cart["shippingDiscount"]);
            let shipping_tax = amount(&cart["shippingTax"]);
            let tax_total = amount(&cart["orderTaxTotal"]);
            let order_total = amount(&cart["orderTotal"]);
            prop_assert_eq!(product_total, lines);
            prop_assert_eq!(tax_total, taxes + shipping_tax);
            let on_top = if ticket.profile.tax_included { Decimal::ZERO } else { tax_total };
            prop_assert_eq!(order_total, product_total + shipping - shipping_discount + on_top);
            prop_assert!(shipping_discount <= shipping);
            if items.is_empty() {
                prop_assert_eq!(order_total, Decimal::ZERO);
            }
            let promotions: Decimal = cart["promotions"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|p| amount(&p["calculatedTotal"]))
                .sum();
            prop_assert_eq!(promotions, discounts + shipping_discount);
            for field in ["productTotal", "orderTotal", "orderTaxTotal", "shippingTotal",
                          "shippingTax", "shippingDiscount"] {
                prop_assert_eq!(amount(&cart[field]).scale(), dp, "{} = {}", field, cart[field]);
            }
        }
    }
}

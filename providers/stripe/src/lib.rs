//! The Stripe provider: PaymentIntents checkout, verified webhooks, manual capture, amount sync, and a fake Stripe speaking Stripe's wire format.

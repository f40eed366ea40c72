// Stripe's part of the demo checkout page, served by the fake Stripe at
// `/fakes/stripe/demo.js` (what a demo module is: crates/gateway/src/demo/app.js).
//
// A storefront in production loads Stripe.js with the publishable key from
// `GET /ingress/stripe/publicKey` and calls `stripe.confirmPayment(…)` with the
// PaymentIntent's client secret; Stripe comes back to `return_url` with
// `payment_intent`, `payment_intent_client_secret` and `redirect_status`.

export const hint = 'test page standing in for Stripe.js';

// Where the fake Stripe is mounted: where this module was loaded from.
const FAKE = new URL('.', import.meta.url).pathname;

export async function pay(payment, ui) {
  const { clientSecret, paymentIntentId } = await payment.start({});
  const publishableKey = await publicKey();
  const stripe = sandboxStripe(publishableKey, ui);
  await stripe.confirmPayment({ clientSecret, paymentIntentId, confirmParams: { return_url: payment.returnUrl } });
}

export function returned(params) {
  const status = params.get('redirect_status');
  if (!status) return null;
  return ['failed', 'canceled', 'requires_payment_method'].includes(status) ? { declined: true } : { confirm: true };
}

async function publicKey() {
  const response = await fetch('/ingress/stripe/publicKey', { headers: { Accept: 'application/json' } });
  if (!response.ok) throw new Error(`Stripe's publishable key is not configured (HTTP ${response.status}).`);
  return (await response.json()).publicKey;
}

// SANDBOX STAND-IN FOR STRIPE.JS. Stripe.js cannot load offline, so this has the one call
// the demo needs, `confirmPayment`, and sends the customer to the fake Stripe's hosted
// test page (`pay/{pi}` below the fake), which confirms the PaymentIntent with a test
// card, sends the signed webhook, and comes back as Stripe does. Against the real Stripe
// (no fake mounted) it says so instead of pretending.
function sandboxStripe(publishableKey, ui) {
  return {
    async confirmPayment({ clientSecret, paymentIntentId, confirmParams }) {
      const query = new URLSearchParams({ client_secret: clientSecret, return_url: confirmParams.return_url });
      const page = `${FAKE}pay/${encodeURIComponent(paymentIntentId)}?${query}`;
      const fake = await fetch(page, { method: 'HEAD' }).catch(() => null);
      if (!fake?.ok) {
        throw new Error(
          `The fake Stripe's test page is not here (${fake ? `HTTP ${fake.status}` : 'no answer'}): ` +
            `this gateway talks to the real Stripe (publishable key ${publishableKey}), whose ` +
            'Stripe.js this offline demo does not load. Choose another provider to pay on a hosted page.',
        );
      }
      ui.say('Taking you to the fake Stripe test page (it stands in for Stripe.js)…');
      ui.go(page);
    },
  };
}

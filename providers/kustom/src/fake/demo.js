// Kustom's part of the demo checkout page, served by the fake Kustom at
// `/fakes/kustom/demo.js` (what a demo module is: crates/gateway/src/demo/app.js).
//
// The gateway answers with Kustom's `htmlSnippet`, which goes into the page with its
// scripts re-run (scripts set through innerHTML do not run). When the customer completes
// the purchase, Kustom sends the whole page to the confirmation URL, `{checkout.order.id}`
// replaced (so the braces must stay raw here).

export const hint = 'embedded checkout';

export async function pay(payment, ui) {
  const { htmlSnippet } = await payment.start({
    termsUrl: `${location.origin}/#terms`,
    checkoutUrl: payment.returnUrl,
    confirmationUrl: `${payment.returnUrl}&kustom_order_id={checkout.order.id}`,
  });
  // While a cart change is on its way to Kustom, the checkout is suspended, as Kustom
  // asks: the gateway sets the cart's `kustomPendingHash` when it sees the change and
  // `kustomSyncHash` once Kustom holds it. Once they agree, the checkout resumes (the
  // fake's resume reloads the frame, showing the new order). A sync that never reports
  // back must not leave the customer stuck: after 10 s it resumes anyway.
  const kustom = { suspended: false, shown: ui.cart()?.fields?.kustomSyncHash, fallback: 0 };
  const resume = (cart) => {
    clearTimeout(kustom.fallback);
    kustom.suspended = false;
    kustom.shown = cart?.fields?.kustomSyncHash;
    window._klarnaCheckout?.((api) => api.resume());
  };
  const { section, frame } = ui.embed({
    title: 'Checkout with Kustom',
    note:
      "Sandbox: the fake Kustom's hosted page stands in for Kustom's checkout iframe. Press " +
      '<strong>Complete purchase</strong> to pay; changes to the cart are sent to Kustom while it waits.',
    payLabel: 'Pay in the Kustom checkout',
    onCart(cart) {
      if (!window._klarnaCheckout) return;
      const { kustomPendingHash: pending, kustomSyncHash: synced } = cart.fields ?? {};
      const behind = Boolean(pending) && pending !== synced;
      if (behind && !kustom.suspended) {
        kustom.suspended = true;
        // How often it was suspended, for people (and tests) watching.
        section.dataset.suspensions = String(Number(section.dataset.suspensions ?? 0) + 1);
        window._klarnaCheckout((api) => api.suspend());
        kustom.fallback = setTimeout(() => resume(ui.cart()), 10_000);
      } else if (!behind && (kustom.suspended || synced !== kustom.shown)) {
        resume(cart);
      }
    },
    onClose() {
      clearTimeout(kustom.fallback);
      delete window._klarnaCheckout;
    },
  });
  frame.innerHTML = htmlSnippet;
  for (const old of frame.querySelectorAll('script')) {
    const script = document.createElement('script');
    for (const { name, value } of old.attributes) script.setAttribute(name, value);
    script.text = old.text;
    old.replaceWith(script);
  }
  ui.say('');
}

// The confirmation URL names the order; a purchase Kustom refused comes back with
// `kustom_error`.
export function returned(params) {
  const error = params.get('kustom_error');
  if (error) {
    return {
      error: `Kustom could not complete the purchase (${error}); nothing was charged. Check the cart and pay again.`,
    };
  }
  return params.has('kustom_order_id') ? { confirm: true } : null;
}

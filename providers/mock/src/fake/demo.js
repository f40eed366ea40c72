// The mock PSP's part of the demo checkout page, served by its fake at
// `/fakes/mock/demo.js` (what a demo module is: crates/gateway/src/demo/app.js). The
// customer pays on the fake's hosted page (Approve and Decline, test cards), which comes
// back to the page with the payment's `status`.

export const hint = 'hosted test page';

export function pay(payment, ui) {
  return ui.redirect(payment);
}

export function returned(params) {
  const status = params.get('status');
  if (!status) return null;
  return ['failed', 'voided'].includes(status) ? { declined: true } : { confirm: true };
}

// The template PSP's part of the demo checkout page, served by its fake at
// `/fakes/template/demo.js` (what a demo module is: crates/gateway/src/demo/app.js): the
// fake's hosted page, by redirect, back with the payment's `status`.

export const hint = 'hosted test page';

export function pay(payment, ui) {
  return ui.redirect(payment);
}

export function returned(params) {
  const status = params.get('status');
  if (!status) return null;
  return status === 'authorized' ? { confirm: true } : { declined: true };
}

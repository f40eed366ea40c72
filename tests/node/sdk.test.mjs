// The real @hantera/storefront-sdk cart client (from npm) against a real psp-gateway
// running the embedded default: the sandbox is Hantera's stand-in, so a storefront that
// works here works against a real instance by changing the base URL.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { createCartClient, isCartErrors } from '@hantera/storefront-sdk';
import { EventSource } from 'eventsource';

import { eventually, getJson, startGateway } from './gateway.mjs';

// Node 20 has no EventSource; browsers do, and the SDK uses the global one.
globalThis.EventSource ??= EventSource;

let gateway;
before(async () => {
  gateway = await startGateway();
});
after(async () => {
  await gateway?.stop();
});

/** Asserts an SDK answer is a cart, not `{errors}`, and returns it. */
function ok(answer, what) {
  assert.ok(!isCartErrors(answer), `${what}: ${JSON.stringify(answer)}`);
  return answer;
}

test('the SDK cart client builds a cart, follows it over SSE and sees it completed after a mock payment', async (t) => {
  const cart = createCartClient({ baseUrl: gateway.url });

  const profiles = await cart.getCartProfiles();
  assert.deepEqual(
    profiles.map((p) => p.profileKey),
    ['default', 'eu', 'jp', 'kw'],
  );
  assert.equal(profiles[0].currencyCode, 'SEK');

  const { cartId } = await cart.createCart({ profileKey: 'default', locale: 'sv-SE' });
  assert.match(cartId, /^[0-9a-f-]{36}$/);

  // What arrives over the wire, kept apart from the SDK's own onUpdate calls (it also
  // calls onUpdate with every mutation's answer).
  const streamed = [];
  const handled = [];
  const source = cart.subscribeToCartEvents(cartId, {
    onInit: (c) => handled.push(['init', c]),
    onUpdate: (c) => handled.push(['update', c]),
    onError: (data) => handled.push(['error', data]),
  });
  t.after(() => source.close());
  for (const name of ['init', 'updated']) {
    source.addEventListener(name, (event) => streamed.push([name, JSON.parse(event.data)]));
  }
  await eventually('the init event', () => streamed.find(([name]) => name === 'init'));

  // Add, change and remove items.
  let current = ok(await cart.addItem(cartId, { productNumber: 'TSHIRT-001', quantity: 1 }), 'add-item');
  assert.equal(current.items.length, 1);
  const shirt = current.items[0].cartItemId;
  current = ok(await cart.addItem(cartId, { productNumber: 'MUG-002', quantity: 2 }), 'add-item');
  const mug = current.items.find((i) => i.productNumber === 'MUG-002').cartItemId;
  current = ok(await cart.setQuantity(cartId, { cartItemId: shirt, quantity: 3 }), 'set-quantity');
  current = ok(await cart.removeItem(cartId, { cartItemId: mug }), 'remove-item');
  assert.deepEqual(
    current.items.map((i) => [i.productNumber, i.quantity]),
    [['TSHIRT-001', 3]],
  );

  // Customer details.
  ok(await cart.setEmail(cartId, 'ada@example.com'), 'email');
  ok(
    await cart.setAddress(cartId, {
      address: {
        name: 'Ada Lovelace',
        addressLine1: 'Drottninggatan 1',
        city: 'Stockholm',
        postalCode: '111 51',
        countryCode: 'SE',
      },
    }),
    'address',
  );
  ok(await cart.setPhone(cartId, '+46 70 123 45 67'), 'phone');
  ok(await cart.setField(cartId, 'giftMessage', { value: 'Happy birthday' }), 'set-field');

  // A refused mutation comes back as the SDK's CartErrors.
  const refused = await cart.addItem(cartId, { productNumber: 'NO-SUCH-THING', quantity: 1 });
  assert.ok(isCartErrors(refused));
  assert.equal(refused.errors[0].code, 'PRODUCT_NOT_FOUND');

  // Read it back.
  const read = ok(await cart.getCart(cartId), 'get');
  assert.equal(read.cartState, 'open');
  assert.equal(read.email, 'ada@example.com');
  assert.equal(read.phone, '+46 70 123 45 67');
  assert.equal(read.address.city, 'Stockholm');
  assert.deepEqual(read.fields, { giftMessage: 'Happy birthday' });
  assert.equal(read.items[0].quantity, 3);
  assert.equal(read.currencyCode, 'SEK');
  assert.equal(read.taxIncluded, true);
  // 3 × 99.90 = 299.70, below the free-shipping threshold: 49.00 shipping.
  assert.equal(read.productTotal, 299.7);
  assert.equal(read.shippingTotal, 49);
  assert.equal(read.orderTotal, 348.7);
  assert.equal(read.orderTaxTotal, 69.74);

  // The stream carried those changes as `updated` events, in order.
  await eventually('the address over SSE', () =>
    streamed.find(([name, c]) => name === 'updated' && c.address?.city === 'Stockholm'),
  );
  const quantities = streamed
    .filter(([name]) => name === 'updated')
    .map(([, c]) => c.items.reduce((n, i) => n + i.quantity, 0));
  assert.deepEqual(quantities.slice(0, 4), [1, 3, 5, 3], 'one event per item change, in order');

  // Pay with the mock provider through the gateway, then approve at its hosted page as
  // the customer's browser would (a form post).
  const started = await fetch(`${gateway.url}/ingress/commerce/carts/${cartId}/payment/mock`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: '{}',
  });
  assert.equal(started.status, 200);
  const { redirectUrl } = await started.json();
  assert.ok(redirectUrl.startsWith(gateway.url), redirectUrl);
  const approved = await fetch(`${redirectUrl}/approve`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: 'card=4242424242424242',
  });
  assert.equal(approved.status, 200);

  // The PSP's webhook reaches the gateway, which links the payment and completes the
  // cart; the stream says so.
  const [, completed] = await eventually('the completed cart over SSE', () =>
    streamed.find(([name, c]) => name === 'updated' && c.cartState === 'completed'),
  );
  assert.match(completed.orderNumber, /^O\d+$/);
  assert.ok(handled.some(([kind, c]) => kind === 'update' && c.cartState === 'completed'));
  const done = ok(await cart.getCart(cartId), 'get');
  assert.equal(done.cartState, 'completed');
  assert.equal(done.orderNumber, completed.orderNumber);

  // A completed cart refuses changes, clearly.
  const late = await cart.addItem(cartId, { productNumber: 'MUG-002', quantity: 1 });
  assert.ok(isCartErrors(late));
  assert.equal(late.errors[0].code, 'CART_NOT_OPEN');
  assert.match(late.errors[0].message, /completed/);

  // The sandbox forwarded one OnCartMutation per successful mutation (8) to the
  // gateway, which took every one.
  const hooks = await eventually('every hook delivered', async () => {
    const outbox = await getJson(`${gateway.url}/sandbox/hooks`);
    const mine = outbox.finished.filter((h) => h.cartId === cartId);
    return outbox.pending.length === 0 && mine.length >= 8 ? mine : null;
  });
  assert.equal(hooks.length, 8);
  for (const hook of hooks) {
    assert.equal(hook.hook, 'OnCartMutation');
    assert.equal(hook.outcome, 'delivered', JSON.stringify(hook));
  }

  // What the developer sees when inspecting the cart: the payment the gateway linked.
  const inspected = await getJson(`${gateway.url}/sandbox/carts/${cartId}`);
  assert.equal(inspected.order.orderNumber, completed.orderNumber);
  assert.equal(inspected.payments[0].providerKey, 'mock');
});

test('cancelOrder through the SDK explains that a cart without an order has none to cancel', async () => {
  const cart = createCartClient({ baseUrl: gateway.url });
  const { cartId } = await cart.createCart({ profileKey: 'eu', locale: 'de-DE' });
  const answer = await cart.cancelOrder(cartId);
  assert.ok(isCartErrors(answer));
  assert.equal(answer.errors[0].code, 'NO_ORDER');
  const removed = ok(await cart.deleteField(cartId, 'nothing-here'), 'remove-field');
  assert.deepEqual(removed.fields, {});
});

test('coupons from the SDK change the totals the SDK reads', async () => {
  const cart = createCartClient({ baseUrl: gateway.url });
  const { cartId } = await cart.createCart({ profileKey: 'jp', locale: 'ja-JP' });
  ok(await cart.addItem(cartId, { productNumber: 'SOCKS-004', quantity: 3 }), 'add-item');
  const discounted = ok(await cart.addCoupon(cartId, 'WELCOME10'), 'add-coupon');
  // 3 × 990 = 2970 yen; 10% off is 297; 500 yen shipping below 5000.
  assert.equal(discounted.items[0].discount, 297);
  assert.equal(discounted.orderTotal, 2673 + 500);
  assert.deepEqual(discounted.coupons, ['WELCOME10']);
  assert.equal(discounted.promotions[0].calculatedTotal, 297);
  const plain = ok(await cart.removeCoupon(cartId, 'WELCOME10'), 'remove-coupon');
  assert.equal(plain.orderTotal, 2970 + 500);
});

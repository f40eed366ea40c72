// The demo checkout page of the embedded default, in headless Chromium (Debian's
// package, driven by playwright-core; no browser is downloaded). A customer adds products
// and pays with each provider the embedded default offers, offline:
// - mock: on the mock PSP's hosted page, then back to the page;
// - stripe: on the fake Stripe's test page (the sandbox stand-in for Stripe.js), first
//   declined, then paid;
// - kustom: in Kustom's checkout embedded in the page (the fake's snippet), with a cart
//   change synced while it is open, then to the confirmation URL.
// Each time the cart turns completed over the cart's event stream. Screenshots are kept
// in artifacts/.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { eventually, getJson, startGateway } from '../node/gateway.mjs';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const artifacts = join(repo, 'artifacts');
const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
// Flags for a headless run on a machine with no GPU, no display and no network beyond
// the loopback: nothing in the background may reach out.
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let gateway;
let browser;
before(async () => {
  gateway = await startGateway();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    chromiumSandbox: false,
    args: FLAGS,
    timeout: 60_000,
  });
  mkdirSync(artifacts, { recursive: true });
});
after(async () => {
  await browser?.close();
  await gateway?.stop();
});

/**
 * A fresh browser context on the demo page, collecting what went wrong (page errors,
 * console errors, failed answers) in `problems`, which every test expects to stay empty.
 */
async function openDemo() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    // Failed loads are reported below with their URL.
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
      problems.push(`console: ${message.text()}`);
    }
  });
  page.on('response', (response) => {
    if (response.status() >= 400) problems.push(`${response.status()} ${response.url()}`);
  });
  page.setDefaultTimeout(20_000);
  await page.goto(`${gateway.url}/`);
  // The catalog and the enabled providers come from the gateway.
  await page.getByTestId('product-SHOE-006').waitFor();
  return { context, page, problems };
}

/** Adds the products to the cart through the page; resolves to the cart id. */
async function addProducts(page, ...productNumbers) {
  for (const number of productNumbers) {
    await page.getByTestId(`product-${number}`).getByRole('button', { name: 'Add to cart' }).click();
    await page.getByTestId(`line-${number}`).waitFor();
  }
  const cartId = new URL(page.url()).searchParams.get('cart');
  assert.match(cartId ?? '', /^[0-9a-f-]{36}$/, page.url());
  return cartId;
}

const backOnTheDemoPage = (cartId) => (url) => url.pathname === '/' && url.searchParams.get('cart') === cartId;

/**
 * Waits for the confirmation the cart's event stream brings, screenshots it, and checks
 * what it shows against the cart in (sandbox) Hantera: completed, with one payment.
 */
async function expectCompleted(page, { cartId, provider, paid, screenshot }) {
  await page.locator('#confirmation').waitFor({ state: 'visible' });
  await page.waitForFunction(() => document.getElementById('done-state')?.textContent === 'completed');
  const text = await page.locator('body').innerText();
  await page.screenshot({ path: join(artifacts, screenshot), fullPage: true });

  // What the screenshot shows, checked at the moment it was taken.
  assert.match(text, /Thank you! Your order is confirmed\./);
  assert.match(text, /Order O\d+/);
  assert.match(text, /Cart state\s+completed/);
  assert.match(text, new RegExp(`Paid\\s+${paid}`, 'u'));
  assert.match(text, new RegExp(`Provider\\s+${provider}`));
  assert.ok(
    ['init', 'updated'].includes(await page.getAttribute('#cart-state', 'data-event')),
    'the completed cart was rendered from the event stream',
  );

  const cart = await getJson(`${gateway.url}/ingress/commerce/carts/${cartId}`);
  assert.equal(cart.cartState, 'completed');
  assert.match(await page.textContent('#order-number'), new RegExp(`^${cart.orderNumber}$`));
  return cart;
}

test('the demo page takes a customer from the catalog through the mock hosted page to a completed order', async () => {
  const { context, page, problems } = await openDemo();
  assert.ok(await page.locator('input[name=provider][value=mock]').isChecked());

  const cartId = await addProducts(page, 'SHOE-006', 'TSHIRT-001');
  await page.fill('#email', 'ada@example.com');
  await page.press('#email', 'Tab');
  await eventually('the e-mail on the cart', async () => {
    const cart = await getJson(`${gateway.url}/ingress/commerce/carts/${cartId}`);
    return cart.email === 'ada@example.com';
  });

  const payLabel = await page.textContent('#pay');
  assert.match(payLabel, /^Pay 1\s?398,90\s?kr$/u, 'pays the cart total (1299.00 + 99.90)');

  // Off to the mock PSP's hosted page, which comes back to the demo page.
  await page.click('#pay');
  await page.waitForURL(/\/fakes\/mock\/pay\//);
  await page.getByRole('button', { name: 'Approve' }).click();
  await page.waitForURL(backOnTheDemoPage(cartId));

  await expectCompleted(page, {
    cartId,
    provider: 'mock',
    paid: '1\\s?398,90\\s?kr',
    screenshot: 'demo-checkout-completed.png',
  });
  assert.deepEqual(problems, []);
  await context.close();
});

test('the demo page pays with Stripe on the fake test page standing in for Stripe.js, after a decline', async () => {
  const { context, page, problems } = await openDemo();
  await page.check('input[name=provider][value=stripe]');
  assert.match(await page.textContent('label.provider:has(input[value=stripe])'), /standing in for Stripe\.js/);

  const cartId = await addProducts(page, 'MUG-002');
  // 149.00 and, below the free-shipping threshold, 49.00 shipping.
  assert.match(await page.textContent('#pay'), /^Pay 198,00\s?kr$/u);

  // The page sends the customer to the fake Stripe's test page with the client secret.
  await page.click('#pay');
  await page.waitForURL(/\/fakes\/stripe\/pay\/pi_\w+\?client_secret=pi_\w+_secret_\w+&return_url=/);
  await page.getByText('It stands in for Stripe.js').waitFor();
  assert.match(await page.locator('.amount').innerText(), /198\.00/);
  await page.screenshot({ path: join(artifacts, 'demo-stripe-test-page.png'), fullPage: true });

  // Declined: back on the demo page, the error says so and the cart is still open.
  await page.getByRole('button', { name: 'Decline', exact: true }).click();
  await page.waitForURL(backOnTheDemoPage(cartId));
  await page.locator('#message.error').getByText('declined').waitFor();
  assert.equal(await page.getAttribute('#cart-state', 'data-state'), 'open');
  assert.ok(await page.locator('#pay').isEnabled());
  await page.screenshot({ path: join(artifacts, 'demo-stripe-declined.png'), fullPage: true });

  // Paying again, with the card that authorizes.
  await page.click('#pay');
  await page.waitForURL(/\/fakes\/stripe\/pay\/pi_/);
  await page.getByRole('button', { name: 'Pay', exact: true }).click();
  await page.waitForURL(backOnTheDemoPage(cartId));
  // The client secret Stripe appends to the return URL does not stay in the address bar.
  await page.waitForURL((url) => url.search === `?cart=${cartId}`);

  await expectCompleted(page, {
    cartId,
    provider: 'stripe',
    paid: '198,00\\s?kr',
    screenshot: 'demo-stripe-completed.png',
  });
  const inside = await getJson(`${gateway.url}/sandbox/carts/${cartId}`);
  const payments = JSON.stringify(inside);
  assert.match(payments, /"providerKey":"stripe"/, payments);
  assert.deepEqual(problems, []);
  await context.close();
});

test('the demo page pays with Kustom in the embedded checkout, kept in step with the cart', async () => {
  const { context, page, problems } = await openDemo();
  await page.check('input[name=provider][value=kustom]');

  const cartId = await addProducts(page, 'TOTE-005');
  assert.match(await page.textContent('#pay'), /^Pay 248,00\s?kr$/u, '199.00 and 49.00 shipping');

  // The snippet goes into the page in place of the catalog; its frame is the fake's page.
  await page.click('#pay');
  await page.locator('#checkout').waitFor({ state: 'visible' });
  assert.ok(await page.locator('#catalog').isHidden());
  const checkout = page.frameLocator('#kustom-checkout-iframe');
  await checkout.getByText('Total 248.00 SEK').waitFor();
  assert.equal(await page.evaluate(() => typeof window._klarnaCheckout), 'function', 'the snippet script ran');
  const orderId = await page.getAttribute('#kustom-checkout-container', 'data-kustom-order-id');
  // The customer pays in the checkout, not with the cart's button.
  assert.equal(await page.textContent('#pay'), 'Pay in the Kustom checkout');
  assert.ok(await page.locator('#pay').isDisabled());

  // A second tote while the checkout is open: the gateway syncs the Kustom order, and the
  // page suspends the checkout, then resumes it showing the new total (2 × 199.00 + 49.00).
  await page.getByTestId('line-TOTE-005').getByRole('button', { name: 'One more' }).click();
  await page.getByTestId('total-total').getByText('447,00').waitFor();
  await checkout.getByText('Total 447.00 SEK').waitFor();
  await page.waitForFunction(() => document.getElementById('kustom-checkout-iframe')?.style.opacity !== '0.4');
  // It suspended while Kustom caught up (and has resumed, per the wait above). Under load a
  // late cart snapshot can suspend it a second time for a moment, which is harmless.
  assert.ok(Number(await page.getAttribute('#checkout', 'data-suspensions')) >= 1, 'suspended while Kustom caught up');
  await page.screenshot({ path: join(artifacts, 'demo-kustom-checkout.png'), fullPage: true });

  // Completing the purchase sends the whole page to the confirmation URL, where the page
  // confirms the order with the gateway.
  const confirmation = page.waitForEvent('framenavigated', {
    predicate: (frame) => frame === page.mainFrame() && new URL(frame.url()).searchParams.has('kustom_order_id'),
  });
  await checkout.getByRole('button', { name: 'Complete purchase' }).click();
  const confirmationUrl = new URL((await confirmation).url());
  assert.equal(confirmationUrl.pathname, '/');
  assert.equal(confirmationUrl.searchParams.get('cart'), cartId);
  assert.equal(confirmationUrl.searchParams.get('kustom_order_id'), orderId, 'the placeholder was replaced');
  await expectCompleted(page, {
    cartId,
    provider: 'kustom',
    paid: '447,00\\s?kr',
    screenshot: 'demo-kustom-completed.png',
  });
  assert.ok(await page.locator('#checkout').isHidden());
  const inside = await getJson(`${gateway.url}/sandbox/carts/${cartId}`);
  const payments = JSON.stringify(inside);
  assert.match(payments, /"providerKey":"kustom"/, payments);
  assert.deepEqual(problems, []);
  await context.close();
});

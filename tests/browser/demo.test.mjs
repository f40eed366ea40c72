// The demo checkout page of the embedded default, in headless Chromium (Debian's
// package, driven by playwright-core; no browser is downloaded): a customer adds a
// product, pays on the mock PSP's hosted page, comes back, and watches the cart turn
// completed over the cart's event stream. The screenshot is kept in artifacts/.
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
});
after(async () => {
  await browser?.close();
  await gateway?.stop();
});

test('the demo page takes a customer from the catalog through the mock hosted page to a completed order', async () => {
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
  assert.ok(await page.locator('input[name=provider][value=mock]').isChecked());

  await page.getByTestId('product-SHOE-006').getByRole('button', { name: 'Add to cart' }).click();
  await page.getByTestId('line-SHOE-006').waitFor();
  await page.getByTestId('product-TSHIRT-001').getByRole('button', { name: 'Add to cart' }).click();
  await page.getByTestId('line-TSHIRT-001').waitFor();
  const cartId = new URL(page.url()).searchParams.get('cart');
  assert.match(cartId ?? '', /^[0-9a-f-]{36}$/, page.url());

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
  await page.waitForURL((url) => url.pathname === '/' && url.searchParams.get('cart') === cartId);

  // The cart turns completed over its event stream.
  await page.locator('#confirmation').waitFor({ state: 'visible' });
  await page.waitForFunction(() => document.getElementById('done-state')?.textContent === 'completed');
  const text = await page.locator('body').innerText();
  const screenshot = join(artifacts, 'demo-checkout-completed.png');
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: screenshot, fullPage: true });

  // What the screenshot shows, checked at the moment it was taken.
  assert.match(text, /Thank you! Your order is confirmed\./);
  assert.match(text, /Order O\d+/);
  assert.match(text, /Cart state\s+completed/);
  assert.match(text, /Paid\s+1\s?398,90\s?kr/u);
  assert.match(text, /Provider\s+mock/);
  assert.ok(
    ['init', 'updated'].includes(await page.getAttribute('#cart-state', 'data-event')),
    'the completed cart was rendered from the event stream',
  );

  const cart = await getJson(`${gateway.url}/ingress/commerce/carts/${cartId}`);
  assert.equal(cart.cartState, 'completed');
  assert.match(await page.textContent('#order-number'), new RegExp(`^${cart.orderNumber}$`));
  assert.deepEqual(problems, []);
  await context.close();
});

// The demo checkout: a storefront as a shop would write it against Hantera's Commerce
// cart API (the same calls as @hantera/storefront-sdk's cart client) and the gateway's
// payment ingress. Everything is same-origin: the embedded default serves the sandbox
// Hantera, the gateway and the fake PSPs (mock, Stripe, Kustom) from one address, so the
// page pays offline with each of them.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  // What each provider's option says about how it pays here.
  const HINTS = {
    mock: 'hosted test page',
    stripe: 'test page standing in for Stripe.js',
    kustom: 'embedded checkout',
  };
  const COLORS = ['#5b5bd6', '#0e9384', '#dc6803', '#c11574', '#1570ef', '#6938ef'];
  // How each seeded currency is printed; the locale only affects formatting.
  const LOCALES = { SEK: 'sv-SE', EUR: 'de-DE', JPY: 'ja-JP', KWD: 'en-US' };
  const remember = {
    get: (key) => localStorage.getItem(`psp-demo.${key}`),
    set: (key, value) =>
      value == null
        ? localStorage.removeItem(`psp-demo.${key}`)
        : localStorage.setItem(`psp-demo.${key}`, value),
  };

  let profiles = [];
  let products = [];
  let cart = null;
  let events = null;
  let busy = false;

  // --- HTTP ------------------------------------------------------------------------

  // Calls a JSON endpoint; a non-2xx answer throws with the first `{errors:[…]}` entry
  // (or the `{error:{…}}` shape some ingresses use).
  async function api(method, path, body) {
    const response = await fetch(path, {
      method,
      headers: { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try {
      data = await response.json();
    } catch {
      // An empty or non-JSON answer: the status says enough.
    }
    if (!response.ok) {
      const first = data?.errors?.[0] ?? data?.error ?? {};
      const error = new Error(first.message || `HTTP ${response.status}`);
      error.code = first.code;
      error.status = response.status;
      throw error;
    }
    return data;
  }

  const cartPath = (id, action = '') => `/ingress/commerce/carts/${id}${action ? `/${action}` : ''}`;

  // --- Formatting ------------------------------------------------------------------

  function money(amount, currency) {
    const digits = { JPY: 0, KWD: 3 }[currency] ?? 2;
    return new Intl.NumberFormat(LOCALES[currency] ?? 'en-US', {
      style: 'currency',
      currency,
      minimumFractionDigits: digits,
      maximumFractionDigits: digits,
    }).format(amount);
  }

  function element(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (key === 'class') node.className = value;
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children) node.append(child);
    return node;
  }

  function say(text, isError = false) {
    const message = $('message');
    message.textContent = text;
    message.classList.toggle('error', isError);
  }

  const currentProfile = () =>
    profiles.find((p) => p.profileKey === $('profile').value) ?? profiles[0];

  // --- Rendering -------------------------------------------------------------------

  function renderProducts() {
    const profile = currentProfile();
    const grid = $('products');
    grid.replaceChildren(
      ...products.map((product, index) => {
        const initials = product.name
          .split(' ')
          .map((word) => word[0])
          .join('')
          .slice(0, 2)
          .toUpperCase();
        return element(
          'article',
          { class: 'card', 'data-testid': `product-${product.productNumber}` },
          element('div', { class: 'tile', style: `background:${COLORS[index % COLORS.length]}` }, initials),
          element(
            'div',
            { class: 'card-body' },
            element('span', { class: 'name' }, product.name),
            element('span', { class: 'sku' }, product.productNumber),
            element('span', { class: 'price' }, money(product.prices[profile.currencyCode], profile.currencyCode)),
            element(
              'button',
              { class: 'primary', type: 'button', onclick: () => act(() => addItem(product.productNumber)) },
              'Add to cart',
            ),
          ),
        );
      }),
    );
  }

  function renderCart() {
    const state = cart?.cartState ?? 'none';
    const pill = $('cart-state');
    pill.dataset.state = state;
    pill.textContent = cart ? `${cart.cartNumber} · ${state}` : 'no cart';

    if (cart?.cartState === 'completed') {
      hideKustom();
      renderConfirmation();
      return;
    }
    keepKustomInStep();
    $('cart-panel').hidden = false;
    $('confirmation').hidden = true;

    const items = cart?.items ?? [];
    const currency = cart?.currencyCode ?? currentProfile()?.currencyCode ?? 'SEK';
    const open = cart?.cartState === 'open';
    $('cart-empty').hidden = items.length > 0;
    $('lines').replaceChildren(
      ...items.map((item) =>
        element(
          'li',
          { class: 'line', 'data-testid': `line-${item.productNumber}` },
          element(
            'div',
            { class: 'row' },
            element('span', { class: 'title' }, item.description ?? item.productNumber),
            element('span', { class: 'amount' }, money(item.total, currency)),
          ),
          element(
            'div',
            { class: 'row' },
            element(
              'span',
              { class: 'meta' },
              `${money(item.unitPrice, currency)} each` +
                (item.discount > 0 ? ` · ${money(item.discount, currency)} off` : ''),
            ),
            element(
              'span',
              { class: 'stepper' },
              element('button', {
                class: 'secondary', type: 'button', 'aria-label': 'One less',
                onclick: () => act(() => changeQuantity(item, item.quantity - 1)),
              }, '−'),
              element('span', { class: 'qty' }, String(item.quantity)),
              element('button', {
                class: 'secondary', type: 'button', 'aria-label': 'One more',
                onclick: () => act(() => changeQuantity(item, item.quantity + 1)),
              }, '+'),
              element('button', {
                class: 'link', type: 'button',
                onclick: () => act(() => mutate('remove-item', { cartItemId: item.cartItemId })),
              }, 'Remove'),
            ),
          ),
        ),
      ),
    );

    $('coupons').replaceChildren(
      ...(cart?.promotions ?? []).map((promotion) =>
        element(
          'li',
          {},
          `${promotion.couponCode}: ${promotion.description} (−${money(promotion.calculatedTotal, currency)})`,
          element('button', {
            type: 'button', 'aria-label': `Remove ${promotion.couponCode}`,
            onclick: () => act(() => mutate('remove-coupon', { couponCode: promotion.couponCode })),
          }, '×'),
        ),
      ),
    );

    const rows = [];
    if (cart && items.length > 0) {
      rows.push(['Products', money(cart.productTotal, currency)]);
      rows.push(['Shipping', cart.shippingTotal > 0 ? money(cart.shippingTotal, currency) : 'Free']);
      if (cart.shippingDiscount > 0) {
        rows.push(['Shipping discount', `−${money(cart.shippingDiscount, currency)}`, 'discount']);
      }
      rows.push([cart.taxIncluded ? 'Tax included' : 'Tax', money(cart.orderTaxTotal, currency)]);
      rows.push(['Total', money(cart.orderTotal, currency), 'grand']);
    }
    $('totals').replaceChildren(
      ...rows.flatMap(([label, value, kind]) => [
        element('dt', { class: kind ?? '' }, label),
        element('dd', { class: kind ?? '', 'data-testid': `total-${label.toLowerCase().replace(/ /g, '-')}` }, value),
      ]),
    );

    if (document.activeElement !== $('email')) $('email').value = cart?.email ?? '';
    const pay = $('pay');
    // With Kustom's checkout open, the customer pays in it, not here.
    const inKustom = !$('checkout').hidden;
    pay.disabled = busy || !open || items.length === 0 || inKustom;
    pay.textContent = inKustom
      ? 'Pay in the Kustom checkout'
      : open && items.length > 0 ? `Pay ${money(cart.orderTotal, currency)}` : 'Pay';
  }

  function renderConfirmation() {
    $('cart-panel').hidden = true;
    $('confirmation').hidden = false;
    $('order-number').textContent = cart.orderNumber ?? '';
    $('done-cart').textContent = cart.cartNumber;
    $('done-state').textContent = cart.cartState;
    $('done-total').textContent = money(cart.orderTotal, cart.currencyCode);
    $('done-provider').textContent = remember.get('provider') ?? '';
    $('inspect').href = `/sandbox/carts/${cart.cartId}`;
  }

  function show(next) {
    // Events and answers can cross; an older cart never replaces a newer state of the
    // same cart once it has been completed.
    if (cart && next.cartId === cart.cartId && cart.cartState !== 'open' && next.cartState === 'open') return;
    cart = next;
    renderCart();
  }

  // --- Cart ------------------------------------------------------------------------

  // Follows the cart's server-sent events: `init` on connect, `updated` after every
  // change (ours, or the gateway's when it completes the cart), `error` when rejected.
  // Resolves once the stream is live, so that nothing done afterwards can be missed.
  function follow(cartId) {
    events?.close();
    events = new EventSource(cartPath(cartId, 'events'));
    const update = (event) => {
      // Which event last rendered the cart, for people (and tests) watching it live.
      $('cart-state').dataset.event = event.type;
      show(JSON.parse(event.data));
    };
    const live = new Promise((resolve) => events.addEventListener('init', resolve, { once: true }));
    events.addEventListener('init', update);
    events.addEventListener('updated', update);
    events.addEventListener('error', (event) => {
      // A connection error carries no data; the browser reconnects by itself.
      if (!event.data) return;
      show(JSON.parse(event.data));
      say('This cart was rejected and can no longer be paid. Add a product to start a new one.', true);
    });
    // A stream that cannot connect must not hold the page up: it reconnects by itself.
    return Promise.race([live, new Promise((resolve) => setTimeout(resolve, 5000))]);
  }

  async function newCart() {
    const profile = currentProfile();
    const { cartId } = await api('POST', '/ingress/commerce/carts', {
      profileKey: profile.profileKey,
      locale: LOCALES[profile.currencyCode] ?? 'en-US',
    });
    remember.set('cart', cartId);
    history.replaceState(null, '', `/?cart=${cartId}`);
    cart = await api('GET', cartPath(cartId));
    await follow(cartId);
  }

  async function mutate(action, body) {
    show(await api('POST', cartPath(cart.cartId, action), body));
  }

  async function addItem(productNumber) {
    if (!cart || cart.cartState !== 'open' || cart.profileKey !== currentProfile().profileKey) {
      await newCart();
    }
    await mutate('add-item', { productNumber, quantity: 1 });
  }

  function changeQuantity(item, quantity) {
    return quantity < 1
      ? mutate('remove-item', { cartItemId: item.cartItemId })
      : mutate('set-quantity', { cartItemId: item.cartItemId, quantity });
  }

  // Runs one user action at a time and reports its error where the customer looks.
  async function act(action) {
    if (busy) return;
    busy = true;
    say('');
    renderCart();
    try {
      await action();
    } catch (error) {
      say(error.message, true);
    } finally {
      busy = false;
      renderCart();
    }
  }

  // --- Payment ---------------------------------------------------------------------

  const chosenProvider = () => document.querySelector('input[name=provider]:checked')?.value;
  const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  // Where a PSP sends the customer back to: this page, with the cart and the provider in
  // the URL (they survive the round trip there, and in localStorage).
  const backHere = (provider) => `${location.origin}/?cart=${cart.cartId}&provider=${provider}`;
  const startPayment = (provider, body) => api('POST', cartPath(cart.cartId, `payment/${provider}`), body);

  // How each provider's payment is started: a redirect to a hosted page (mock), Stripe
  // (Stripe.js, or its sandbox stand-in), or Kustom's embedded checkout.
  const PAYMENTS = {
    stripe: payWithStripe,
    kustom: payWithKustom,
  };

  async function pay() {
    const provider = chosenProvider();
    if (!provider) throw new Error('Choose how to pay.');
    remember.set('provider', provider);
    say('Starting the payment…');
    if (PAYMENTS[provider]) {
      await PAYMENTS[provider]();
      return;
    }
    const session = await startPayment(provider, { returnUrl: backHere(provider) });
    if (!session?.redirectUrl) {
      throw new Error(
        `${provider} answered with ${Object.keys(session ?? {}).join(', ') || 'nothing'}, ` +
          'not a page to send you to: this demo page cannot pay with it.',
      );
    }
    say('Taking you to the payment page…');
    location.assign(session.redirectUrl);
  }

  // Stripe. A storefront in production loads Stripe.js with the publishable key from
  // `GET /ingress/stripe/publicKey` and calls `stripe.confirmPayment(…)` with the
  // PaymentIntent's client secret; Stripe comes back to `return_url` with
  // `payment_intent`, `payment_intent_client_secret` and `redirect_status`.
  async function payWithStripe() {
    const { clientSecret, paymentIntentId } = await startPayment('stripe', {});
    const publishableKey = await stripePublicKey();
    const stripe = sandboxStripe(publishableKey);
    await stripe.confirmPayment({ clientSecret, paymentIntentId, confirmParams: { return_url: backHere('stripe') } });
  }

  async function stripePublicKey() {
    const response = await fetch('/ingress/stripe/publicKey', { headers: { Accept: 'application/json' } });
    if (!response.ok) throw new Error(`Stripe's publishable key is not configured (HTTP ${response.status}).`);
    return (await response.json()).publicKey;
  }

  // SANDBOX STAND-IN FOR STRIPE.JS. Stripe.js cannot load offline, so this has the one
  // call the demo needs, `confirmPayment`, and sends the customer to the fake Stripe's
  // hosted test page (`/fakes/stripe/pay/{pi}`), which confirms the PaymentIntent with a
  // test card, sends the signed webhook, and comes back as Stripe does. Against the real
  // Stripe (no fake mounted) it says so instead of pretending.
  function sandboxStripe(publishableKey) {
    return {
      async confirmPayment({ clientSecret, paymentIntentId, confirmParams }) {
        const query = new URLSearchParams({ client_secret: clientSecret, return_url: confirmParams.return_url });
        const page = `/fakes/stripe/pay/${encodeURIComponent(paymentIntentId)}?${query}`;
        const fake = await fetch(page, { method: 'HEAD' }).catch(() => null);
        if (!fake?.ok) {
          throw new Error(
            `The fake Stripe's test page is not here (${fake ? `HTTP ${fake.status}` : 'no answer'}): ` +
              `this gateway talks to the real Stripe (publishable key ${publishableKey}), whose ` +
              'Stripe.js this offline demo does not load. Choose mock to pay on a hosted page.',
          );
        }
        say('Taking you to the fake Stripe test page (it stands in for Stripe.js)…');
        location.assign(page);
      },
    };
  }

  // Kustom. The gateway answers with Kustom's `htmlSnippet`, which goes into the page
  // with its scripts re-run (scripts set through innerHTML do not run). When the
  // customer completes the purchase, Kustom sends the whole page to the confirmation
  // URL, `{checkout.order.id}` replaced (so the braces must stay raw here).
  async function payWithKustom() {
    const { htmlSnippet } = await startPayment('kustom', {
      termsUrl: `${location.origin}/#terms`,
      checkoutUrl: backHere('kustom'),
      confirmationUrl: `${backHere('kustom')}&kustom_order_id={checkout.order.id}`,
    });
    showKustom(htmlSnippet);
    say('');
  }

  function showKustom(htmlSnippet) {
    const container = $('kustom-snippet');
    container.innerHTML = htmlSnippet;
    for (const old of container.querySelectorAll('script')) {
      const script = document.createElement('script');
      for (const { name, value } of old.attributes) script.setAttribute(name, value);
      script.text = old.text;
      old.replaceWith(script);
    }
    clearTimeout(kustom.fallback);
    Object.assign(kustom, { suspended: false, shown: cart?.fields?.kustomSyncHash });
    delete $('checkout').dataset.suspensions;
    $('catalog').hidden = true;
    $('checkout').hidden = false;
  }

  function hideKustom() {
    if ($('checkout').hidden) return;
    clearTimeout(kustom.fallback);
    $('kustom-snippet').replaceChildren();
    delete window._klarnaCheckout;
    $('checkout').hidden = true;
    $('catalog').hidden = false;
    renderCart();
  }

  // While a cart change is on its way to Kustom, the checkout is suspended, as Kustom
  // asks: the gateway sets the cart's `kustomPendingHash` when it sees the change and
  // `kustomSyncHash` once Kustom holds it. Once they agree, the checkout resumes (the
  // fake's resume reloads the frame, showing the new order). A sync that never reports
  // back must not leave the customer stuck: after 10 s it resumes anyway.
  const kustom = { suspended: false, shown: undefined, fallback: 0 };
  function keepKustomInStep() {
    if ($('checkout').hidden || !window._klarnaCheckout || !cart) return;
    const { kustomPendingHash: pending, kustomSyncHash: synced } = cart.fields ?? {};
    const behind = Boolean(pending) && pending !== synced;
    if (behind && !kustom.suspended) {
      kustom.suspended = true;
      // How often it was suspended, for people (and tests) watching.
      $('checkout').dataset.suspensions = String(Number($('checkout').dataset.suspensions ?? 0) + 1);
      window._klarnaCheckout((api) => api.suspend());
      kustom.fallback = setTimeout(resumeKustom, 10_000);
    } else if (!behind && (kustom.suspended || synced !== kustom.shown)) {
      resumeKustom();
    }
  }

  function resumeKustom() {
    clearTimeout(kustom.fallback);
    kustom.suspended = false;
    kustom.shown = cart?.fields?.kustomSyncHash;
    window._klarnaCheckout?.((api) => api.resume());
  }

  // Back from the PSP. The gateway completes the cart when the PSP's webhook (or
  // Kustom's push) arrives; confirming as well, as a storefront does on the customer's
  // return, completes it at once. Either way the cart turns `completed` over the event
  // stream. An authorization can lag the return (Kustom's), so a confirmation that is
  // not complete yet is tried again after 1, 2, 4 and 8 s, as Hantera's storefront does.
  const CONFIRM_BACKOFF_MS = [0, 1000, 2000, 4000, 8000];
  const DECLINED = ['failed', 'voided', 'canceled', 'requires_payment_method'];

  async function returnedFromPsp(provider, status) {
    if (DECLINED.includes(status)) {
      say('The payment was declined and nothing was charged. Try again or choose another way to pay.', true);
      return;
    }
    if (!provider || cart?.cartState !== 'open') return;
    say('Payment approved. Confirming your order…');
    let last = '';
    for (const delay of CONFIRM_BACKOFF_MS) {
      if (delay) await wait(delay);
      if (cart?.cartState !== 'open') return;
      try {
        const answer = await api('POST', cartPath(cart.cartId, `payment/${provider}/confirm`));
        if (answer?.status === 'completed') return;
        last = `the payment is ${answer?.status ?? 'not confirmed'}`;
      } catch (error) {
        // A 4xx will not change by asking again; a 5xx or a lost answer may.
        if (error.status >= 400 && error.status < 500) {
          say(`Your order could not be confirmed: ${error.message}`, true);
          return;
        }
        last = error.message;
      }
      say(`Confirming your order… (${last})`);
    }
    if (cart?.cartState === 'open') {
      say(
        `Your order is not confirmed yet (${last}). It completes here by itself when ` +
          `${provider} tells the gateway; nothing is charged twice.`,
        true,
      );
    }
  }

  // --- Start -----------------------------------------------------------------------

  async function start() {
    const [profileList, catalog, enabled] = await Promise.all([
      api('GET', '/ingress/commerce/cart-profiles'),
      api('GET', '/sandbox/products'),
      api('GET', '/sandbox/providers'),
    ]);
    profiles = profileList;
    products = catalog;

    const params = new URLSearchParams(location.search);
    const cartId = params.get('cart') ?? remember.get('cart');
    // Back from a PSP: the mock adds `status`, Stripe `redirect_status`, Kustom's
    // confirmation URL `kustom_order_id`, and a purchase Kustom refused `kustom_error`.
    const returned = params.get('provider') ?? (params.has('kustom_order_id') ? 'kustom' : null);
    if (returned) remember.set('provider', returned);
    const pspStatus = params.get('status') ?? params.get('redirect_status') ?? (params.has('kustom_order_id') ? 'confirm' : null);
    const kustomError = params.get('kustom_error');
    if (cartId) {
      try {
        cart = await api('GET', cartPath(cartId));
      } catch {
        // A cart from an earlier run (the sandbox keeps carts in memory): start afresh.
        cart = null;
        remember.set('cart', null);
      }
    }
    history.replaceState(null, '', cart ? `/?cart=${cart.cartId}` : '/');

    const select = $('profile');
    select.replaceChildren(
      ...profiles.map((p) => element('option', { value: p.profileKey }, `${p.currencyCode} · ${p.defaultCountryCode}`)),
    );
    select.value = cart?.profileKey ?? remember.get('profile') ?? 'default';
    if (!select.value) select.value = profiles[0]?.profileKey ?? '';
    select.addEventListener('change', () => {
      remember.set('profile', select.value);
      if (cart && cart.profileKey !== select.value) {
        events?.close();
        cart = null;
        remember.set('cart', null);
        history.replaceState(null, '', '/');
      }
      renderProducts();
      renderCart();
    });

    const preferred = remember.get('provider') ?? 'mock';
    const ids = enabled.providers.map((p) => p.id);
    $('providers').replaceChildren(
      ...ids.map((id) =>
        element(
          'label',
          { class: 'provider' },
          Object.assign(element('input', { type: 'radio', name: 'provider', value: id }), {
            checked: id === (ids.includes(preferred) ? preferred : ids[0]),
          }),
          element('span', {}, id),
          element('span', { class: 'hint' }, HINTS[id] ?? 'no offline page in this demo'),
        ),
      ),
    );
    // Another provider chosen while Kustom's checkout is open: back to the catalog.
    $('providers').addEventListener('change', () => {
      if (chosenProvider() !== 'kustom') hideKustom();
    });
    $('back').addEventListener('click', () => {
      hideKustom();
      say('');
    });

    $('pay').addEventListener('click', () => act(pay));
    $('coupon-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const code = $('coupon').value.trim();
      if (!code || !cart) return;
      act(async () => {
        await mutate('add-coupon', { couponCode: code });
        $('coupon').value = '';
      });
    });
    $('email').addEventListener('change', () => {
      const email = $('email').value.trim();
      if (email && cart?.cartState === 'open') act(() => mutate('email', { email }));
    });
    $('again').addEventListener('click', () => {
      hideKustom();
      events?.close();
      cart = null;
      remember.set('cart', null);
      history.replaceState(null, '', '/');
      say('');
      renderCart();
    });

    renderProducts();
    renderCart();
    if (cart) {
      await follow(cart.cartId);
      if (kustomError) {
        say(`Kustom could not complete the purchase (${kustomError}); nothing was charged. Check the cart and pay again.`, true);
      } else if (pspStatus) {
        await returnedFromPsp(remember.get('provider'), pspStatus);
      }
    }
  }

  start().catch((error) => say(`The demo could not start: ${error.message}`, true));
})();

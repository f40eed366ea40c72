// The demo checkout: a storefront as a shop would write it against Hantera's Commerce
// cart API (the same calls as @hantera/storefront-sdk's cart client) and the gateway's
// payment ingress. Everything is same-origin: the embedded default serves the sandbox
// Hantera, the gateway and the mock PSP's hosted page from one address.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
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
      renderConfirmation();
      return;
    }
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
    pay.disabled = busy || !open || items.length === 0;
    pay.textContent = open && items.length > 0 ? `Pay ${money(cart.orderTotal, currency)}` : 'Pay';
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

  async function pay() {
    const provider = chosenProvider();
    if (!provider) throw new Error('Choose how to pay.');
    remember.set('provider', provider);
    say('Starting the payment…');
    // The PSP sends the customer back here; the cart id survives the round trip in the
    // URL (and in localStorage).
    const returnUrl = `${location.origin}/?cart=${cart.cartId}`;
    const session = await api('POST', cartPath(cart.cartId, `payment/${provider}`), { returnUrl });
    if (session?.redirectUrl) {
      say('Taking you to the payment page…');
      location.assign(session.redirectUrl);
      return;
    }
    say(
      `${provider} answered with ${Object.keys(session ?? {}).join(', ') || 'nothing'}: it pays ` +
        'through its own widget, which this demo page does not embed. Choose mock to pay on a hosted page.',
      true,
    );
  }

  // Back from the PSP: the gateway completes the cart when the PSP's webhook arrives;
  // confirming as well (what a redirect storefront does) completes it at once. Either
  // way the cart turns `completed` over the event stream.
  async function returnedFromPsp(status) {
    const provider = remember.get('provider');
    if (['failed', 'voided'].includes(status)) {
      say('The payment was declined. Try again or choose another card.', true);
      return;
    }
    if (!provider || cart?.cartState !== 'open') return;
    say('Payment approved. Confirming your order…');
    try {
      await api('POST', cartPath(cart.cartId, `payment/${provider}/confirm`));
    } catch (error) {
      // The webhook completes the cart anyway; the stream will show it.
      say(`Waiting for the payment provider… (${error.message})`);
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
    const pspStatus = params.get('status');
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
          element('span', { class: 'hint' }, id === 'mock' ? 'hosted test page' : 'needs its own widget'),
        ),
      ),
    );

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
      if (pspStatus) await returnedFromPsp(pspStatus);
    }
  }

  start().catch((error) => say(`The demo could not start: ${error.message}`, true));
})();

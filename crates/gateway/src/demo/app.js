// The demo checkout: a storefront as a shop would write it against Hantera's Commerce
// cart API (the same calls as @hantera/storefront-sdk's cart client) and the gateway's
// payment ingress. Everything is same-origin: the embedded default serves the sandbox
// Hantera, the gateway and every provider's fake PSP from one address, so the page pays
// offline with each of them.
//
// The page names no provider. What one provider needs here comes from that provider's
// crate, served by its fake: `GET /sandbox/providers` lists the enabled providers, each
// with the address of its demo module (`/fakes/{id}/demo.js`), an ES module exporting
//   hint                  what the provider's option says about how it pays here;
//   pay(payment, ui)      starts the payment and takes the customer on: `payment` is
//                         { provider, cartId, returnUrl, start(body) } (start asks the
//                         gateway for the session and answers what the provider returned),
//                         `ui` is { say(text, isError), go(url), redirect(payment),
//                         embed(checkout), cart() } (below);
//   returned(params)      (optional) what the provider's return to this page says, from
//                         the URL's parameters: { declined: true }, { confirm: true },
//                         { error: 'text' }, or null when the URL says nothing.
// A provider without a module is paid by redirect to the `redirectUrl` of its answer,
// and its return says `status`.
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
  // Each enabled provider's demo module, by id (none for a provider without one).
  const modules = {};
  // The embedded checkout on show, if any: { provider, onCart, onClose }.
  let embedded = null;

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
      closeCheckout();
      renderConfirmation();
      return;
    }
    if (embedded && cart) embedded.onCart?.(cart);
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
    // With an embedded checkout open, the customer pays in it, not here.
    pay.disabled = busy || !open || items.length === 0 || Boolean(embedded);
    pay.textContent = embedded
      ? embedded.payLabel
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

  // What a provider's demo module may do with the page.
  const ui = {
    say,
    go: (url) => location.assign(url),
    cart: () => cart,
    // The payment by redirect: the hosted page the gateway's answer names, which comes
    // back to `returnUrl`.
    async redirect(payment) {
      const session = await payment.start({ returnUrl: payment.returnUrl });
      if (!session?.redirectUrl) {
        throw new Error(
          `${payment.provider} answered with ${Object.keys(session ?? {}).join(', ') || 'nothing'}, ` +
            'not a page to send you to: this demo page cannot pay with it.',
        );
      }
      say('Taking you to the payment page…');
      location.assign(session.redirectUrl);
    },
    // A checkout embedded in the page, in place of the catalog, until the cart completes,
    // another provider is chosen or the customer goes back: { title, note (HTML), payLabel
    // (what the cart's button says meanwhile), onCart(cart) (called with every new state
    // of the cart), onClose() }. Answers { section, frame }: the section shown and the
    // element to fill.
    embed(checkout) {
      closeCheckout();
      embedded = { provider: chosenProvider(), ...checkout };
      $('checkout-title').textContent = checkout.title;
      $('checkout-note').innerHTML = checkout.note ?? '';
      delete $('checkout').dataset.suspensions;
      $('catalog').hidden = true;
      $('checkout').hidden = false;
      renderCart();
      return { section: $('checkout'), frame: $('checkout-frame') };
    },
  };

  async function pay() {
    const provider = chosenProvider();
    if (!provider) throw new Error('Choose how to pay.');
    remember.set('provider', provider);
    say('Starting the payment…');
    const payment = {
      provider,
      cartId: cart.cartId,
      returnUrl: backHere(provider),
      start: (body) => startPayment(provider, body),
    };
    const module = modules[provider];
    await (module ? module.pay(payment, ui) : ui.redirect(payment));
  }

  function closeCheckout() {
    if (!embedded) return;
    const closing = embedded;
    embedded = null;
    closing.onClose?.();
    $('checkout-frame').replaceChildren();
    $('checkout').hidden = true;
    $('catalog').hidden = false;
    renderCart();
  }

  // What the URL says about a return from `provider`'s payment page.
  function returnOf(provider, params) {
    const module = modules[provider];
    if (module?.returned) return module.returned(params);
    const status = params.get('status');
    if (!status) return null;
    return ['failed', 'voided', 'canceled'].includes(status) ? { declined: true } : { confirm: true };
  }

  // Back from the PSP. The gateway completes the cart when the PSP's webhook (or push)
  // arrives; confirming as well, as a storefront does on the customer's return, completes
  // it at once. Either way the cart turns `completed` over the event stream. An
  // authorization can lag the return, so a confirmation that is not complete yet is tried
  // again after 1, 2, 4 and 8 s, as Hantera's storefront does.
  const CONFIRM_BACKOFF_MS = [0, 1000, 2000, 4000, 8000];

  async function returnedFromPsp(provider, outcome) {
    if (outcome.declined) {
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
    await Promise.all(
      enabled.providers
        .filter((p) => p.demo)
        .map(async (p) => {
          modules[p.id] = await import(p.demo);
        }),
    );

    const params = new URLSearchParams(location.search);
    const cartId = params.get('cart') ?? remember.get('cart');
    // Back from a PSP: every return URL this page hands out names the provider, and the
    // provider's own parameters say how it went.
    const returned = params.get('provider');
    if (returned) remember.set('provider', returned);
    const provider = remember.get('provider');
    const outcome = provider ? returnOf(provider, params) : null;
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

    const preferred = remember.get('provider') ?? enabled.preferred;
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
          element('span', { class: 'hint' }, modules[id]?.hint ?? 'no offline page in this demo'),
        ),
      ),
    );
    // Another provider chosen while a checkout is embedded: back to the catalog.
    $('providers').addEventListener('change', () => {
      if (embedded && chosenProvider() !== embedded.provider) closeCheckout();
    });
    $('back').addEventListener('click', () => {
      closeCheckout();
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
      closeCheckout();
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
      if (outcome?.error) {
        say(outcome.error, true);
      } else if (outcome) {
        await returnedFromPsp(provider, outcome);
      }
    }
  }

  start().catch((error) => say(`The demo could not start: ${error.message}`, true));
})();

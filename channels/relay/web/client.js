/*
 * notify browser client: Kommo-style pop-ups over the dispatcher's websocket.
 *
 *   const conn = KommoNotify.connect({ token });   // opens /ws, shows pop-ups
 *   APP.notifications.show_message({ header: "Warning", text: "Connection established" });
 *
 * Dependency-free, no build step. It defines window.KommoNotify and, on connect,
 * window.APP.notifications; nothing else is global. Payload strings never reach
 * innerHTML: text is parsed inertly and rebuilt from an allowlist, everything else is
 * set as textContent. The API is described in the README, section "Browser client".
 */
(() => {
  'use strict';

  if (window.KommoNotify) return; // included twice: the first copy stays in charge

  const TYPES = ['show_message', 'show_message_error', 'show_notification', 'add_error', 'add_call'];

  const BACKOFF_MIN = 500; // ms, the first reconnect waits about this long
  const BACKOFF_MAX = 30000; // ms, and never longer than this
  const STABLE_AFTER = 10000; // ms a connection must last before the backoff starts over
  const DISMISS_AFTER = 10000; // ms a pop-up stays unless hovered or focused
  const MAX_CARDS = 5;

  // ---------------------------------------------------------------- connection

  /**
   * Connects to the dispatcher and shows the user's pop-ups.
   * @param {object} options
   * @param {string} options.token the user token (a JWT naming account and user)
   * @param {string} [options.url] the dispatcher's base URL, which may end in a path
   *   prefix; default: this page's origin
   * @param {Element} [options.container] where the pop-up stack goes; default: a fixed
   *   stack in the bottom-right corner of the page
   * @param {number} [options.dismissAfter] ms a pop-up stays; 0 keeps it until closed
   * @param {function} [options.onFrame] called with every frame received
   * @param {function} [options.onStatus] called with {status, account, user, ...}
   * @param {function} [options.refreshToken] returns (a promise of) a new token when
   *   the server closes the connection because the token expired
   * @param {boolean} [options.installApp] false leaves window.APP alone
   * @returns {EventTarget} the connection: events "status" and "frame" (detail), the
   *   properties status, account, user, unread and notifications, and the methods
   *   close() and setToken(token)
   */
  function connect(options) {
    const opts = Object.assign({}, options);
    if (typeof opts.token !== 'string' || opts.token === '') {
      throw new TypeError('KommoNotify.connect: options.token is required');
    }
    const base = baseURL(opts.url);
    const stack = stackFor(opts.container);
    const dismissAfter = Number.isFinite(opts.dismissAfter) && opts.dismissAfter >= 0 ? opts.dismissAfter : DISMISS_AFTER;

    const conn = new EventTarget();
    let token = opts.token;
    let claims = decodeClaims(token);
    let ws = null;
    let attempt = 0; // failed connections in a row, for the backoff
    let retryTimer = 0;
    let stableTimer = 0;
    let stopped = false; // close() was called, or the token expired with no way to refresh it
    let greeted = false; // a hello arrived on some earlier connection: the next one resumes
    let seq = 0; // the latest center seq seen
    const state = { status: 'idle', account: claims.acc, user: claims.sub, unread: 0 };

    const emit = (name, detail, hook) => {
      conn.dispatchEvent(new CustomEvent(name, { detail }));
      if (typeof hook === 'function') safely(hook, detail);
    };
    const setStatus = (status, extra) => {
      state.status = status;
      emit('status', Object.assign({ status, account: state.account, user: state.user }, extra), opts.onStatus);
    };

    function open() {
      retryTimer = 0;
      if (stopped) return;
      setStatus('connecting', { attempt });
      const url = new URL('ws', base);
      url.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
      url.searchParams.set('token', token);
      let sock;
      try {
        sock = new WebSocket(url.href);
      } catch {
        scheduleReconnect();
        return;
      }
      ws = sock;
      let opened = false;
      sock.addEventListener('open', () => { opened = true; });
      sock.addEventListener('message', (ev) => { if (ws === sock) receive(ev.data); });
      // An error event is always followed by close, which decides what happens next.
      sock.addEventListener('close', (ev) => {
        if (ws !== sock) return;
        ws = null;
        clearTimeout(stableTimer);
        if (stopped) return;
        if ((ev.code === 1008 && /token expired/i.test(ev.reason)) || (!opened && expiredLocally(claims))) {
          tokenExpired();
          return;
        }
        scheduleReconnect({ code: ev.code });
      });
    }

    function scheduleReconnect(extra) {
      // Exponential backoff with equal jitter: half the step is fixed, half random, so
      // tabs that lost the same server do not come back in lockstep.
      const step = Math.min(BACKOFF_MAX, BACKOFF_MIN * 2 ** attempt);
      const delay = Math.round(step / 2 + Math.random() * step / 2);
      attempt++;
      setStatus('reconnecting', Object.assign({ attempt, delay }, extra));
      retryTimer = setTimeout(open, delay);
    }

    async function tokenExpired() {
      if (typeof opts.refreshToken === 'function') {
        try {
          const fresh = await opts.refreshToken();
          if (typeof fresh === 'string' && fresh !== '') useToken(fresh);
        } catch {
          // The refresh failed: try again after the backoff, with whatever token we have.
        }
        if (!stopped) scheduleReconnect({ reason: 'token expired' });
        return;
      }
      stopped = true;
      setStatus('expired');
    }

    function useToken(fresh) {
      token = fresh;
      claims = decodeClaims(fresh);
      state.account = claims.acc;
      state.user = claims.sub;
    }

    function receive(data) {
      let frame;
      try {
        frame = JSON.parse(data);
      } catch {
        return; // not ours to judge; the server only sends JSON
      }
      if (!isObject(frame)) return;
      switch (frame.kind) {
        case 'hello':
          state.account = text(frame.account) || state.account;
          state.user = text(frame.user) || state.user;
          state.unread = count(frame.unread);
          if (greeted && seq > 0) {
            send({ op: 'resume', after: seq });
          } else {
            seq = Math.max(seq, count(frame.seq));
          }
          greeted = true;
          clearTimeout(stableTimer);
          stableTimer = setTimeout(() => { attempt = 0; }, STABLE_AFTER);
          setStatus('open', { unread: state.unread });
          break;
        case 'popup':
          stack.show(frame, dismissAfter);
          break;
        case 'center':
          if (typeof frame.unread === 'number') state.unread = count(frame.unread);
          if (frame.op === 'added' && isObject(frame.item)) seq = Math.max(seq, count(frame.item.seq));
          if (frame.op === 'resumed') seq = Math.max(seq, count(frame.seq));
          break;
        default: // a kind from a newer server: reported to onFrame, otherwise ignored
      }
      emit('frame', frame, opts.onFrame);
    }

    function send(message) {
      if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
    }

    const onOnline = () => { // the network is back: do not sit out the rest of a long backoff
      if (retryTimer) {
        clearTimeout(retryTimer);
        open();
      }
    };
    window.addEventListener('online', onOnline);

    async function post(type, params) {
      const account = state.account;
      const user = state.user;
      if (!account || !user) {
        throw notifyError(0, { code: 'unauthorized', message: 'the token names no account or user' });
      }
      const url = new URL(`api/v1/notify/${encodeURIComponent(account)}/${encodeURIComponent(user)}/${type}`, base);
      let res;
      try {
        res = await fetch(url.href, {
          method: 'POST',
          headers: { 'Authorization': `Bearer ${token}`, 'Content-Type': 'application/json' },
          body: JSON.stringify(params === undefined ? null : params),
          credentials: 'omit',
          referrerPolicy: 'no-referrer',
        });
      } catch (err) {
        throw notifyError(0, { code: 'network', message: 'cannot reach the notification server' }, err);
      }
      let body = null;
      try {
        body = await res.json();
      } catch {
        // an empty or non-JSON body; the status says enough
      }
      if (!res.ok) throw notifyError(res.status, body && body.error);
      return body;
    }

    const notifications = {};
    for (const type of TYPES) {
      notifications[type] = function (params) { return post(type, params); };
    }
    Object.freeze(notifications);

    Object.defineProperties(conn, {
      status: { get: () => state.status, enumerable: true },
      account: { get: () => state.account, enumerable: true },
      user: { get: () => state.user, enumerable: true },
      unread: { get: () => state.unread, enumerable: true },
      notifications: { value: notifications, enumerable: true },
      close: {
        value() {
          if (stopped && state.status === 'closed') return;
          stopped = true;
          clearTimeout(retryTimer);
          clearTimeout(stableTimer);
          retryTimer = 0;
          window.removeEventListener('online', onOnline);
          const sock = ws;
          ws = null;
          if (sock) sock.close(1000);
          setStatus('closed');
        },
      },
      setToken: {
        value(fresh) {
          if (typeof fresh !== 'string' || fresh === '') throw new TypeError('setToken: a token is required');
          useToken(fresh);
          if (state.status === 'expired') { // stopped for want of a token: start over
            stopped = false;
            attempt = 0;
            open();
          }
        },
      },
    });

    if (opts.installApp !== false) {
      window.APP = window.APP || {};
      window.APP.notifications = notifications;
    }
    // After the caller had a chance to add listeners: they see "connecting" too.
    queueMicrotask(open);
    return conn;
  }

  /**
   * The dispatcher's base: url (absolute, or relative to the page; a ws(s) URL of the
   * websocket itself is accepted too) without query or fragment, ending in "/", so that
   * a dispatcher behind a path prefix ("https://crm.example.com/notify/") works too.
   * Default: the page's origin.
   */
  function baseURL(url) {
    const u = new URL(typeof url === 'string' && url !== '' ? url : '/', location.href);
    if (u.protocol === 'ws:' || u.protocol === 'wss:') { // the websocket's own URL: its base
      u.protocol = u.protocol === 'wss:' ? 'https:' : 'http:';
      u.pathname = u.pathname.replace(/\/ws$/, '/');
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      throw new TypeError('KommoNotify.connect: options.url must be an http(s) or ws(s) URL');
    }
    u.search = '';
    u.hash = '';
    if (!u.pathname.endsWith('/')) u.pathname += '/';
    return u;
  }

  /** The token's account, user and expiry, read without verifying (the server does). */
  function decodeClaims(token) {
    try {
      const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      const json = decodeURIComponent(Array.from(atob(part), (c) => '%' + c.charCodeAt(0).toString(16).padStart(2, '0')).join(''));
      const c = JSON.parse(json);
      return { acc: text(c.acc), sub: text(c.sub), exp: count(c.exp) };
    } catch {
      return { acc: '', sub: '', exp: 0 };
    }
  }

  // A refused upgrade (an HTTP 401) reaches a page only as an abnormal close, so an
  // expiry well in the past by the local clock stands in for the server's reason.
  const expiredLocally = (claims) => claims.exp > 0 && claims.exp * 1000 < Date.now() - 60000;

  function notifyError(status, error, cause) {
    const e = isObject(error) ? error : {};
    const err = new Error(text(e.message) || `the notification server answered ${status}`, cause ? { cause } : undefined);
    err.name = 'NotifyError';
    err.status = status;
    err.code = text(e.code) || (status ? 'http_' + status : 'network');
    if (e.field) err.field = text(e.field);
    return err;
  }

  // Hooks belong to the integrator: their exceptions are reported, never swallowed,
  // and never allowed to break the connection.
  function safely(fn, arg) {
    try {
      fn(arg);
    } catch (err) {
      if (typeof reportError === 'function') reportError(err);
      else setTimeout(() => { throw err; });
    }
  }

  const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
  const text = (v) => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '');
  const count = (v) => (Number.isFinite(v) && v > 0 ? Math.floor(v) : 0);

  // ---------------------------------------------------------------- links and text

  const INVISIBLE = /[\s\\\u0000-\u001f\u007f-\u009f\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]/;

  /**
   * The link rule of the server, again: an absolute http(s) URL without credentials,
   * or a path that starts with exactly one "/". No whitespace, control or invisible
   * character and no backslash anywhere, because browsers drop or rewrite them
   * ("/\evil.com" opens evil.com). Returns the href to use, or null.
   */
  function safeHref(value) {
    if (typeof value !== 'string' || value === '' || value.length > 2048 || INVISIBLE.test(value)) return null;
    if (value[0] === '/') return value[1] === '/' ? null : value;
    let u;
    try {
      u = new URL(value);
    } catch {
      return null;
    }
    if ((u.protocol !== 'http:' && u.protocol !== 'https:') || !u.hostname || u.username || u.password) return null;
    return u.href;
  }

  /** Points a at href: a path stays in this tab, an absolute URL opens a new one. */
  function setLink(a, href) {
    a.href = href;
    if (href[0] !== '/') {
      a.target = '_blank';
      a.rel = 'noopener noreferrer';
    }
  }

  const ALLOWED = new Set(['A', 'B', 'STRONG', 'I', 'EM', 'P', 'BR', 'SPAN']);
  // Elements whose content is not text to show (the server drops it the same way).
  const DROPPED = new Set(['SCRIPT', 'STYLE', 'TEMPLATE', 'NOSCRIPT', 'IFRAME', 'OBJECT', 'EMBED', 'SVG', 'MATH',
    'TEXTAREA', 'TITLE', 'XMP', 'NOEMBED', 'NOFRAMES', 'SELECT', 'HEAD', 'CANVAS', 'VIDEO', 'AUDIO']);
  const MAX_DEPTH = 32;
  const HTML_NS = 'http://www.w3.org/1999/xhtml';

  /**
   * Rebuilds the HTML subset of a text field (a[href], b, strong, i, em, p, br, span)
   * as new nodes. DOMParser makes an inert document: nothing in it loads or runs. Only
   * the allowed elements are recreated, without any attribute but a checked href;
   * every other element leaves its text. Defense in depth: the server sanitizes too.
   */
  function richText(html) {
    const out = document.createDocumentFragment();
    if (typeof html !== 'string' || html === '') return out;
    const doc = new DOMParser().parseFromString(html, 'text/html');
    copyInto(out, doc.body, 0);
    return out;
  }

  function copyInto(parent, from, depth) {
    for (const node of from.childNodes) {
      if (node.nodeType === Node.TEXT_NODE) {
        parent.appendChild(document.createTextNode(node.data));
        continue;
      }
      if (node.nodeType !== Node.ELEMENT_NODE) continue; // comments and the like
      const tag = node.tagName.toUpperCase();
      if (DROPPED.has(tag)) continue;
      if (depth >= MAX_DEPTH) {
        parent.appendChild(document.createTextNode(node.textContent));
        continue;
      }
      if (!ALLOWED.has(tag) || node.namespaceURI !== HTML_NS) {
        copyInto(parent, node, depth + 1);
        continue;
      }
      let el;
      if (tag === 'A') {
        const href = safeHref(node.getAttribute('href'));
        if (href === null) { // an anchor without a usable href is its text
          copyInto(parent, node, depth + 1);
          continue;
        }
        el = document.createElement('a');
        setLink(el, href);
      } else {
        el = document.createElement(tag.toLowerCase());
      }
      if (tag !== 'BR') copyInto(el, node, depth + 1);
      parent.appendChild(el);
    }
  }

  // ---------------------------------------------------------------- pop-ups

  const SVG_NS = 'http://www.w3.org/2000/svg';
  // 24x24 glyphs drawn for this client: [filled?, ...path data].
  const GLYPHS = {
    robot: [true,
      'M7 6h10a3 3 0 0 1 3 3v7a3 3 0 0 1-3 3H7a3 3 0 0 1-3-3V9a3 3 0 0 1 3-3zm.25 5.75a1.75 1.75 0 1 0 3.5 0a1.75 1.75 0 1 0-3.5 0zm6 0a1.75 1.75 0 1 0 3.5 0a1.75 1.75 0 1 0-3.5 0zM9 15v1.5h6V15z',
      'M11.25 3.6h1.5V6h-1.5zM10.5 2.6a1.5 1.5 0 1 0 3 0a1.5 1.5 0 1 0-3 0zM2 10.5h1.5v4H2zm18.5 0H22v4h-1.5z'],
    phone: [false,
      'M5.5 3.5h3l1.8 4.6-2.3 1.5a11.5 11.5 0 0 0 6.4 6.4l1.5-2.3 4.6 1.8v3a2 2 0 0 1-2.1 2A16.5 16.5 0 0 1 3.5 5.6a2 2 0 0 1 2-2.1z'],
    error: [false, 'M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18z', 'M12 7.5v5.5', 'M12 16.4v.1'],
    close: [false, 'M6.5 6.5l11 11', 'M17.5 6.5l-11 11'],
    play: [true, 'M8 5.5v13l10.5-6.5z'],
    open: [false, 'M14 4h6v6', 'M20 4l-8.5 8.5', 'M18 14v4.5a1.5 1.5 0 0 1-1.5 1.5h-11A1.5 1.5 0 0 1 4 18.5v-11A1.5 1.5 0 0 1 5.5 6H10'],
  };

  function glyph(name) {
    const [filled, ...paths] = GLYPHS[name];
    const svg = document.createElementNS(SVG_NS, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    svg.setAttribute('class', 'kn-glyph');
    if (filled) {
      svg.setAttribute('fill', 'currentColor');
      svg.setAttribute('fill-rule', 'evenodd');
    } else {
      svg.setAttribute('fill', 'none');
      svg.setAttribute('stroke', 'currentColor');
      svg.setAttribute('stroke-width', '2');
      svg.setAttribute('stroke-linecap', 'round');
      svg.setAttribute('stroke-linejoin', 'round');
    }
    for (const d of paths) {
      const path = document.createElementNS(SVG_NS, 'path');
      path.setAttribute('d', d);
      svg.appendChild(path);
    }
    return svg;
  }

  function el(tag, className, textValue) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (textValue !== undefined) e.textContent = textValue;
    return e;
  }

  const ELEMENT_PATHS = { contact: 'contacts', lead: 'leads', company: 'companies' };
  const ELEMENT_NAMES = { contact: 'Open contact', lead: 'Open lead', company: 'Open company' };

  /**
   * What each type looks like: a look (message, error or call), a glyph or icon, a
   * title, rich text, an optional primary link (the whole card follows it) and extra
   * lines. Only the payload's own fields are read, each by its expected type.
   */
  function describe(type, p) {
    switch (type) {
      case 'show_message':
        return { look: 'message', icon: p.icon, glyph: 'robot', title: text(p.header), html: p.text };
      case 'show_message_error':
        return { look: 'error', glyph: 'error', title: text(p.header), html: p.text, link: p.link };
      case 'add_error':
        return { look: 'error', glyph: 'error', title: text(p.header) || 'Error', html: p.text, link: p.link };
      case 'show_notification': {
        const t = isObject(p.text) ? p.text : {};
        const call = p.type === 'call';
        return { look: call ? 'call' : 'error', kind: call ? 'call' : 'error', glyph: call ? 'phone' : 'error', title: text(t.header), html: t.text };
      }
      case 'add_call':
        return { look: 'call', glyph: 'phone', title: text(p.header) || 'Incoming call', html: p.text, call: p };
      default:
        return null;
    }
  }

  function buildCard(frame) {
    const p = isObject(frame.payload) ? frame.payload : {};
    const d = describe(frame.type, p);
    if (!d) return null;
    const rich = richText(d.html);
    if (!d.title && !rich.hasChildNodes()) return null; // nothing to show

    const card = el('div', `kn-card kn-${d.look}`);
    card.dataset.type = frame.type;
    card.dataset.id = text(frame.id);
    if (d.kind) card.dataset.kind = d.kind;

    const icon = el('div', 'kn-icon');
    const iconURL = safeHref(d.icon);
    if (iconURL && iconURL[0] !== '/') {
      const img = el('img');
      img.alt = '';
      img.referrerPolicy = 'no-referrer';
      img.decoding = 'async';
      img.addEventListener('error', () => img.replaceWith(glyph(d.glyph)), { once: true });
      img.src = iconURL;
      icon.appendChild(img);
    } else {
      icon.appendChild(glyph(d.glyph));
    }
    card.appendChild(icon);

    const body = el('div', 'kn-body');
    const title = el('div', 'kn-title');
    const link = safeHref(d.link);
    let primary = null;
    if (link) {
      primary = el('a', 'kn-link', d.title);
      setLink(primary, link);
      title.appendChild(primary);
    } else {
      title.textContent = d.title;
    }
    if (d.title) body.appendChild(title);

    if (rich.hasChildNodes()) {
      const t = el('div', 'kn-text');
      t.appendChild(rich);
      body.appendChild(t);
    }

    if (d.call) primary = callDetails(body, d.call) || primary;

    const when = formatDate(p.date);
    if (when) {
      const time = el('time', 'kn-date', when.label);
      time.dateTime = when.iso;
      body.appendChild(time);
    }
    card.appendChild(body);

    if (primary) {
      card.classList.add('kn-clickable');
      // The whole card is the link, as in Kommo; the anchor keeps it keyboard-reachable.
      card.addEventListener('click', (ev) => {
        if (ev.target instanceof Element && ev.target.closest('a, button')) return;
        primary.click();
      });
    }
    return card;
  }

  /** The add_call lines: from → to and the duration, the element and recording links. */
  function callDetails(body, call) {
    const from = text(call.from);
    const to = text(call.to);
    const meta = el('div', 'kn-meta');
    if (from || to) {
      const parties = el('span', 'kn-parties');
      if (from) parties.appendChild(el('span', 'kn-from', from));
      if (from && to) parties.appendChild(el('span', 'kn-arrow', ' → '));
      if (to) parties.appendChild(el('span', 'kn-to', to));
      meta.appendChild(parties);
    }
    if (Number.isInteger(call.duration) && call.duration >= 0) {
      const dur = el('span', 'kn-duration', formatDuration(call.duration));
      dur.title = 'Duration';
      meta.appendChild(dur);
    }
    if (meta.hasChildNodes()) body.appendChild(meta);

    const actions = el('div', 'kn-actions');
    let primary = null;
    const elem = isObject(call.element) ? call.element : null;
    if (elem && Number.isSafeInteger(elem.id) && elem.id > 0 && Object.prototype.hasOwnProperty.call(ELEMENT_PATHS, elem.type)) {
      primary = el('a', 'kn-action kn-element');
      setLink(primary, `/${ELEMENT_PATHS[elem.type]}/detail/${elem.id}`);
      primary.append(glyph('open'), ELEMENT_NAMES[elem.type]);
      actions.appendChild(primary);
    }
    const recording = safeHref(call.link);
    if (recording && recording[0] !== '/') {
      const a = el('a', 'kn-action kn-recording');
      setLink(a, recording);
      a.append(glyph('play'), 'Recording');
      actions.appendChild(a);
    }
    if (actions.hasChildNodes()) body.appendChild(actions);
    return primary;
  }

  function formatDuration(seconds) {
    const h = Math.floor(seconds / 3600);
    const m = Math.floor((seconds % 3600) / 60);
    const s = seconds % 60;
    const two = (n) => String(n).padStart(2, '0');
    return h > 0 ? `${h}:${two(m)}:${two(s)}` : `${two(m)}:${two(s)}`;
  }

  let timeFormat = null;
  let dateFormat = null;

  function formatDate(seconds) {
    if (!Number.isFinite(seconds) || seconds <= 0) return null;
    const d = new Date(seconds * 1000);
    if (Number.isNaN(d.getTime())) return null;
    timeFormat = timeFormat || new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
    dateFormat = dateFormat || new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });
    const today = d.toDateString() === new Date().toDateString();
    return { label: (today ? timeFormat : dateFormat).format(d), iso: d.toISOString() };
  }

  /** The stack of cards: newest on top, at most MAX_CARDS, each dismissed on a timer. */
  class Stack {
    constructor(container) {
      this.container = container || null;
      this.root = null;
      this.timers = new Map(); // card -> its dismiss timer
      document.addEventListener('visibilitychange', () => {
        // A hidden tab's pop-ups wait for the user to come back.
        for (const t of this.timers.values()) {
          if (document.hidden) t.pause('hidden');
          else t.resume('hidden');
        }
      });
    }

    element() {
      if (this.root && this.root.isConnected) return this.root;
      installStyles();
      const root = el('div', 'kn-stack');
      root.setAttribute('role', 'status');
      root.setAttribute('aria-live', 'polite');
      root.setAttribute('aria-label', 'Notifications');
      root.dataset.kommoNotify = 'stack';
      if (this.container) root.classList.add('kn-inline');
      (this.container || document.body).appendChild(root);
      this.root = root;
      return root;
    }

    show(frame, dismissAfter) {
      const card = buildCard(frame);
      if (!card) return;
      const close = el('button', 'kn-close');
      close.type = 'button';
      close.setAttribute('aria-label', 'Dismiss notification');
      close.appendChild(glyph('close'));
      close.addEventListener('click', () => this.dismiss(card));
      card.appendChild(close);
      card.addEventListener('keydown', (ev) => {
        if (ev.key === 'Escape') this.dismiss(card);
      });

      const root = this.element();
      root.prepend(card);
      while (root.children.length > MAX_CARDS) this.remove(root.lastElementChild);

      if (dismissAfter > 0) {
        const timer = new DismissTimer(dismissAfter, () => this.dismiss(card));
        this.timers.set(card, timer);
        card.addEventListener('mouseenter', () => timer.pause('hover'));
        card.addEventListener('mouseleave', () => timer.resume('hover'));
        card.addEventListener('focusin', () => timer.pause('focus'));
        card.addEventListener('focusout', (ev) => {
          if (!card.contains(ev.relatedTarget)) timer.resume('focus');
        });
        if (document.hidden) timer.pause('hidden');
        timer.resume(null);
      }
    }

    dismiss(card) {
      if (!card.isConnected || card.classList.contains('kn-leaving')) return;
      const hadFocus = card.contains(document.activeElement);
      const next = card.nextElementSibling || card.previousElementSibling;
      this.stop(card);
      if (hadFocus && next) next.querySelector('.kn-close').focus();
      if (typeof card.animate !== 'function' || matchMedia('(prefers-reduced-motion: reduce)').matches) {
        card.remove();
        return;
      }
      card.classList.add('kn-leaving');
      const anim = card.animate(
        [{ opacity: 1, transform: 'none' }, { opacity: 0, transform: 'translateX(24px)' }],
        { duration: 160, easing: 'ease-in' });
      anim.finished.then(() => card.remove(), () => card.remove());
    }

    remove(card) {
      this.stop(card);
      card.remove();
    }

    stop(card) {
      const t = this.timers.get(card);
      if (t) t.cancel();
      this.timers.delete(card);
    }
  }

  /** A countdown that stands still while anything (hover, focus, a hidden tab) holds it. */
  class DismissTimer {
    constructor(ms, done) {
      this.left = ms;
      this.done = done;
      this.holds = new Set();
      this.id = 0;
      this.started = 0;
    }

    pause(reason) {
      this.holds.add(reason);
      if (!this.id) return;
      clearTimeout(this.id);
      this.id = 0;
      this.left -= Date.now() - this.started;
    }

    resume(reason) {
      this.holds.delete(reason);
      if (this.id || this.holds.size > 0 || this.left === null) return;
      this.left = Math.max(this.left, 1500); // time to read after the pointer leaves
      this.started = Date.now();
      this.id = setTimeout(this.done, this.left);
    }

    cancel() {
      clearTimeout(this.id);
      this.id = 0;
      this.left = null;
    }
  }

  const stacks = new Map(); // container (or null for the page corner) -> Stack

  function stackFor(container) {
    const key = container instanceof Element ? container : null;
    let s = stacks.get(key);
    if (!s) {
      s = new Stack(key);
      stacks.set(key, s);
    }
    return s;
  }

  // ---------------------------------------------------------------- styles

  // Installed as a constructed style sheet: it is CSSOM, so a page whose policy forbids
  // inline styles (style-src without 'unsafe-inline') still gets it.
  const CSS = `
.kn-stack{position:fixed;right:16px;bottom:16px;z-index:2147483000;display:flex;flex-direction:column;gap:10px;
  width:min(360px,calc(100vw - 32px));pointer-events:none;
  font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;-webkit-font-smoothing:antialiased}
.kn-stack.kn-inline{position:static;width:auto}
.kn-card{pointer-events:auto;position:relative;display:flex;gap:12px;box-sizing:border-box;padding:14px 40px 13px 14px;
  border-radius:10px;background:#fff;color:#1d2a38;text-align:left;
  box-shadow:0 12px 28px -6px rgba(15,23,42,.28),0 2px 6px rgba(15,23,42,.12);animation:kn-in .22s ease-out}
.kn-card.kn-error{background:#cf3b36;color:#fff}
.kn-card.kn-call{background:#1b7f49;color:#fff}
.kn-card.kn-clickable{cursor:pointer}
.kn-icon{flex:none;display:grid;place-items:center;width:38px;height:38px;border-radius:50%;overflow:hidden;
  background:#e9f1fc;color:#2364c8}
.kn-error .kn-icon,.kn-call .kn-icon{background:rgba(255,255,255,.18);color:#fff}
.kn-icon img{width:100%;height:100%;object-fit:cover}
.kn-glyph{width:22px;height:22px;display:block}
.kn-body{flex:1;min-width:0;display:flex;flex-direction:column;gap:3px;overflow-wrap:anywhere}
.kn-title{font-weight:600;font-size:14.5px;line-height:1.3}
.kn-text{font-size:13.5px}
.kn-text p{margin:0 0 4px}.kn-text p:last-child{margin:0}
.kn-card a{color:inherit;text-decoration:underline;text-underline-offset:2px}
.kn-message .kn-text a{color:#1b5fbf}
.kn-title .kn-link{text-decoration:none}
.kn-clickable:hover .kn-title .kn-link{text-decoration:underline}
.kn-meta{display:flex;flex-wrap:wrap;align-items:center;gap:4px 8px;font-size:13.5px}
.kn-parties{font-weight:500}
.kn-arrow{opacity:.8}
.kn-duration{font-variant-numeric:tabular-nums;font-size:12px;line-height:18px;padding:0 7px;border-radius:999px;background:rgba(255,255,255,.2)}
.kn-message .kn-duration{background:#eef1f5}
.kn-actions{display:flex;flex-wrap:wrap;align-items:center;gap:6px 8px;margin-top:5px}
.kn-card a.kn-action{display:inline-flex;align-items:center;gap:5px;font-size:12.5px;font-weight:500;text-decoration:none;
  padding:2px 10px 2px 8px;border-radius:999px;border:1px solid rgba(255,255,255,.55)}
.kn-card a.kn-action:hover{background:rgba(255,255,255,.16)}
.kn-action .kn-glyph{width:14px;height:14px}
.kn-date{font-size:12px;color:#5f6b78;margin-top:2px}
.kn-error .kn-date,.kn-call .kn-date{color:rgba(255,255,255,.88)}
.kn-close{position:absolute;top:8px;right:8px;display:grid;place-items:center;width:28px;height:28px;padding:0;border:0;
  border-radius:6px;background:transparent;color:inherit;opacity:.6;cursor:pointer}
.kn-close:hover{opacity:1;background:rgba(127,127,127,.16)}
.kn-close .kn-glyph{width:16px;height:16px}
.kn-card a:focus-visible,.kn-close:focus-visible{outline:2px solid currentColor;outline-offset:2px;opacity:1}
@keyframes kn-in{from{opacity:0;transform:translateX(24px)}}
@media (prefers-reduced-motion:reduce){.kn-card{animation:none}}
@media print{.kn-stack{display:none}}
`;

  let stylesInstalled = false;

  function installStyles() {
    if (stylesInstalled) return;
    stylesInstalled = true;
    if ('adoptedStyleSheets' in Document.prototype && 'replaceSync' in CSSStyleSheet.prototype) {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
      return;
    }
    const style = document.createElement('style'); // older browsers; needs style-src to allow it
    style.textContent = CSS;
    document.head.appendChild(style);
  }

  Object.defineProperty(window, 'KommoNotify', {
    value: Object.freeze({ connect, types: Object.freeze(TYPES.slice()), version: '1' }),
    enumerable: true,
  });
})();

/*
 * notify browser client: Kommo-style pop-ups and the notification center's bell over
 * the dispatcher's websocket.
 *
 *   const conn = KommoNotify.connect({ token, bell: document.getElementById('bell') });
 *   APP.notifications.show_message({ header: "Warning", text: "Connection established" });
 *   conn.center.unread;  conn.center.markAllRead();
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
  const PAGE_SIZE = 20; // center items per page of the bell's list
  const MAX_GONE = 1000; // deleted item ids remembered, against stale pages and replays

  // ---------------------------------------------------------------- connection

  /**
   * Connects to the dispatcher, shows the user's pop-ups and, given an element for it,
   * the notification center's bell.
   * @param {object} options
   * @param {string} options.token the user token (a JWT naming account and user)
   * @param {string} [options.url] the dispatcher's base URL, which may end in a path
   *   prefix; default: this page's origin
   * @param {Element} [options.container] where the pop-up stack goes; default: a fixed
   *   stack in the bottom-right corner of the page
   * @param {Element} [options.bell] where to render the notification center's bell (a
   *   button with the unread badge that opens the list); default: no bell
   * @param {number} [options.dismissAfter] ms a pop-up stays; 0 keeps it until closed
   * @param {function} [options.onFrame] called with every frame received
   * @param {function} [options.onStatus] called with {status, account, user, ...}
   * @param {function} [options.onCenter] called with {op, unread} after every change of
   *   the center: a frame, a page loaded, an item marked read or deleted
   * @param {function} [options.refreshToken] returns (a promise of) a new token when
   *   the server closes the connection because the token expired
   * @param {boolean} [options.installApp] false leaves window.APP alone
   * @returns {EventTarget} the connection: events "status", "frame" and "center"
   *   (detail), the properties status, account, user, unread, notifications and center
   *   (the notification center, see Center.publicAPI), and the methods close() and
   *   setToken(token)
   */
  function connect(options) {
    const opts = Object.assign({}, options);
    if (typeof opts.token !== 'string' || opts.token === '') {
      throw new TypeError('KommoNotify.connect: options.token is required');
    }
    if (opts.bell != null && !(opts.bell instanceof Element)) {
      throw new TypeError('KommoNotify.connect: options.bell must be an element');
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
    const state = { status: 'idle', account: claims.acc, user: claims.sub };

    const emit = (name, detail, hook) => {
      conn.dispatchEvent(new CustomEvent(name, { detail }));
      if (typeof hook === 'function') safely(hook, detail);
    };
    const setStatus = (status, extra) => {
      state.status = status;
      emit('status', Object.assign({ status, account: state.account, user: state.user }, extra), opts.onStatus);
    };

    const center = new Center(request, (op) => {
      if (bell) bell.update();
      emit('center', { op, unread: center.unread }, opts.onCenter);
    });
    const bell = opts.bell ? new Bell(opts.bell, center) : null;

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
          // The first hello says where the center stands. After a reconnect the items
          // added while away come from the resume, as added frames, then resumed.
          if (greeted) send({ op: 'resume', after: center.seq });
          center.hello(frame, !greeted);
          greeted = true;
          clearTimeout(stableTimer);
          stableTimer = setTimeout(() => { attempt = 0; }, STABLE_AFTER);
          setStatus('open', { unread: center.unread });
          break;
        case 'popup':
          stack.show(frame, dismissAfter);
          break;
        case 'center':
          center.frame(frame);
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

    /**
     * Calls the HTTP API as the user: method, a path below the base, an optional JSON
     * body. Resolves to the JSON answer (null for 204); rejects with a NotifyError.
     */
    async function request(method, path, body, init) {
      const headers = { 'Authorization': `Bearer ${token}` };
      if (body !== undefined) headers['Content-Type'] = 'application/json';
      let res;
      try {
        res = await fetch(new URL(path, base).href, Object.assign({
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          credentials: 'omit',
          referrerPolicy: 'no-referrer',
          cache: 'no-store',
        }, init));
      } catch (err) {
        throw notifyError(0, { code: 'network', message: 'cannot reach the notification server' }, err);
      }
      let answer = null;
      try {
        if (res.status !== 204) answer = await res.json();
      } catch {
        // an empty or non-JSON body; the status says enough
      }
      if (!res.ok) throw notifyError(res.status, answer && answer.error);
      return answer;
    }

    function post(type, params) {
      const account = state.account;
      const user = state.user;
      if (!account || !user) {
        return Promise.reject(notifyError(0, { code: 'unauthorized', message: 'the token names no account or user' }));
      }
      const path = `api/v1/notify/${encodeURIComponent(account)}/${encodeURIComponent(user)}/${type}`;
      return request('POST', path, params === undefined ? null : params);
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
      unread: { get: () => center.unread, enumerable: true },
      notifications: { value: notifications, enumerable: true },
      center: { value: center.api, enumerable: true },
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
          if (bell) bell.destroy();
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

  // ---------------------------------------------------------------- notification center

  /**
   * The user's notification center as this tab knows it: the items of the pages loaded
   * and of the frames heard since, newest first and kept by id; the unread count; the
   * latest seq seen (what a resume asks to continue after); the cursor of the next page.
   * Frames and API answers both feed it, in whatever order they arrive:
   * - read only ever goes from false to true, so a page fetched before a read frame
   *   cannot make an item unread again;
   * - ids deleted while the tab watched stay deleted, whatever a stale page or a
   *   replayed frame says;
   * - the unread count of an API answer is taken only when no frame carrying one
   *   arrived while the request was out: frames are the server's latest word.
   * Items are frozen copies of the server's; a change makes a new object, so a view can
   * tell a changed item by identity.
   */
  class Center {
    constructor(request, changed) {
      this.request = request;
      this.changed = changed;
      this.byId = new Map();
      this.list = []; // newest (largest seq) first
      this.gone = new Set();
      this.unread = 0;
      this.seq = 0;
      this.frames = 0; // frames that set the unread count, to date
      this.loaded = false; // the first page arrived
      this.next = ''; // the next page's cursor; '' at the oldest item
      this.loading = null; // the promise of the first page, while it is out
      this.loadingMore = null; // the promise of the next page, while it is out
      this.api = this.publicAPI();
    }

    /** The object behind conn.center. */
    publicAPI() {
      const self = this;
      return Object.freeze({
        /** The user's unread count, as the latest frame or answer said. */
        get unread() { return self.unread; },
        /** The items this tab holds, newest first: an array of frozen center items. */
        get items() { return self.list.slice(); },
        /** Whether the first page has been loaded. */
        get loaded() { return self.loaded; },
        /** Whether older items remain to be loaded with loadMore(). */
        get hasMore() { return !self.loaded || self.next !== ''; },
        /** Loads the newest page (again); resolves to the items. */
        load: () => self.load(),
        /** Loads the next older page (the first if none yet); resolves to the items. */
        loadMore: () => self.loadMore(),
        /** Marks the items of these ids read; resolves to the unread count. */
        markRead: (ids) => self.markRead(ids),
        /** Marks every item read; resolves to the unread count. */
        markAllRead: () => self.markAllRead(),
        /** Deletes one item; resolves to whether the server had it. */
        remove: (id) => self.remove(id),
      });
    }

    hello(frame, first) {
      if (first) this.seq = Math.max(this.seq, count(frame.seq));
      this.setUnread(frame.unread, 'hello');
    }

    /** A center frame: added, read, deleted or resumed; other ops are ignored. */
    frame(f) {
      switch (f.op) {
        case 'added': {
          const item = centerItem(f.item);
          if (!item) return;
          this.seq = Math.max(this.seq, item.seq);
          this.merge(item);
          break;
        }
        case 'read':
          if (f.all === true) this.markLocally(null);
          else if (Array.isArray(f.ids)) this.markLocally(f.ids);
          break;
        case 'deleted':
          if (Array.isArray(f.ids)) this.drop(f.ids);
          break;
        case 'resumed':
          this.seq = Math.max(this.seq, count(f.seq));
          // Read marks and deletions made while away came as no frame: the newest page
          // brings those of the items a user is most likely to see.
          if (this.loaded) this.load().catch(() => {});
          break;
        default:
          return;
      }
      if (typeof f.unread === 'number') {
        this.frames++;
        this.unread = count(f.unread);
      }
      this.changed(f.op);
    }

    setUnread(n, op) {
      if (typeof n !== 'number') return;
      this.frames++;
      this.unread = count(n);
      this.changed(op);
    }

    /**
     * Takes an API answer's unread count unless a frame has spoken since `frames`;
     * reports whether the count changed.
     */
    answered(n, frames) {
      if (frames !== this.frames || typeof n !== 'number' || count(n) === this.unread) return false;
      this.unread = count(n);
      return true;
    }

    /** Adds item, or updates the one of its id (read stays read). */
    merge(item) {
      if (this.gone.has(item.id)) return;
      const old = this.byId.get(item.id);
      if (old) {
        if (old.read || !item.read) return; // nothing that can change has changed
        this.replace(old, withRead(old, true));
        return;
      }
      this.byId.set(item.id, item);
      const at = this.list.findIndex((x) => x.seq < item.seq);
      if (at < 0) this.list.push(item);
      else this.list.splice(at, 0, item);
    }

    replace(old, item) {
      this.byId.set(item.id, item);
      this.list[this.list.indexOf(old)] = item;
    }

    /** Sets read on the items of ids (every item for null); returns those it changed. */
    markLocally(ids, read = true) {
      const changed = [];
      const targets = ids === null ? this.list.slice() : ids.map((id) => this.byId.get(id)).filter(Boolean);
      for (const item of targets) {
        if (item.read === read) continue;
        this.replace(item, withRead(item, read));
        changed.push(item.id);
      }
      return changed;
    }

    /**
     * Removes the items of ids. Known deletions (a frame, the user's own) are kept in
     * gone, a bounded memory: a page or a replayed frame that left the server before
     * the deletion must not bring them back.
     */
    drop(ids, known = true) {
      for (const id of ids) {
        if (typeof id !== 'string') continue;
        if (known) {
          this.gone.delete(id);
          this.gone.add(id);
          if (this.gone.size > MAX_GONE) this.gone.delete(this.gone.values().next().value);
        }
        const item = this.byId.get(id);
        if (!item) continue;
        this.byId.delete(id);
        this.list.splice(this.list.indexOf(item), 1);
      }
    }

    /** Loads the newest page and merges it; one request at a time. */
    load() {
      if (!this.loading) {
        this.loading = this.fetchFirst().finally(() => { this.loading = null; });
      }
      return this.loading;
    }

    async fetchFirst() {
      const frames = this.frames;
      const seen = this.seq;
      const page = await this.request('GET', `api/v1/center?limit=${PAGE_SIZE}`);
      const items = pageItems(page);
      for (const item of items) this.merge(item);
      // Items of the page's span that it lacks were deleted while no frame could say
      // so (the tab was away); those above seen are frames that overtook the request.
      const oldest = page.next && items.length > 0 ? items[items.length - 1].seq : 0;
      const present = new Set(items.map((x) => x.id));
      this.drop(this.list.filter((x) => x.seq <= seen && x.seq >= oldest && !present.has(x.id)).map((x) => x.id), false);
      if (!this.loaded) this.next = text(page.next);
      this.loaded = true;
      this.answered(page.unread, frames);
      this.changed('loaded');
      return this.api.items;
    }

    /** Loads the page below the oldest item held (the first page if none yet). */
    loadMore() {
      if (!this.loaded) return this.load();
      if (!this.loadingMore) {
        this.loadingMore = this.fetchMore().finally(() => { this.loadingMore = null; });
      }
      return this.loadingMore;
    }

    async fetchMore() {
      const cursor = this.next;
      if (cursor === '') return this.api.items;
      const page = await this.request('GET', `api/v1/center?limit=${PAGE_SIZE}&before=${encodeURIComponent(cursor)}`);
      for (const item of pageItems(page)) this.merge(item);
      if (this.next === cursor) this.next = text(page.next);
      this.changed('loaded');
      return this.api.items;
    }

    /**
     * Marks ids read: at once in this tab, then on the server, whose read frame brings
     * every tab (this one included) the new count. keepalive lets the request outlive
     * a click that navigates away. On failure the marks are undone and the error thrown.
     */
    async markRead(ids) {
      if (!Array.isArray(ids) || ids.some((id) => typeof id !== 'string' || id === '')) {
        throw new TypeError('center.markRead: ids must be an array of item ids');
      }
      ids = [...new Set(ids)];
      if (ids.length === 0) return this.unread;
      return this.mark({ ids }, this.markLocally(ids));
    }

    async markAllRead() {
      return this.mark({ all: true }, this.markLocally(null));
    }

    async mark(body, changed) {
      if (changed.length > 0) this.changed('read');
      const frames = this.frames;
      let answer;
      try {
        answer = await this.request('POST', 'api/v1/center/read', body, { keepalive: true });
      } catch (err) {
        if (this.markLocally(changed, false).length > 0) this.changed('read');
        throw err;
      }
      if (this.answered(answer && answer.unread, frames)) this.changed('read');
      return this.unread;
    }

    async remove(id) {
      if (typeof id !== 'string' || id === '') throw new TypeError('center.remove: an item id is required');
      const item = this.byId.get(id);
      this.drop([id]);
      if (item) this.changed('deleted');
      try {
        await this.request('DELETE', `api/v1/center/${encodeURIComponent(id)}`);
        return true;
      } catch (err) {
        if (err.status === 404) return false;
        this.gone.delete(id);
        if (item) {
          this.merge(item);
          this.changed('deleted');
        }
        throw err;
      }
    }
  }

  /** A center item from the server, checked and frozen; null when it is not one. */
  function centerItem(v) {
    if (!isObject(v) || typeof v.id !== 'string' || v.id === '' || !Number.isSafeInteger(v.seq) || v.seq <= 0) return null;
    const links = isObject(v.links) ? v.links : {};
    return Object.freeze({
      id: v.id,
      type: text(v.type),
      seq: v.seq,
      created_at: count(v.created_at),
      read: v.read === true,
      payload: isObject(v.payload) ? v.payload : {},
      links: Object.freeze({ click: text(links.click), recording: text(links.recording) }),
    });
  }

  const withRead = (item, read) => Object.freeze(Object.assign({}, item, { read }));

  function pageItems(page) {
    if (!isObject(page) || !Array.isArray(page.items)) throw notifyError(200, { code: 'invalid_json', message: 'not a page of the center' });
    return page.items.map(centerItem).filter(Boolean);
  }

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
    bell: [false, 'M18 9.5a6 6 0 0 0-12 0c0 5.5-2.5 7.5-2.5 7.5h17S18 15 18 9.5z', 'M10 20.5a2.3 2.3 0 0 0 4 0'],
    check: [false, 'M4.5 12.5l4.5 4.5L19.5 6.5'],
    trash: [false, 'M4.5 7h15', 'M9.5 7V4.5h5V7', 'M6.5 7l.9 12.5h9.2l.9-12.5', 'M10.2 11v5', 'M13.8 11v5'],
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
    const meta = callMeta(call);
    if (meta) body.appendChild(meta);

    const actions = el('div', 'kn-actions');
    let primary = null;
    const elem = isObject(call.element) ? call.element : null;
    if (elem && Number.isSafeInteger(elem.id) && elem.id > 0 && hasOwn(ELEMENT_PATHS, elem.type)) {
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

  /** The line of a call's parties (from → to) and duration (mm:ss), or null. */
  function callMeta(call) {
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
    return meta.hasChildNodes() ? meta : null;
  }

  const hasOwn = (o, key) => typeof key === 'string' && Object.prototype.hasOwnProperty.call(o, key);

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

  // ---------------------------------------------------------------- the bell

  let bells = 0; // numbers each bell's element ids

  /**
   * The bell: a button with the unread badge that discloses the center's list, newest
   * first, a page at a time. The button has aria-expanded and a label with the count;
   * the list is a labelled region right after it, so Tab walks on into it. Arrow keys
   * move between items, Home and End to the ends; Escape closes and returns to the
   * button, as a click outside or focus leaving close it. A click on an item marks it
   * read and follows its link; each item's buttons mark it read or delete it.
   */
  class Bell {
    constructor(host, center) {
      installStyles();
      this.center = center;
      this.rows = new Map(); // item id -> row: { li, item, primary, readButton, unread }
      this.failed = false; // the first page could not be loaded
      this.shown = null; // what the placeholder shows: loading, empty, error or '' (the list)
      this.uid = `kn-center-${++bells}`;
      this.rowIds = 0;
      // While open: a press or an Escape elsewhere on the page closes the list.
      this.onOutside = (ev) => {
        if (this.root.contains(ev.target)) return;
        if (ev.type === 'pointerdown' || ev.key === 'Escape') this.close(false);
      };
      this.onResize = () => this.place();

      this.root = el('div', 'kn-bell');
      this.root.dataset.kommoNotify = 'bell';

      this.button = el('button', 'kn-bell-button');
      this.button.type = 'button';
      this.button.setAttribute('aria-expanded', 'false');
      this.button.setAttribute('aria-controls', `${this.uid}-panel`);
      this.badge = el('span', 'kn-badge');
      this.badge.setAttribute('aria-hidden', 'true');
      this.button.append(glyph('bell'), this.badge);

      this.panel = el('div', 'kn-panel');
      this.panel.id = `${this.uid}-panel`;
      this.panel.setAttribute('role', 'region');
      this.panel.setAttribute('aria-labelledby', `${this.uid}-title`);
      this.panel.hidden = true;

      const head = el('div', 'kn-panel-head');
      const title = el('span', 'kn-panel-title', 'Notifications');
      title.id = `${this.uid}-title`;
      this.count = el('span', 'kn-panel-count');
      this.markAll = el('button', 'kn-mark-all');
      this.markAll.type = 'button';
      this.markAll.append(glyph('check'), 'Mark all as read');
      head.append(title, this.count, this.markAll);

      const scroller = el('div', 'kn-panel-body');
      this.list = el('ul', 'kn-list');
      this.placeholder = el('div', 'kn-placeholder');
      this.more = el('button', 'kn-more', 'Load more');
      this.more.type = 'button';
      scroller.append(this.list, this.placeholder, this.more);

      // Says what failed; a live region, so it stays in place and is only emptied.
      this.note = el('div', 'kn-panel-note');
      this.note.setAttribute('role', 'status');
      this.panel.append(head, scroller, this.note);
      this.root.append(this.button, this.panel);

      this.button.addEventListener('click', () => this.toggle());
      this.markAll.addEventListener('click', () => {
        if (this.center.unread > 0 || this.center.list.some((x) => !x.read)) {
          this.center.markAllRead().catch(() => this.tell('Could not mark the notifications read.'));
        }
      });
      this.more.addEventListener('click', () => this.loadMore());
      this.list.addEventListener('click', (ev) => this.onListClick(ev));
      this.root.addEventListener('keydown', (ev) => this.onKey(ev));
      this.root.addEventListener('focusout', (ev) => {
        if (ev.relatedTarget instanceof Node && !this.root.contains(ev.relatedTarget)) this.close(false);
      });

      host.appendChild(this.root);
      this.update();
    }

    get isOpen() { return !this.panel.hidden; }

    toggle() {
      if (this.isOpen) this.close(false);
      else this.open();
    }

    open() {
      if (this.isOpen) return;
      this.panel.hidden = false;
      this.place();
      this.button.setAttribute('aria-expanded', 'true');
      document.addEventListener('pointerdown', this.onOutside, true);
      document.addEventListener('keydown', this.onOutside);
      window.addEventListener('resize', this.onResize);
      if (!this.center.loaded) this.load();
      this.update();
    }

    /**
     * The list hangs below the bell, right edges aligned; where that would cross an
     * edge of the viewport (a bell at the left of the page, a phone) it shifts inside.
     * The shift is a custom property set through the CSSOM, which a policy allows.
     */
    place() {
      const style = this.panel.style;
      style.setProperty('--kn-shift', '0px');
      const r = this.panel.getBoundingClientRect();
      const margin = 12;
      const width = document.documentElement.clientWidth;
      let shift = 0;
      if (r.left < margin) shift = margin - r.left;
      else if (r.right > width - margin) shift = width - margin - r.right;
      style.setProperty('--kn-shift', `${Math.round(shift)}px`);
    }

    close(refocus) {
      if (!this.isOpen) return;
      this.panel.hidden = true;
      this.button.setAttribute('aria-expanded', 'false');
      document.removeEventListener('pointerdown', this.onOutside, true);
      document.removeEventListener('keydown', this.onOutside);
      window.removeEventListener('resize', this.onResize);
      this.tell('');
      if (refocus) this.button.focus();
    }

    destroy() {
      this.close(false);
      this.root.remove();
    }

    load() {
      this.failed = false;
      this.center.load().catch(() => { this.failed = true; }).then(() => this.update());
      this.update();
    }

    loadMore() {
      if (this.center.loadingMore) return;
      const last = this.list.lastElementChild;
      const refocus = document.activeElement === this.more;
      this.center.loadMore().then(() => {
        // The button went away with the last page: focus the first item it brought.
        if (refocus && this.more.hidden) focusRow(last ? last.nextElementSibling : this.list.firstElementChild);
      }, () => this.tell('Could not load more notifications.')).then(() => this.update());
      this.update();
    }

    /** A failed action, said until the list closes. */
    tell(message) {
      this.note.textContent = message;
    }

    /** Brings badge, header and (when open) the list up to date with the center. */
    update() {
      const n = this.center.unread;
      this.badge.textContent = n > 99 ? '99+' : String(n);
      this.badge.hidden = n === 0;
      this.button.setAttribute('aria-label', n === 0 ? 'Notifications, none unread' : `Notifications, ${n} unread`);
      this.count.textContent = n > 0 ? `${n > 99 ? '99+' : n} new` : '';
      this.count.hidden = n === 0;
      const anyUnread = n > 0 || this.center.list.some((x) => !x.read);
      this.markAll.setAttribute('aria-disabled', String(!anyUnread));
      if (this.isOpen) this.renderList();
    }

    /** Puts the center's items in the list in order, reusing the row of each id. */
    renderList() {
      const c = this.center;
      const keep = new Set();
      let prev = null;
      for (const item of c.list) {
        let row = this.rows.get(item.id);
        if (!row) {
          row = this.buildRow(item);
          this.rows.set(item.id, row);
        }
        if (row.item !== item) setRowRead(row, item);
        keep.add(item.id);
        const at = prev ? prev.nextSibling : this.list.firstChild;
        if (row.li !== at) this.list.insertBefore(row.li, at);
        prev = row.li;
      }
      for (const [id, row] of this.rows) {
        if (keep.has(id)) continue;
        if (row.li.contains(document.activeElement) && !focusRow(row.li.nextElementSibling || row.li.previousElementSibling)) {
          this.markAll.focus();
        }
        row.li.remove();
        this.rows.delete(id);
      }

      let shown = '';
      if (!c.loaded) shown = this.failed ? 'error' : 'loading';
      else if (c.list.length === 0) shown = 'empty';
      if (shown !== this.shown) {
        this.shown = shown;
        if (this.placeholder.contains(document.activeElement)) this.markAll.focus(); // Try again goes away
        this.placeholder.replaceChildren();
        this.placeholder.hidden = shown === '';
        if (shown === 'loading') this.placeholder.textContent = 'Loading…';
        if (shown === 'empty') this.placeholder.append(glyph('bell'), el('span', '', 'No notifications yet'));
        if (shown === 'error') {
          const retry = el('button', 'kn-retry', 'Try again');
          retry.type = 'button';
          retry.addEventListener('click', () => this.load());
          this.placeholder.append(el('span', '', 'Could not load the notifications.'), retry);
        }
      }
      this.more.hidden = !c.loaded || c.next === '';
      const busy = c.loadingMore !== null;
      this.more.textContent = busy ? 'Loading…' : 'Load more';
      this.more.setAttribute('aria-busy', String(busy));
    }

    /** The row of an item: its look, title, text, date, call details, links and buttons. */
    buildRow(item) {
      const p = item.payload;
      const d = describe(item.type, p) || { look: 'message', glyph: 'bell', title: text(p.header) || 'Notification', html: p.text };
      const li = el('li', `kn-item kn-${d.look}`);
      li.dataset.id = item.id;
      li.dataset.type = item.type;
      const titleId = `${this.uid}-item-${++this.rowIds}`;

      const icon = el('div', 'kn-item-icon');
      icon.appendChild(glyph(d.glyph));

      const body = el('div', 'kn-item-body');
      const head = el('div', 'kn-item-head');
      const click = itemHref(item.links.click);
      const recording = itemHref(item.links.recording);
      let primary = null;
      let title;
      if (click && !d.call) {
        title = primary = el('a', 'kn-item-title kn-link', d.title);
        itemLink(primary, click);
      } else {
        title = el('span', 'kn-item-title', d.title);
      }
      title.id = titleId;
      const unread = el('span', 'kn-sr', 'Unread: '); // what the dot and the tint say, for screen readers
      head.append(unread, title);
      const when = formatDate(Number.isFinite(p.date) && p.date > 0 ? p.date : item.created_at);
      if (when) {
        const time = el('time', 'kn-item-date', when.label);
        time.dateTime = when.iso;
        head.appendChild(time);
      }
      body.appendChild(head);

      const rich = richText(d.html);
      if (rich.hasChildNodes()) {
        const t = el('div', 'kn-text');
        t.appendChild(rich);
        body.appendChild(t);
      }

      if (d.call) {
        const meta = callMeta(d.call);
        if (meta) body.appendChild(meta);
        const actions = el('div', 'kn-actions');
        if (click && click !== recording) { // the element's page; without one the click is the recording
          const elem = isObject(p.element) ? p.element : {};
          primary = el('a', 'kn-action kn-element');
          itemLink(primary, click);
          primary.append(glyph('open'), hasOwn(ELEMENT_NAMES, elem.type) ? ELEMENT_NAMES[elem.type] : 'Open');
          actions.appendChild(primary);
        }
        if (recording) {
          const a = el('a', 'kn-action kn-recording');
          a.href = recording;
          a.target = '_blank';
          a.rel = 'noopener noreferrer';
          a.append(glyph('play'), 'Recording');
          actions.appendChild(a);
          primary = primary || a;
        }
        if (actions.hasChildNodes()) body.appendChild(actions);
      }

      const tools = el('div', 'kn-item-tools');
      const readButton = el('button', 'kn-item-read');
      readButton.type = 'button';
      readButton.title = 'Mark as read';
      readButton.setAttribute('aria-label', 'Mark as read');
      readButton.setAttribute('aria-describedby', titleId);
      const remove = el('button', 'kn-item-delete');
      remove.type = 'button';
      remove.title = 'Delete';
      remove.setAttribute('aria-label', 'Delete');
      remove.setAttribute('aria-describedby', titleId);
      remove.appendChild(glyph('trash'));
      tools.append(readButton, remove);

      li.append(icon, body, tools);
      if (primary) li.classList.add('kn-clickable');
      const row = { li, item: null, primary, readButton, unread };
      setRowRead(row, item);
      return row;
    }

    onListClick(ev) {
      const target = ev.target instanceof Element ? ev.target : null;
      const li = target && target.closest('.kn-item');
      const row = li && this.rows.get(li.dataset.id);
      if (!row) return;
      if (target.closest('.kn-item-delete')) {
        this.center.remove(row.item.id).catch(() => this.tell('Could not delete the notification.'));
        return;
      }
      if (!row.item.read) {
        this.center.markRead([row.item.id]).catch(() => this.tell('Could not mark the notification read.'));
      }
      // A click anywhere else in the row follows its link, as the link itself would.
      if (!target.closest('a, button') && row.primary) row.primary.click();
    }

    onKey(ev) {
      if (ev.key === 'Escape' && this.isOpen) {
        ev.preventDefault();
        ev.stopPropagation(); // ours: a dialog around the page stays open
        this.close(true);
        return;
      }
      const target = ev.target instanceof Element ? ev.target : null;
      if (!target || ev.altKey || ev.ctrlKey || ev.metaKey || ev.shiftKey) return;
      const li = target.closest('.kn-item');
      let to = null;
      if (target === this.button && ev.key === 'ArrowDown') {
        this.open();
        to = this.list.firstElementChild;
      } else if (li && ev.key === 'ArrowDown') {
        to = li.nextElementSibling;
      } else if (li && ev.key === 'ArrowUp') {
        to = li.previousElementSibling;
      } else if (li && ev.key === 'Home') {
        to = this.list.firstElementChild;
      } else if (li && ev.key === 'End') {
        to = this.list.lastElementChild;
      } else {
        return;
      }
      ev.preventDefault(); // not the page's scroll
      focusRow(to);
    }
  }

  /** Moves focus to the first control of a row; false when there is no row. */
  function focusRow(li) {
    const control = li && li.querySelector('a, button:not([hidden])');
    if (!control) return false;
    control.focus();
    return true;
  }

  function setRowRead(row, item) {
    row.item = item;
    row.li.classList.toggle('kn-unread', !item.read);
    if (item.read && document.activeElement === row.readButton) { // it hides: keep focus in the row
      (row.primary || row.li.querySelector('.kn-item-delete')).focus();
    }
    row.readButton.hidden = item.read;
    row.unread.hidden = item.read;
  }

  /** A center link: an absolute http(s) URL that passes the link rule, else null. */
  function itemHref(value) {
    const href = safeHref(value);
    return href && href[0] !== '/' ? href : null;
  }

  /** Points a at href: this origin's pages open in this tab, others in a new one. */
  function itemLink(a, href) {
    a.href = href;
    if (new URL(href).origin !== location.origin) {
      a.target = '_blank';
      a.rel = 'noopener noreferrer';
    }
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

.kn-bell{position:relative;display:inline-flex;color:#1d2a38;text-align:left;
  font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;-webkit-font-smoothing:antialiased}
:where(.kn-bell) button{margin:0;font:inherit;letter-spacing:inherit;text-transform:none}
.kn-bell-button{position:relative;display:grid;place-items:center;width:38px;height:38px;padding:0;border:1px solid #dfe4ea;
  border-radius:50%;background:#fff;color:#3d4b5c;cursor:pointer;transition:background-color .15s,color .15s,border-color .15s}
.kn-bell-button:hover{background:#f3f6fa;color:#1d2a38}
.kn-bell-button[aria-expanded="true"]{background:#e9f1fc;border-color:#c6d8f3;color:#2364c8}
.kn-bell-button .kn-glyph{width:20px;height:20px}
.kn-badge{position:absolute;top:-6px;left:21px;min-width:20px;height:20px;box-sizing:border-box;padding:0 5px;border:2px solid #fff;
  border-radius:999px;background:#e5413a;color:#fff;font-size:11px;font-weight:700;line-height:16px;text-align:center;
  font-variant-numeric:tabular-nums;pointer-events:none}
.kn-badge[hidden]{display:none}
.kn-panel{position:absolute;top:calc(100% + 10px);right:calc(-6px - var(--kn-shift,0px));z-index:2147483001;display:flex;flex-direction:column;
  width:min(400px,calc(100vw - 24px));max-height:min(580px,calc(100vh - 96px));box-sizing:border-box;overflow:hidden;
  border:1px solid #e1e6ec;border-radius:12px;background:#fff;
  box-shadow:0 22px 48px -14px rgba(15,23,42,.34),0 4px 12px rgba(15,23,42,.08);animation:kn-drop .16s ease-out}
.kn-panel[hidden]{display:none}
.kn-panel-head{display:flex;align-items:center;gap:8px;padding:13px 12px 12px 18px;border-bottom:1px solid #edf0f4}
.kn-panel-title{font-size:15.5px;font-weight:700;letter-spacing:-.01em}
.kn-panel-count{padding:0 8px;border-radius:999px;background:#e5413a;color:#fff;font-size:11.5px;font-weight:700;line-height:19px}
.kn-panel-count[hidden]{display:none}
.kn-mark-all{display:inline-flex;align-items:center;gap:5px;margin-left:auto;padding:5px 9px;border:0;border-radius:7px;
  background:transparent;color:#2364c8;font-size:13px;font-weight:500;cursor:pointer}
.kn-mark-all:hover{background:#eef4fd}
.kn-mark-all[aria-disabled="true"]{color:#98a3af;background:transparent;cursor:default}
.kn-mark-all .kn-glyph{width:15px;height:15px}
.kn-panel-body{flex:1;min-height:0;overflow-y:auto;overscroll-behavior:contain}
.kn-list{list-style:none;margin:0;padding:0}
.kn-item{position:relative;display:flex;gap:12px;padding:13px 46px 13px 18px;border-bottom:1px solid #f0f2f5;
  background:#fff;transition:background-color .15s}
.kn-item.kn-clickable{cursor:pointer}
.kn-item:hover{background:#f7f9fb}
.kn-item.kn-unread{background:#f3f7fe}
.kn-item.kn-unread:hover{background:#eaf1fc}
.kn-item-icon{flex:none;display:grid;place-items:center;width:36px;height:36px;border-radius:50%;background:#e9f1fc;color:#2364c8}
.kn-item.kn-error .kn-item-icon{background:#cf3b36;color:#fff}
.kn-item.kn-call .kn-item-icon{background:#1b7f49;color:#fff}
.kn-item-icon .kn-glyph{width:19px;height:19px}
.kn-item-body{flex:1;min-width:0;display:flex;flex-direction:column;gap:3px;overflow-wrap:anywhere}
.kn-item-head{display:flex;align-items:baseline;gap:10px}
.kn-item-title{font-size:14px;font-weight:600;line-height:1.35;color:#1d2a38;text-decoration:none}
.kn-item.kn-error .kn-item-title{color:#b8322d}
.kn-item.kn-call .kn-item-title{color:#17703f}
a.kn-item-title:hover{text-decoration:underline;text-underline-offset:2px}
.kn-item-date{flex:none;margin-left:auto;color:#6b7785;font-size:12px;white-space:nowrap}
.kn-item .kn-text{color:#3a4757;font-size:13.5px}
.kn-item .kn-text a{color:#1b5fbf}
.kn-item:not(.kn-unread) .kn-item-title,.kn-item:not(.kn-unread) .kn-text{opacity:.86}
.kn-item .kn-meta{display:flex;flex-wrap:wrap;align-items:center;gap:4px 8px;color:#3a4757;font-size:13px}
.kn-item .kn-duration{padding:0 7px;border-radius:999px;background:#edf0f4;font-size:12px;line-height:18px;font-variant-numeric:tabular-nums}
.kn-item .kn-actions{display:flex;flex-wrap:wrap;gap:6px 8px;margin-top:5px}
.kn-item a.kn-action{display:inline-flex;align-items:center;gap:5px;padding:2px 10px 2px 8px;border:1px solid #d3dce7;border-radius:999px;
  background:#fff;color:#1d2a38;font-size:12.5px;font-weight:500;text-decoration:none}
.kn-item a.kn-action:hover{border-color:#a9bdd8;background:#f4f8fd}
.kn-item.kn-call a.kn-action .kn-glyph{color:#1b7f49}
.kn-item .kn-action .kn-glyph{width:14px;height:14px}
.kn-item-tools{position:absolute;top:9px;right:9px;display:flex;flex-direction:column;align-items:center;gap:2px}
.kn-item-read,.kn-item-delete{display:grid;place-items:center;width:28px;height:28px;padding:0;border:0;border-radius:7px;
  background:transparent;cursor:pointer}
.kn-item-read[hidden]{display:none}
.kn-item-read::before{content:"";width:9px;height:9px;border-radius:50%;background:#2f7be5;box-shadow:0 0 0 3px rgba(47,123,229,.16)}
.kn-item-read:hover{background:rgba(47,123,229,.12)}
.kn-item-delete{color:#6b7785;opacity:0}
.kn-item-delete .kn-glyph{width:16px;height:16px}
.kn-item:hover .kn-item-delete,.kn-item-delete:focus-visible{opacity:1}
.kn-item-delete:hover{background:#fbeceb;color:#cf3b36}
.kn-placeholder{display:flex;flex-direction:column;align-items:center;gap:8px;padding:36px 24px;color:#6b7785;text-align:center}
.kn-placeholder[hidden]{display:none}
.kn-placeholder .kn-glyph{width:30px;height:30px;color:#b4bec9}
.kn-retry,.kn-more{padding:6px 14px;border:1px solid #d3dce7;border-radius:8px;background:#fff;color:#2364c8;
  font-size:13px;font-weight:500;cursor:pointer}
.kn-retry:hover,.kn-more:hover{background:#f4f8fd}
.kn-more{display:block;margin:12px auto 14px}
.kn-more[hidden]{display:none}
.kn-more[aria-busy="true"]{color:#6b7785;cursor:progress}
.kn-panel-note{padding:8px 18px;border-top:1px solid #f3d3d1;background:#fdf1f0;color:#a52d29;font-size:13px}
.kn-panel-note:empty{padding:0;border:0}
.kn-sr{position:absolute;width:1px;height:1px;margin:-1px;padding:0;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0}
.kn-bell a:focus-visible,.kn-bell button:focus-visible{outline:2px solid #2364c8;outline-offset:2px}
.kn-item a:focus-visible,.kn-item button:focus-visible{outline-offset:0}
@keyframes kn-drop{from{opacity:0;transform:translateY(-6px)}}
@media (prefers-reduced-motion:reduce){.kn-card,.kn-panel{animation:none}.kn-bell-button,.kn-item{transition:none}}
@media print{.kn-stack,.kn-panel{display:none}}
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

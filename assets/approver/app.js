// portcullis approver: approve sign-ins from this device.
//
// Plain JavaScript, no build step, no libraries. Runs under a strict CSP
// (script-src 'self', style-src 'self', connect-src 'self'): no inline
// scripts or styles, no eval, no innerHTML with data; everything the server
// sends is put on the page with textContent.
//
// The protocol is in src/push/mod.rs (module docs): a P-256 key pair made
// here (not extractable, kept in IndexedDB) signs
// "portcullis-approver|PURPOSE|FIELDS…" with ECDSA / SHA-256.
'use strict';

(() => {
  const APP = '/.portcullis/approver/';
  const API = '/.portcullis/api/approver';
  const DB_NAME = 'portcullis-approver';
  const STORE = 'device';
  const CURRENT = 'current';   // the enrolled device's record
  const ENROLLING = 'enrolling'; // the key pair while the enrollment is posted
  const IOS_TEXT = 'On iPhone, notifications work only after you add this app to your Home Screen: ' +
    'tap Share, then Add to Home Screen (iOS 16.4 or later), and open it from there.';
  const NETWORK_ERROR = 'Could not reach the server. Check your connection and try again.';
  const KEEP_DECIDED_MS = 5 * 60 * 1000; // a card answered here stays this long

  const $ = (id) => document.getElementById(id);
  const encoder = new TextEncoder();

  const state = {
    device: null,          // {id, user, name, keyPair, vapidPublicKey, enrolledAt, pushEndpoint}
    cards: new Map(),      // String(request id) → card
    events: null,          // the EventSource
    backoff: 1000,
    reconnectTimer: 0,
    tick: 0,
    clockOffset: 0,        // server clock − this clock, in ms, when they differ much
  };

  // ---------------------------------------------------------------- bytes

  function b64url(data) {
    const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
    let bin = '';
    for (let i = 0; i < bytes.length; i += 0x8000) {
      bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function fromB64url(text) {
    let s = String(text).replace(/-/g, '+').replace(/_/g, '/').replace(/=+$/, '');
    while (s.length % 4) s += '=';
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  /** `text` ending in a full stop, to put another sentence after it. */
  function sentence(text) {
    const t = String(text || '').trim();
    return !t || /[.!?…]$/.test(t) ? t : t + '.';
  }

  /** Rejects when `promise` has not settled after `ms`. */
  function within(promise, ms, what) {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(what)), ms);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }

  function sameBytes(a, b) {
    if (!a || !b) return false;
    const x = new Uint8Array(a);
    const y = new Uint8Array(b);
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
    return true;
  }

  // ------------------------------------------------------------ IndexedDB

  function openDb() {
    return new Promise((resolve, reject) => {
      const req = indexedDB.open(DB_NAME, 1);
      req.onupgradeneeded = () => {
        const db = req.result;
        if (!db.objectStoreNames.contains(STORE)) db.createObjectStore(STORE);
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error || new Error('IndexedDB is not available'));
      req.onblocked = () => reject(new Error('IndexedDB is blocked by another tab of this app'));
    });
  }

  async function withStore(mode, fn) {
    const db = await openDb();
    try {
      return await new Promise((resolve, reject) => {
        const tx = db.transaction(STORE, mode);
        const req = fn(tx.objectStore(STORE));
        tx.oncomplete = () => resolve(req ? req.result : undefined);
        tx.onerror = () => reject(tx.error);
        tx.onabort = () => reject(tx.error || new Error('IndexedDB transaction aborted'));
      });
    } finally {
      db.close();
    }
  }

  const dbGet = (key) => withStore('readonly', (s) => s.get(key));
  const dbPut = (key, value) => withStore('readwrite', (s) => s.put(value, key));
  const dbDelete = (key) => withStore('readwrite', (s) => s.delete(key));

  // ---------------------------------------------------------------- clock

  // The server accepts a `ts` within two minutes of its clock. A phone whose
  // clock is off would be refused; the Date header of every API answer tells
  // how far off it is.
  function noteServerDate(resp) {
    const header = resp.headers.get('Date');
    const server = header ? Date.parse(header) : NaN;
    if (Number.isNaN(server)) return;
    const diff = server - Date.now();
    state.clockOffset = Math.abs(diff) > 30000 ? diff : 0;
  }

  const nowMs = () => Date.now() + state.clockOffset;
  const unixSeconds = () => Math.floor(nowMs() / 1000);

  // A time from the server: Unix seconds (or milliseconds) or an RFC 3339 string.
  function parseTime(value) {
    if (value === null || value === undefined || value === '') return NaN;
    if (typeof value === 'number' || /^\d+(\.\d+)?$/.test(String(value))) {
      const n = Number(value);
      return n > 1e12 ? n : n * 1000;
    }
    return Date.parse(String(value));
  }

  // -------------------------------------------------------------- signing

  /** ECDSA P-256 / SHA-256 over the UTF-8 bytes of `message`; the 64-byte
   *  r‖s signature WebCrypto returns, base64url without padding. */
  async function sign(message, privateKey) {
    const key = privateKey || (state.device && state.device.keyPair.privateKey);
    if (!key) throw new Error('this device has no key');
    const sig = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, key, encoder.encode(message));
    return b64url(sig);
  }

  const signed = (...fields) => ['portcullis-approver', ...fields.map(String)].join('|');

  async function signedQuery(purpose) {
    const device = String(state.device.id);
    const ts = String(unixSeconds());
    const sig = await sign(signed(purpose, device, ts));
    return new URLSearchParams({ device, ts, sig }).toString();
  }

  // ------------------------------------------------------------------ API

  /** fetch + JSON; never throws: {ok, status, data, message}. */
  async function api(method, path, body) {
    const init = { method, headers: { Accept: 'application/json' }, cache: 'no-store', credentials: 'same-origin' };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(API + path, init);
    } catch (_) {
      return { ok: false, status: 0, data: null, message: NETWORK_ERROR };
    }
    noteServerDate(resp);
    let data = null;
    try {
      data = await resp.json();
    } catch (_) { /* not JSON */ }
    let message = '';
    if (data && typeof data.message === 'string' && data.message) message = data.message;
    else if (data && typeof data.error === 'string' && data.error) message = data.error.replace(/_/g, ' ');
    else if (!resp.ok) message = `The server answered ${resp.status}${resp.statusText ? ' ' + resp.statusText : ''}.`;
    return { ok: resp.ok, status: resp.status, data, message };
  }

  /** A signed call whose signature has a timestamp: when the server refuses
   *  it and its Date header showed this clock is off, sign again once. */
  async function withFreshTs(call) {
    const before = state.clockOffset;
    const r = await call();
    if ((r.status === 401 || r.status === 403) && state.clockOffset !== before) return call();
    return r;
  }

  // ------------------------------------------------------------- platform

  function isIos() {
    const ua = navigator.userAgent || '';
    return /iPhone|iPad|iPod/.test(ua) || (/Macintosh/.test(ua) && navigator.maxTouchPoints > 1);
  }

  function isStandalone() {
    return navigator.standalone === true ||
      (typeof matchMedia === 'function' && matchMedia('(display-mode: standalone)').matches);
  }

  function guessDeviceName() {
    const ua = navigator.userAgent || '';
    if (/iPhone/.test(ua)) return 'iPhone';
    if (/iPad/.test(ua) || (/Macintosh/.test(ua) && navigator.maxTouchPoints > 1)) return 'iPad';
    if (/Android/.test(ua)) return /Mobile/.test(ua) ? 'Android phone' : 'Android tablet';
    if (/CrOS/.test(ua)) return 'Chromebook';
    if (/Windows/.test(ua)) return 'Windows PC';
    if (/Macintosh|Mac OS X/.test(ua)) return 'Mac';
    if (/Linux/.test(ua)) return 'Linux PC';
    const uad = navigator.userAgentData;
    if (uad && uad.platform) return uad.platform;
    return 'My device';
  }

  // ------------------------------------------------------------------- UI

  function show(id, visible) {
    const el = $(id);
    if (el) el.hidden = !visible;
  }

  function setText(id, text) {
    const el = $(id);
    el.textContent = text || '';
    el.hidden = !text;
  }

  function notice(text) {
    setText('notice', text);
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function button(className, text, onClick) {
    const b = el('button', className, text);
    b.type = 'button';
    b.addEventListener('click', onClick);
    return b;
  }

  // ----------------------------------------------------------- enrollment

  function enrollCode() {
    const m = /^#enroll=([^&]+)/.exec(location.hash || '');
    if (!m) return '';
    try {
      return decodeURIComponent(m[1]);
    } catch (_) {
      return m[1];
    }
  }

  function showEnroll(code, existing) {
    show('loading', false);
    show('enroll', true);
    const input = $('device-name');
    if (!input.value) input.value = guessDeviceName();
    if (existing && existing.user) {
      setText('enroll-replace',
        `This device already approves sign-ins for ${existing.user}. Continuing replaces that; ` +
        'remove the old entry on that account page afterwards.');
    }
    $('enroll-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      enroll(code);
    });
  }

  async function enroll(code) {
    const btn = $('enroll-button');
    if (btn.disabled) return;
    const input = $('device-name');
    const name = input.value.trim() || guessDeviceName();
    input.value = name;
    btn.disabled = true;
    const label = btn.textContent;
    btn.textContent = 'Setting up…';
    setText('enroll-error', '');
    try {
      const keyPair = await crypto.subtle.generateKey(
        { name: 'ECDSA', namedCurve: 'P-256' }, false /* not extractable */, ['sign', 'verify']);
      // Store the pair before the single-use code is spent: a browser that
      // cannot keep it (some private windows) fails here, not after.
      try {
        await dbPut(ENROLLING, keyPair);
      } catch (e) {
        throw new Error('This browser cannot keep the key (is this a private window?). ' + ((e && e.message) || ''));
      }
      const spki = await crypto.subtle.exportKey('spki', keyPair.publicKey);
      const r = await api('POST', '/enroll', { code, name, public_key: b64url(spki) });
      if (!r.ok) {
        const why = r.status === 0 ? NETWORK_ERROR : (r.message || 'The enrollment was refused.');
        throw new Error(r.status === 404 || r.status === 409 || r.status === 410
          ? `${sentence(why)} Make a new QR code on your account page and scan it again.`
          : why);
      }
      const data = r.data || {};
      if (data.device === undefined || data.device === null || !data.user) {
        throw new Error('The server’s answer did not name the device.');
      }
      const device = {
        id: data.device,
        user: String(data.user),
        name,
        keyPair,
        vapidPublicKey: data.vapid_public_key || '',
        enrolledAt: Date.now(),
        pushEndpoint: null,
      };
      await dbPut(CURRENT, device);
      dbDelete(ENROLLING).catch(() => {});
      history.replaceState(null, '', location.pathname + location.search);
      show('enroll', false);
      start(device, true);
    } catch (e) {
      setText('enroll-error', (e && e.message) || 'The enrollment failed.');
      btn.disabled = false;
      btn.textContent = label;
    }
  }

  // -------------------------------------------------------- enrolled view

  function start(device, justEnrolled) {
    state.device = device;
    show('loading', false);
    show('not-enrolled', false);
    setText('enrolled', justEnrolled
      ? `This device now approves sign-ins for ${device.user}`
      : `This device approves sign-ins for ${device.user}`);
    setText('who', device.user);
    $('info-name').textContent = device.name || '';
    $('info-user').textContent = device.user;
    $('info-id').textContent = String(device.id);
    show('device-info', true);
    show('live', true);
    updateEmpty();

    fetchPending();
    connectEvents();
    if (!state.tick) state.tick = setInterval(tick, 1000);
    setupPush().catch((e) => pushStatus(`Notifications are not available: ${e.message || e}`));
  }

  function setConnection(text, kind) {
    const c = $('connection');
    c.textContent = text;
    c.dataset.state = kind;
  }

  // ------------------------------------------------------- pending, events

  let pendingSeq = 0;

  async function fetchPending() {
    if (!state.device) return;
    const seq = ++pendingSeq;
    const startedAt = performance.now();
    let r;
    try {
      r = await withFreshTs(async () => api('GET', '/pending?' + await signedQuery('pending')));
    } catch (e) {
      notice(`Could not sign the request: ${e.message || e}`);
      return;
    }
    if (seq !== pendingSeq || !state.device) return;
    if (!r.ok) {
      if (r.status === 0) return; // offline: the event stream shows it
      notice(r.status === 401 || r.status === 403 || r.status === 404
        ? `${sentence(r.message)} If this device was removed from your account, forget it below and enroll it again.`
        : r.message);
      return;
    }
    notice('');
    const list = r.data && Array.isArray(r.data.requests) ? r.data.requests : [];
    const ids = new Set();
    for (const req of list) {
      if (req && req.id !== undefined) {
        ids.add(String(req.id));
        addRequest(req);
      }
    }
    // Cards shown before this list was asked for and missing from it were
    // settled or expired meanwhile.
    for (const [id, card] of state.cards) {
      if (!ids.has(id) && card.addedAt < startedAt && !card.touched) removeCard(card);
    }
  }

  async function connectEvents() {
    clearTimeout(state.reconnectTimer);
    if (state.events) {
      state.events.close();
      state.events = null;
    }
    if (!state.device) return;
    let url;
    try {
      url = `${API}/events?${await signedQuery('events')}`;
    } catch (e) {
      scheduleReconnect();
      return;
    }
    if (!state.device) return;
    const source = new EventSource(url);
    state.events = source;
    setConnection('Connecting…', 'connecting');
    source.addEventListener('open', () => {
      if (state.events !== source) return;
      state.backoff = 1000;
      setConnection('Waiting for sign-in requests.', 'live');
      fetchPending(); // whatever came while not connected
    });
    source.addEventListener('request', (ev) => {
      try {
        addRequest(JSON.parse(ev.data));
      } catch (_) { /* ignore a malformed event */ }
    });
    source.addEventListener('settled', (ev) => {
      try {
        const data = JSON.parse(ev.data);
        if (data && data.id !== undefined) settled(String(data.id));
      } catch (_) { /* ignore */ }
    });
    source.addEventListener('error', () => {
      if (state.events !== source) return;
      // Reconnect ourselves: the query must be signed again with a fresh ts.
      source.close();
      state.events = null;
      setConnection(navigator.onLine === false ? 'Offline. Waiting for a connection…' : 'Reconnecting…', 'down');
      scheduleReconnect();
    });
  }

  function scheduleReconnect() {
    clearTimeout(state.reconnectTimer);
    const delay = state.backoff + Math.floor(Math.random() * 500);
    state.backoff = Math.min(state.backoff * 2, 30000);
    state.reconnectTimer = setTimeout(connectEvents, delay);
  }

  function reconnectNow() {
    if (!state.device) return;
    if (state.events && state.events.readyState !== EventSource.CLOSED) {
      fetchPending();
      return;
    }
    state.backoff = 1000;
    connectEvents();
  }

  // ---------------------------------------------------------------- cards

  function addRequest(req) {
    if (!req || req.id === undefined || req.id === null) return;
    const id = String(req.id);
    if (state.cards.has(id)) return;
    const expiresMs = parseTime(req.expires_at);
    if (!Number.isNaN(expiresMs) && expiresMs <= nowMs()) return;

    const card = {
      id, req, expiresMs,
      addedAt: performance.now(),
      touched: false,   // the user tapped a button: keep the card and its result
      deciding: false,
      finished: false,  // answered, settled elsewhere after a tap, or expired
      settled: false,
      buttons: [],
      node: null, result: null, advice: null, expires: null,
    };

    const node = el('article', 'request');
    node.dataset.requestId = id;
    node.setAttribute('aria-label', `Sign-in request for ${req.app || req.host || 'an application'}`);
    node.appendChild(el('h2', 'request-title', `Sign in to ${req.app || req.host || 'an application'}?`));

    const facts = el('dl', 'facts');
    const fact = (label, value) => {
      if (value === undefined || value === null || value === '') return;
      facts.appendChild(el('dt', null, label));
      facts.appendChild(el('dd', null, value));
    };
    fact('Application', req.app);
    fact('Host', req.host);
    let when = req.at_local;
    if (!when && req.at !== undefined) {
      const t = parseTime(req.at);
      when = Number.isNaN(t) ? String(req.at) : new Date(t).toLocaleString();
    }
    fact('Time', when);
    fact('From', req.from);
    fact('Browser', req.browser);
    node.appendChild(facts);

    card.expires = el('p', 'expires');
    card.expires.hidden = Number.isNaN(expiresMs);
    node.appendChild(card.expires);

    const choices = Array.isArray(req.choices) ? req.choices : [];
    if (req.number_matching && choices.length) {
      node.appendChild(el('p', 'prompt', 'Pick the number shown in your browser'));
      const row = el('div', 'choices');
      for (const n of choices) {
        const b = button('choice', n, () => decide(card, 'approve', n));
        b.dataset.number = String(n);
        b.setAttribute('aria-label', `Approve: the browser shows ${n}`);
        row.appendChild(b);
        card.buttons.push(b);
      }
      node.appendChild(row);
    } else {
      const accept = button('approve primary big', 'Accept', () => decide(card, 'approve', ''));
      accept.id = `approve-${id}`;
      node.appendChild(accept);
      card.buttons.push(accept);
    }

    const others = el('div', 'others');
    const deny = button('deny', 'Deny', () => decide(card, 'deny', ''));
    const notMe = button('not-me', 'This wasn’t me', () => decide(card, 'not_me', ''));
    others.append(deny, notMe);
    card.buttons.push(deny, notMe);
    node.appendChild(others);

    card.result = el('p', 'result');
    card.result.setAttribute('role', 'status');
    card.result.hidden = true;
    node.appendChild(card.result);
    card.advice = el('p', 'advice');
    card.advice.hidden = true;
    node.appendChild(card.advice);

    card.node = node;
    state.cards.set(id, card);
    const list = $('requests');
    list.insertBefore(node, list.firstChild); // newest first
    updateCountdown(card);
    updateEmpty();
  }

  function removeCard(card) {
    if (state.cards.get(card.id) !== card) return;
    state.cards.delete(card.id);
    clearTimeout(card.dismissTimer);
    card.node.remove();
    updateEmpty();
  }

  function setButtons(card, enabled) {
    for (const b of card.buttons) b.disabled = !enabled;
  }

  function setResult(card, text, kind) {
    card.result.textContent = text;
    card.result.dataset.kind = kind || '';
    card.result.hidden = !text;
  }

  function finish(card) {
    if (card.finished) return;
    card.finished = true;
    setButtons(card, false);
    card.node.classList.add('finished');
    card.expires.hidden = true;
    const dismiss = button('dismiss', 'Dismiss', () => removeCard(card));
    card.node.appendChild(dismiss);
    card.dismissTimer = setTimeout(() => removeCard(card), KEEP_DECIDED_MS);
    updateEmpty();
  }

  /** Takes down the Web Push notification of a request that is answered. */
  function closeNotification(id) {
    if (!('serviceWorker' in navigator)) return;
    navigator.serviceWorker.getRegistration(APP)
      .then((reg) => reg ? reg.getNotifications({ tag: `portcullis-request-${id}` }) : [])
      .then((list) => list.forEach((n) => n.close()))
      .catch(() => {});
  }

  function settled(id) {
    closeNotification(id);
    const card = state.cards.get(id);
    if (!card) return;
    card.settled = true;
    if (!card.touched) {
      removeCard(card); // answered on another device, or by the server
    } else if (!card.deciding) {
      finish(card);
    }
  }

  async function decide(card, decision, number) {
    if (card.deciding || card.finished || !state.device) return;
    card.touched = true;
    card.deciding = true;
    setButtons(card, false);
    setResult(card, 'Sending…', 'pending');
    card.advice.hidden = true;

    const num = number === undefined || number === null ? '' : String(number);
    let r;
    try {
      const sig = await sign(signed('decide', state.device.id, card.req.id, num, decision));
      r = await api('POST', '/decide', {
        device: state.device.id, request: card.req.id, number: num, decision, sig,
      });
    } catch (e) {
      r = { ok: false, status: -1, data: null, message: `Could not sign the answer: ${e.message || e}` };
    }
    card.deciding = false;

    if (r.ok) {
      const result = r.data && r.data.result;
      setResult(card,
        result === 'approved' ? 'Approved' : result === 'denied' ? 'Denied' : String(result || 'Done'),
        result === 'approved' ? 'approved' : 'denied');
      if (decision === 'not_me') {
        card.advice.textContent = 'If you did not try to sign in, someone may know your password: ' +
          'change it, and tell your administrator.';
        card.advice.hidden = false;
      }
      finish(card);
      closeNotification(card.id);
      return;
    }
    setResult(card, r.message || (r.status === 409
      ? 'This request was already answered or has expired.'
      : 'The answer was refused.'), 'error');
    // 409: nothing more to do. Otherwise (offline, wrong number, a server
    // error) let the user try again unless the request is gone meanwhile.
    if (r.status === 409 || card.settled || card.expired) finish(card);
    else setButtons(card, true);
  }

  function updateCountdown(card) {
    if (Number.isNaN(card.expiresMs) || card.finished) return;
    const left = card.expiresMs - nowMs();
    if (left <= 0) {
      card.expired = true;
      if (!card.touched) {
        removeCard(card);
      } else if (!card.deciding) {
        if (card.result.hidden) setResult(card, 'Expired', 'error');
        finish(card);
      }
      return;
    }
    const s = Math.ceil(left / 1000);
    card.expires.textContent = `Expires in ${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
  }

  function tick() {
    for (const card of Array.from(state.cards.values())) updateCountdown(card);
  }

  function updateEmpty() {
    let open = 0;
    for (const card of state.cards.values()) if (!card.finished) open++;
    show('empty', state.cards.size === 0);
    document.title = open ? `(${open}) Approver` : 'Approver';
  }

  // ------------------------------------------------------------- Web Push

  function pushStatus(text) {
    setText('push-status', text);
  }

  function pushSupported() {
    return 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;
  }

  async function setupPush() {
    show('push', true);
    const btn = $('push-button');
    if (isIos() && !isStandalone()) {
      $('push-text').textContent = IOS_TEXT;
      btn.hidden = true;
      return;
    }
    if (!pushSupported()) {
      $('push-text').textContent = 'This browser cannot show notifications when the app is closed. ' +
        'Keep this app open to see sign-in requests.';
      btn.hidden = true;
      return;
    }
    if (!state.device.vapidPublicKey) {
      $('push-text').textContent = 'The server does not send notifications. Keep this app open to see sign-in requests.';
      btn.hidden = true;
      return;
    }
    if (!btn.dataset.bound) {
      btn.dataset.bound = '1';
      btn.addEventListener('click', enablePush);
    }
    btn.hidden = false;
    if (Notification.permission === 'denied') {
      pushStatus('Notifications are blocked for this site. Allow them in the browser’s site settings, then try again.');
      return;
    }
    const reg = await navigator.serviceWorker.getRegistration(APP);
    const sub = reg && await reg.pushManager.getSubscription();
    if (sub && Notification.permission === 'granted' && state.device.pushEndpoint === sub.endpoint) {
      reg.update().catch(() => {});
      btn.textContent = 'Register notifications again';
      btn.classList.remove('primary');
      pushStatus('Notifications are on for this device.');
    } else {
      btn.textContent = 'Get notifications when this app is closed';
      btn.classList.add('primary');
    }
  }

  async function enablePush() {
    const btn = $('push-button');
    if (btn.disabled || !state.device) return;
    btn.disabled = true;
    pushStatus('Turning on notifications…');
    try {
      // Ask first, inside the tap: Safari wants the permission prompt there.
      const permission = await Notification.requestPermission();
      if (permission !== 'granted') {
        pushStatus(permission === 'denied'
          ? 'Notifications are blocked for this site. Allow them in the browser’s site settings, then try again.'
          : 'Notifications were not allowed.');
        return;
      }
      await navigator.serviceWorker.register(`${APP}sw.js`, { scope: APP });
      const reg = await navigator.serviceWorker.ready; // an active worker is needed to subscribe
      const key = fromB64url(state.device.vapidPublicKey);
      let sub = await reg.pushManager.getSubscription();
      if (sub && sub.options && sub.options.applicationServerKey &&
          !sameBytes(sub.options.applicationServerKey, key)) {
        await sub.unsubscribe(); // made for another server key (an earlier enrollment)
        sub = null;
      }
      if (!sub) {
        sub = await within(
          reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key }),
          30000, 'the browser’s push service did not answer; try again later');
      }
      const r = await postSubscription(sub);
      if (!r.ok) {
        pushStatus(`The server did not take the subscription: ${r.message}`);
        return;
      }
      state.device.pushEndpoint = sub.endpoint;
      await dbPut(CURRENT, state.device);
      btn.textContent = 'Register notifications again';
      btn.classList.remove('primary');
      pushStatus('Notifications are on for this device.');
    } catch (e) {
      pushStatus(`Could not turn on notifications: ${(e && e.message) || e}`);
    } finally {
      btn.disabled = false;
    }
  }

  function postSubscription(sub) {
    const endpoint = sub.endpoint;
    const p256dh = sub.getKey('p256dh');
    const auth = sub.getKey('auth');
    if (!p256dh || !auth) {
      return Promise.resolve({ ok: false, status: -1, data: null, message: 'the browser gave no encryption keys' });
    }
    return withFreshTs(async () => {
      const ts = unixSeconds();
      const sig = await sign(signed('subscribe', state.device.id, ts, endpoint));
      return api('POST', '/subscribe', {
        device: state.device.id,
        ts,
        sig,
        subscription: { endpoint, keys: { p256dh: b64url(p256dh), auth: b64url(auth) } },
      });
    });
  }

  // --------------------------------------------------------------- forget

  let forgetArmed = 0;

  async function forget() {
    const btn = $('forget-button');
    if (!forgetArmed) {
      btn.textContent = 'Tap again to forget this device';
      forgetArmed = setTimeout(() => {
        forgetArmed = 0;
        btn.textContent = 'Forget this device';
      }, 5000);
      return;
    }
    clearTimeout(forgetArmed);
    forgetArmed = 0;
    btn.disabled = true;
    clearTimeout(state.reconnectTimer);
    if (state.events) state.events.close();
    state.events = null;
    state.device = null;
    try {
      if (pushSupported()) {
        const reg = await navigator.serviceWorker.getRegistration(APP);
        const sub = reg && await reg.pushManager.getSubscription();
        if (sub) await sub.unsubscribe();
      }
    } catch (_) { /* best effort */ }
    try {
      await dbDelete(CURRENT);
    } catch (e) {
      notice(`Could not forget the device: ${e.message || e}`);
      btn.disabled = false;
      return;
    }
    location.replace(APP);
  }

  // ----------------------------------------------------------------- main

  async function main() {
    $('forget-button').addEventListener('click', forget);
    window.addEventListener('hashchange', () => {
      if (enrollCode()) location.reload();
    });
    // Phones suspend pages in the background: on return, reconnect at once.
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') reconnectNow();
    });
    window.addEventListener('online', reconnectNow);
    window.addEventListener('pageshow', (ev) => {
      if (ev.persisted) reconnectNow();
    });
    if ('serviceWorker' in navigator) {
      // The service worker asks for a refresh when a notification is tapped.
      navigator.serviceWorker.addEventListener('message', (ev) => {
        if (ev.data && ev.data.type === 'refresh') fetchPending();
      });
    }

    if (!window.isSecureContext || !window.crypto || !crypto.subtle || !window.indexedDB ||
        typeof EventSource === 'undefined') {
      show('loading', false);
      show('unsupported', true);
      return;
    }

    let device = null;
    try {
      device = await dbGet(CURRENT);
    } catch (e) {
      show('loading', false);
      $('unsupported-text').textContent = `This browser does not let the app keep its key: ${e.message || e}. ` +
        'Private windows often do not; open the link in a normal window.';
      show('unsupported', true);
      return;
    }

    const code = enrollCode();
    if (code) {
      showEnroll(code, device);
      return;
    }
    if (device && device.id !== undefined && device.keyPair && device.keyPair.privateKey) {
      start(device, false);
    } else {
      show('loading', false);
      show('not-enrolled', true);
    }

  }

  main().catch((e) => {
    show('loading', false);
    notice(`Something went wrong: ${(e && e.message) || e}`);
  });
})();

// portcullis approver: service worker (scope /.portcullis/approver/).
//
// Shows a notification for each Web Push message ({title, body, request}),
// and opens or focuses the app when one is tapped. It caches nothing: the
// app needs the server to answer a request anyway.
'use strict';

const APP = '/.portcullis/approver/';
const API = '/.portcullis/api/approver';
const ICON = APP + 'icon.svg';

self.addEventListener('install', () => {
  self.skipWaiting();
});

self.addEventListener('activate', (event) => {
  event.waitUntil(self.clients.claim());
});

// `request` may be the request's id or the whole REQUEST object.
function requestId(request) {
  if (request === undefined || request === null) return '';
  if (typeof request === 'object') return request.id === undefined ? '' : String(request.id);
  return String(request);
}

async function appWindows() {
  const all = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  const scope = new URL(APP, self.location.origin).href;
  return all.filter((c) => c.url.startsWith(scope));
}

self.addEventListener('push', (event) => {
  let data = {};
  if (event.data) {
    try {
      data = event.data.json() || {};
    } catch (_) {
      try {
        data = { body: event.data.text() };
      } catch (_) {
        data = {};
      }
    }
  }
  const id = requestId(data.request);
  const title = data.title ? String(data.title) : 'Sign-in request';
  const options = {
    body: data.body ? String(data.body) : 'Open the approver to answer it.',
    icon: ICON,
    badge: ICON,
    tag: id ? `portcullis-request-${id}` : 'portcullis-approver',
    renotify: true,
    requireInteraction: true,
    data: { request: id },
  };
  event.waitUntil((async () => {
    await self.registration.showNotification(title, options);
    // An open app fetches the pending requests (its event stream may be asleep).
    for (const client of await appWindows()) client.postMessage({ type: 'refresh', request: id });
  })());
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  event.waitUntil((async () => {
    const windows = await appWindows();
    for (const client of windows) {
      if ('focus' in client) {
        client.postMessage({ type: 'refresh' });
        return client.focus();
      }
    }
    return self.clients.openWindow(APP);
  })());
});

// The push service replaced the subscription: subscribe again with the key
// kept in IndexedDB and tell the server, signed as the app does.
self.addEventListener('pushsubscriptionchange', (event) => {
  event.waitUntil(resubscribe(event).catch(() => {}));
});

function b64url(data) {
  const bytes = new Uint8Array(data);
  let bin = '';
  for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
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

function dbRequest(mode, fn) {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open('portcullis-approver', 1);
    open.onupgradeneeded = () => {
      if (!open.result.objectStoreNames.contains('device')) open.result.createObjectStore('device');
    };
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const db = open.result;
      const tx = db.transaction('device', mode);
      const req = fn(tx.objectStore('device'));
      tx.oncomplete = () => {
        db.close();
        resolve(req.result);
      };
      tx.onerror = tx.onabort = () => {
        db.close();
        reject(tx.error);
      };
    };
  });
}

async function resubscribe(event) {
  const device = await dbRequest('readonly', (s) => s.get('current'));
  if (!device || !device.keyPair || !device.vapidPublicKey || !device.pushEndpoint) return;
  const sub = event.newSubscription || await self.registration.pushManager.subscribe({
    userVisibleOnly: true,
    applicationServerKey: fromB64url(device.vapidPublicKey),
  });
  const ts = Math.floor(Date.now() / 1000);
  const message = ['portcullis-approver', 'subscribe', device.id, ts, sub.endpoint].map(String).join('|');
  const sig = b64url(await crypto.subtle.sign(
    { name: 'ECDSA', hash: 'SHA-256' }, device.keyPair.privateKey, new TextEncoder().encode(message)));
  const resp = await fetch(API + '/subscribe', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({
      device: device.id,
      ts,
      sig,
      subscription: {
        endpoint: sub.endpoint,
        keys: { p256dh: b64url(sub.getKey('p256dh')), auth: b64url(sub.getKey('auth')) },
      },
    }),
  });
  if (resp.ok) {
    device.pushEndpoint = sub.endpoint;
    await dbRequest('readwrite', (s) => s.put(device, 'current'));
  }
}

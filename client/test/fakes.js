// Test doubles for the things the logic modules are given: fetch, WebSocket, storage, timers.

export function memoryStorage(initial = {}) {
  const data = new Map(Object.entries(initial));
  return {
    getItem: (k) => (data.has(k) ? data.get(k) : null),
    setItem: (k, v) => data.set(k, String(v)),
    removeItem: (k) => data.delete(k),
    get size() {
      return data.size;
    },
  };
}

/** A JWT whose payload carries `exp` (seconds); the signature is irrelevant to the client. */
export function jwt(expSeconds, extra = {}) {
  const encode = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');
  return `${encode({ alg: 'HS256', typ: 'JWT' })}.${encode({ exp: expSeconds, ...extra })}.sig`;
}

export function jsonResponse(status, body, headers = {}) {
  const text = body === undefined ? '' : JSON.stringify(body);
  return {
    status,
    ok: status >= 200 && status < 300,
    headers: { get: (name) => headers[name] ?? headers[name.toLowerCase()] ?? null },
    text: async () => text,
    json: async () => JSON.parse(text),
  };
}

/**
 * A fetch that routes "METHOD /path" to handlers and records every call.
 * A handler gets ({url, method, headers, body}) and returns a response or a promise of one.
 */
export function fakeFetch(routes) {
  const calls = [];
  const fetch = async (url, init = {}) => {
    const { pathname, search } = new URL(url);
    const method = init.method || 'GET';
    const call = { url, path: pathname, search, method, headers: init.headers || {}, body: init.body ? JSON.parse(init.body) : undefined };
    calls.push(call);
    const handler = routes[`${method} ${pathname}`];
    if (!handler) return jsonResponse(404, { detail: `no route ${method} ${pathname}` });
    return handler(call);
  };
  return { fetch, calls };
}

/** A controllable clock plus setTimeout/setInterval that only fire when the test advances time. */
export function fakeTimers(start = 1_700_000_000_000) {
  let time = start;
  let nextId = 1;
  const pending = new Map();
  const timers = {
    setTimeout: (fn, ms = 0) => {
      const id = nextId++;
      pending.set(id, { fn, at: time + ms });
      return id;
    },
    clearTimeout: (id) => pending.delete(id),
    setInterval: (fn, ms) => {
      const id = nextId++;
      const tick = () => {
        pending.set(id, { fn: tick, at: time + ms });
        fn();
      };
      pending.set(id, { fn: tick, at: time + ms });
      return id;
    },
    clearInterval: (id) => pending.delete(id),
  };
  return {
    timers,
    now: () => time,
    delays: () => [...pending.values()].map((t) => t.at - time),
    /** Run every timer due within `ms`, in order. */
    async advance(ms) {
      const until = time + ms;
      for (;;) {
        const due = [...pending.entries()].filter(([, t]) => t.at <= until).sort((a, b) => a[1].at - b[1].at)[0];
        if (!due) break;
        const [id, t] = due;
        pending.delete(id);
        time = t.at;
        t.fn();
        await flush();
      }
      time = until;
    },
  };
}

export async function flush() {
  for (let i = 0; i < 20; i += 1) await new Promise((resolve) => setImmediate(resolve));
}

/** A WebSocket class whose instances the test opens, feeds and closes by hand. */
export function fakeWebSocketClass() {
  const instances = [];
  class FakeWebSocket {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      instances.push(this);
    }
    send(data) {
      if (this.readyState !== 1) throw new Error('not open');
      this.sent.push(JSON.parse(data));
    }
    close(code = 1000) {
      if (this.readyState === 3) return;
      this.readyState = 3;
      this.onclose?.({ code });
    }
    // test controls
    serverOpen() {
      this.readyState = 1;
      this.onopen?.({});
    }
    serverSend(frame) {
      this.onmessage?.({ data: JSON.stringify(frame) });
    }
    serverClose(code = 1006) {
      this.readyState = 3;
      this.onclose?.({ code });
    }
  }
  return { FakeWebSocket, instances };
}

// The one WebSocket to `/ws/`: every event of every chat the user is in.
// It reconnects with exponential backoff and jitter; each time it (re)connects it sends the queued
// messages and asks every chat for what changed since the last version this client saw
// (`GET /api/chats/{id}/messages?since=<version>`), so a dropped connection loses nothing.
// An event whose version skips ahead triggers the same catch-up for its chat, and so does a
// `resync` frame (the server could not deliver some events: its channel layer was unreachable):
// `chat_ids` names the chats to catch up; without it, every chat and the chat list.
// Close codes: 4401 gets a fresh token first; 1001 (the server is going away: a restart) reconnects
// after a short random delay, so its clients do not all come back at one instant; 4503 (the server
// cannot take the socket now) and 4429 (flooding) retry after a longer, growing delay.
// A socket lives no longer than the access token it was opened with (the server closes it with 4401):
// after every refresh of the access token (the API client refreshes ahead of expiry) the open socket
// is renewed with `{"type": "auth", "token"}`, which the server answers with `auth.ok`.

export const BACKOFF_BASE_MS = 500;
export const BACKOFF_MAX_MS = 30_000;
// After a close 1001: reconnect within GOING_AWAY_MIN_MS + [0, GOING_AWAY_SPREAD_MS).
export const GOING_AWAY_MIN_MS = 250;
export const GOING_AWAY_SPREAD_MS = 2_000;
const HEARTBEAT_MS = 25_000;
const SILENCE_LIMIT_MS = 60_000;
const ACK_TIMEOUT_MS = 8_000;

/** Delay before reconnect attempt `attempt` (0-based): exponential, capped, with jitter of up to half. */
export function backoffDelay(attempt, random = Math.random, base = BACKOFF_BASE_MS, max = BACKOFF_MAX_MS) {
  const ceiling = Math.min(max, base * 2 ** attempt);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** `http://host:8000` → `ws://host:8000/ws/`. */
export function socketUrl(serverUrl) {
  const url = new URL('/ws/', serverUrl);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.toString();
}

const OPEN = 1;

// Wrapped so they are never called with `this` set to another object (browsers reject that).
const defaultTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (id) => clearInterval(id),
};

export function createSocket({
  url,
  api,
  store,
  WebSocket: WebSocketImpl,
  onEvent = () => {},
  random = Math.random,
  timers = defaultTimers,
  now = Date.now,
  log = () => {},
}) {
  let ws = null;
  let stopped = true;
  let attempts = 0;
  let unavailable = 0; // 4503 closes in a row: each waits longer, though the socket was accepted first
  let reconnectTimer = null;
  let heartbeatTimer = null;
  let lastFrameAt = 0;
  const ackTimers = new Map(); // client_id -> timer
  const catchUps = new Map(); // chat id -> { running: Promise, again: boolean }
  let socketToken = null; // the access token the open socket was opened or last renewed with

  /** Renew the open socket's session with a new access token (sent once per token). */
  function renew(token) {
    if (!token || token === socketToken || !isOpen()) return;
    if (write({ type: 'auth', token })) socketToken = token;
  }
  const unsubscribeTokens = api.onAccessToken ? api.onAccessToken(renew) : () => {};

  function isOpen() {
    return Boolean(ws && ws.readyState === OPEN);
  }

  function write(frame) {
    if (!isOpen()) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }

  // ---- connection lifecycle -----------------------------------------------------------------

  function start() {
    if (!stopped) return;
    stopped = false;
    attempts = 0;
    connect();
  }

  function stop() {
    stopped = true;
    timers.clearTimeout(reconnectTimer);
    reconnectTimer = null;
    stopHeartbeat();
    for (const timer of ackTimers.values()) timers.clearTimeout(timer);
    ackTimers.clear();
    if (ws) {
      const closing = ws;
      ws = null;
      closing.onopen = closing.onmessage = closing.onclose = closing.onerror = null;
      try {
        closing.close(1000);
      } catch {
        /* already closed */
      }
    }
    store.setConnection('offline');
  }

  /** Reconnect now instead of waiting out the backoff (e.g. the browser says it is online again). */
  function kick() {
    if (stopped || isOpen() || (ws && ws.readyState === 0)) return;
    timers.clearTimeout(reconnectTimer);
    reconnectTimer = null;
    attempts = 0;
    connect();
  }

  async function connect() {
    if (stopped) return;
    store.setConnection('connecting');
    let token;
    try {
      token = await api.accessToken();
    } catch (error) {
      // 400/401 means the session is over (the API client has already said so); stop trying.
      if (error && (error.status === 401 || error.status === 400)) {
        stop();
        return;
      }
      scheduleReconnect();
      return;
    }
    if (stopped) return;
    const socket = new WebSocketImpl(`${url}?token=${encodeURIComponent(token)}`);
    ws = socket;
    socketToken = token;
    socket.onopen = () => {
      if (ws !== socket) return;
      // A refresh while the socket was opening: renew at once with the newer token.
      renew(api.currentAccessToken ? api.currentAccessToken() : null);
      attempts = 0;
      lastFrameAt = now();
      store.setConnection('online');
      startHeartbeat();
      flushOutbox();
      syncUntilDone(socket);
    };
    socket.onmessage = (event) => {
      if (ws !== socket) return;
      lastFrameAt = now();
      unavailable = 0;
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      handleFrame(frame);
    };
    socket.onerror = () => {}; // onclose follows and does the work
    socket.onclose = (event) => {
      if (ws !== socket) return;
      ws = null;
      stopHeartbeat();
      requeueUnacknowledged();
      if (stopped) return;
      store.setConnection('connecting');
      if (event.code === 4401) {
        // The token expired or was revoked: get a new one before the next attempt.
        api.refresh().then(
          () => scheduleReconnect(),
          (error) => (error && error.status === 0 ? scheduleReconnect() : stop()),
        );
        return;
      }
      if (event.code === 1001) {
        // A restart: the server is back in a moment. Catch-up follows the next open, as always.
        scheduleReconnect(0, GOING_AWAY_MIN_MS + Math.round(random() * GOING_AWAY_SPREAD_MS));
        return;
      }
      if (event.code === 4503) {
        unavailable += 1;
        scheduleReconnect(1 + unavailable);
        return;
      }
      scheduleReconnect(event.code === 4429 ? 4 : 0);
    };
  }

  function scheduleReconnect(extraAttempts = 0, fixedDelay = null) {
    if (stopped) return;
    store.setConnection('connecting');
    const delay = fixedDelay ?? backoffDelay(attempts + extraAttempts, random);
    attempts += 1;
    timers.clearTimeout(reconnectTimer);
    reconnectTimer = timers.setTimeout(() => {
      reconnectTimer = null;
      connect();
    }, delay);
  }

  function startHeartbeat() {
    stopHeartbeat();
    heartbeatTimer = timers.setInterval(() => {
      if (!isOpen()) return;
      if (now() - lastFrameAt > SILENCE_LIMIT_MS) {
        // No pong for too long: the connection is dead even if the OS has not noticed yet.
        ws.close(4000);
        return;
      }
      write({ type: 'ping' });
    }, HEARTBEAT_MS);
  }

  function stopHeartbeat() {
    if (heartbeatTimer) timers.clearInterval(heartbeatTimer);
    heartbeatTimer = null;
  }

  // ---- incoming frames ----------------------------------------------------------------------

  const handlers = {
    'message.created': (f) => applyVersioned(f.chat_id ?? f.message.chat_id, f.version ?? f.message.version,
      () => store.applyMessage(f.message)),
    'message.updated': (f) => applyVersioned(f.chat_id ?? f.message.chat_id, f.version ?? f.message.version,
      () => store.applyMessage(f.message)),
    'message.deleted': (f) => applyVersioned(f.chat_id, f.version, () => store.applyDeleted(f)),
    'message.ack': (f) => {
      clearAckTimer(f.client_id);
      if (!f.message) return store.dropPending(f.client_id);
      applyVersioned(f.message.chat_id, f.message.version, () => store.applyAck(f));
    },
    'chat.read': (f) => store.applyRead(f),
    typing: (f) => store.applyTyping(f),
    presence: (f) => store.applyPresence(f),
    // Someone we share a chat with (or we, in another tab) changed their display name or avatar.
    'user.updated': (f) => store.applyUser(f.user),
    'chat.created': (f) => store.upsertChat(f.chat),
    // The fields that changed (a rename: title), merged into the chat we have; a chat we do not have yet
    // is fetched whole.
    'chat.updated': (f) => (store.getChat(f.chat.id) || f.chat.members ? store.upsertChat(f.chat) : refreshChat(f.chat.id)),
    // Membership changes come as deltas: applied to the chat we have (a chat of 1,000 members is not
    // fetched again by each of them). A server that sends no `member` (older ones) gets a refresh.
    'member.added': (f) => (f.member && store.getChat(f.chat_id) ? store.applyMember(f.chat_id, f.user_id, f.member)
      : refreshChat(f.chat_id)),
    'member.updated': (f) => {
      const known = store.getChat(f.chat_id);
      const current = known && (known.members || []).find((m) => m.user.id === f.user_id);
      if (current) store.applyMember(f.chat_id, f.user_id, { user: current.user, role: f.role });
      else refreshChat(f.chat_id);
    },
    'member.removed': (f) => {
      if (store.state.user && f.user_id === store.state.user.id) store.removeChat(f.chat_id);
      else if (store.getChat(f.chat_id)) store.applyMember(f.chat_id, f.user_id, null);
    },
    error: (f) => {
      if (f.client_id) {
        clearAckTimer(f.client_id);
        store.markPending(f.client_id, 'failed', f.detail || f.code);
      }
    },
    pong: () => {},
    'auth.ok': () => {},
    // The server lost events for us: catch up the chats it names, or everything.
    resync: (f) => {
      if (!Array.isArray(f.chat_ids)) {
        if (ws) syncUntilDone(ws);
        return;
      }
      for (const chatId of f.chat_ids) {
        if (!store.getChat(chatId)) refreshChat(chatId);
        else if (ws) catchUpUntilDone(ws, chatId);
      }
    },
  };

  function handleFrame(frame) {
    const handler = handlers[frame.type];
    if (handler) handler(frame);
    onEvent(frame);
  }

  /**
   * Apply a change that carries its chat's version. The next version in line advances the
   * chat's known version; a version further ahead means events were missed, so fetch them.
   */
  function applyVersioned(chatId, version, apply) {
    if (!store.getChat(chatId)) {
      // A chat we have not heard of (created while we were away): load it, then its history.
      apply();
      refreshChat(chatId);
      return;
    }
    const known = store.knownVersion(chatId);
    apply();
    if (version == null || version <= known) return;
    if (version === known + 1 && !catchUps.has(chatId)) store.advanceVersion(chatId, version);
    else catchUp(chatId).catch((error) => log('catch-up failed', error));
  }

  async function refreshChat(chatId) {
    try {
      store.upsertChat(await api.chat(chatId));
    } catch (error) {
      if (error && error.status === 404) store.removeChat(chatId);
    }
  }

  /** Fetch every change after the chat's known version; one run per chat at a time. */
  function catchUp(chatId) {
    const current = catchUps.get(chatId);
    if (current) {
      current.again = true;
      return current.running;
    }
    const entry = { again: false, running: null };
    entry.running = (async () => {
      try {
        do {
          entry.again = false;
          let hasMore = true;
          while (hasMore) {
            const since = store.knownVersion(chatId);
            const page = await api.changesSince(chatId, since);
            const results = page.results || [];
            for (const message of results) {
              store.applyMessage(message);
              store.advanceVersion(chatId, message.version);
            }
            hasMore = Boolean(page.has_more) && results.length > 0;
          }
        } while (entry.again);
      } catch (error) {
        if (error && error.status === 404) store.removeChat(chatId);
        else throw error;
      } finally {
        catchUps.delete(chatId);
      }
    })();
    catchUps.set(chatId, entry);
    return entry.running;
  }

  /**
   * After (re)connecting: catch up every chat whose server version moved past ours, then take the
   * server's chat list (new chats, chats we left, authoritative unread counts).
   */
  async function syncAll() {
    const chats = await api.chats();
    const behind = chats.filter((chat) => store.getChat(chat.id) && chat.version > store.knownVersion(chat.id));
    await Promise.all(behind.map((chat) => catchUp(chat.id)));
    store.setChats(chats);
  }

  /** Catch up after a connect; if the server cannot answer now, try again while still connected. */
  function syncUntilDone(socket, attempt = 0) {
    syncAll().catch((error) => {
      log('catch-up failed', error);
      if (ws !== socket || stopped) return;
      timers.setTimeout(() => ws === socket && !stopped && syncUntilDone(socket, attempt + 1),
        backoffDelay(attempt + 2, random));
    });
  }

  /** One chat's catch-up (a resync named it); if the server cannot answer now, again while connected. */
  function catchUpUntilDone(socket, chatId, attempt = 0) {
    catchUp(chatId).catch((error) => {
      log('catch-up failed', error);
      if (ws !== socket || stopped) return;
      timers.setTimeout(() => ws === socket && !stopped && catchUpUntilDone(socket, chatId, attempt + 1),
        backoffDelay(attempt + 2, random));
    });
  }

  // ---- outgoing -----------------------------------------------------------------------------

  function clearAckTimer(clientId) {
    const timer = ackTimers.get(clientId);
    if (timer) timers.clearTimeout(timer);
    ackTimers.delete(clientId);
  }

  /** Write a pending send to the socket if it is open; otherwise it waits for the next connect. */
  function transmit(entry) {
    const frame = { type: 'message.send', chat_id: entry.chat_id, content: entry.content || '', client_id: entry.client_id };
    if (entry.attachment_id) frame.attachment_id = entry.attachment_id;
    if (entry.reply_to_id) frame.reply_to_id = entry.reply_to_id;
    if (!write(frame)) {
      // No socket right now: REST may still work. If it does not either, the entry stays queued
      // and goes out when the socket is back.
      postOverRest(entry.client_id);
      return false;
    }
    store.markPending(entry.client_id, 'sent');
    clearAckTimer(entry.client_id);
    // Without an ack in time, post it over REST: the same client_id makes a repeat harmless.
    ackTimers.set(entry.client_id, timers.setTimeout(() => {
      ackTimers.delete(entry.client_id);
      postOverRest(entry.client_id);
    }, ACK_TIMEOUT_MS));
    return true;
  }

  async function postOverRest(clientId) {
    const entry = store.state.pending.find((p) => p.client_id === clientId);
    if (!entry || entry.status === 'failed' || entry.status === 'posting') return;
    store.markPending(clientId, 'posting');
    try {
      const message = await api.sendMessage(entry.chat_id, entry);
      clearAckTimer(clientId);
      store.applyAck({ client_id: clientId, message });
    } catch (error) {
      const permanent = error && error.status >= 400 && error.status < 500 && error.status !== 429 && error.status !== 401;
      if (permanent) store.markPending(clientId, 'failed', error.message);
      else store.markPending(clientId, 'queued');
    }
  }

  function sendMessage({ chat_id, content, attachment = null, reply_to = null }) {
    const entry = store.enqueue({ chat_id, content, attachment, reply_to });
    transmit(entry);
    return entry;
  }

  /** Try a failed send again with the same client_id. */
  function retry(clientId) {
    const entry = store.state.pending.find((p) => p.client_id === clientId);
    if (!entry) return;
    store.markPending(clientId, 'queued');
    transmit(entry);
  }

  function flushOutbox() {
    for (const entry of store.outbox()) if (entry.status === 'queued') transmit(entry);
  }

  function requeueUnacknowledged() {
    for (const entry of store.outbox()) {
      clearAckTimer(entry.client_id);
      if (entry.status === 'sent') store.markPending(entry.client_id, 'queued');
    }
  }

  return {
    start,
    stop,
    kick,
    isOpen,
    sendMessage,
    retry,
    typing: (chatId) => write({ type: 'typing', chat_id: chatId }),
    read: (chatId, messageId) => write({ type: 'read', chat_id: chatId, message_id: messageId }),
    catchUp,
    syncAll,
    /** Stop listening for new access tokens (the socket is being thrown away). */
    dispose() {
      stop();
      unsubscribeTokens();
    },
    /** For tests and debugging: the live WebSocket object. */
    get raw() {
      return ws;
    },
  };
}

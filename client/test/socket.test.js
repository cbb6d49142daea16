import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, backoffDelay, socketUrl, BACKOFF_MAX_MS } from '../renderer/js/socket.js';
import { createStore } from '../renderer/js/store.js';
import { fakeWebSocketClass, fakeTimers, flush } from './fakes.js';

const ann = { id: 1, username: 'ann', display_name: 'Ann' };
const bob = { id: 2, username: 'bob', display_name: 'Bob' };

function chat(id, version) {
  return {
    id, is_group: false, title: null, version, unread_count: 0, last_read_id: 0, created_at: '2024-01-01T00:00:00Z',
    last_message: null, members: [{ user: ann, role: 'member' }, { user: bob, role: 'member' }],
  };
}

function message(id, chatId, version, overrides = {}) {
  return {
    id, chat_id: chatId, sender: bob, content: `m${id}`, attachment: null, is_read: false, client_id: null,
    created_at: '2024-01-01T00:00:00Z', edited_at: null, deleted: false, version, ...overrides,
  };
}

/** A fake server: the chat list and a per-chat change log answering `?since=`. */
function fakeApi({ chats, log, pageSize = 100 }) {
  const calls = [];
  let tokens = 0;
  return {
    calls,
    async accessToken() {
      tokens += 1;
      return `token${tokens}`;
    },
    async refresh() {
      calls.push(['refresh']);
      return 'refreshed';
    },
    async chats() {
      calls.push(['chats']);
      return chats();
    },
    async chat(id) {
      calls.push(['chat', id]);
      return chats().find((c) => c.id === id);
    },
    async changesSince(chatId, since) {
      calls.push(['since', chatId, since]);
      const changes = (log[chatId] || []).filter((m) => m.version > since).sort((a, b) => a.version - b.version);
      return { results: changes.slice(0, pageSize), has_more: changes.length > pageSize };
    },
    offline: false,
    async sendMessage(chatId, entry) {
      calls.push(['post', chatId, entry.client_id]);
      if (this.offline) throw Object.assign(new Error('Cannot reach the server.'), { status: 0 });
      return message(99, chatId, 99, { sender: ann, client_id: entry.client_id, content: entry.content });
    },
  };
}

function setup({ chats = [chat(10, 2)], log = {}, pageSize, extendApi = () => {} } = {}) {
  const store = createStore();
  store.setUser(ann);
  for (const c of chats) store.upsertChat(c);
  const serverChats = chats.map((c) => ({ ...c }));
  const api = fakeApi({ chats: () => serverChats, log, pageSize });
  extendApi(api);
  const { FakeWebSocket, instances } = fakeWebSocketClass();
  const clock = fakeTimers();
  const socket = createSocket({
    url: 'ws://server.test/ws/', api, store, WebSocket: FakeWebSocket, timers: clock.timers, now: clock.now, random: () => 1,
  });
  return { store, api, socket, instances, clock, serverChats, log };
}

test('socketUrl turns the server address into the /ws/ endpoint', () => {
  assert.equal(socketUrl('http://127.0.0.1:8000'), 'ws://127.0.0.1:8000/ws/');
  assert.equal(socketUrl('https://chat.example.org/'), 'wss://chat.example.org/ws/');
});

test('backoff doubles per attempt, is capped, and jitters within the upper half', () => {
  assert.equal(backoffDelay(0, () => 1), 500);
  assert.equal(backoffDelay(3, () => 1), 4000);
  assert.equal(backoffDelay(3, () => 0), 2000);
  assert.equal(backoffDelay(20, () => 1), BACKOFF_MAX_MS);
});

test('connects with the access token and goes online', async () => {
  const { socket, instances, store } = setup();
  socket.start();
  await flush();
  assert.equal(instances[0].url, 'ws://server.test/ws/?token=token1');
  instances[0].serverOpen();
  assert.equal(store.state.connection, 'online');
});

test('a dropped socket reconnects with growing delays and a fresh token', async () => {
  const { socket, instances, clock, store } = setup();
  socket.start();
  await flush();
  instances[0].serverClose(1006);
  assert.equal(store.state.connection, 'connecting');
  assert.deepEqual(clock.delays(), [500]);

  await clock.advance(500);
  assert.equal(instances.length, 2);
  instances[1].serverClose(1006);
  assert.deepEqual(clock.delays(), [1000]);
  await clock.advance(1000);
  instances[2].serverClose(1006);
  assert.deepEqual(clock.delays(), [2000]);

  await clock.advance(2000);
  assert.equal(instances[3].url, 'ws://server.test/ws/?token=token4');
  instances[3].serverOpen();
  await flush();
  instances[3].serverClose(1006);
  assert.deepEqual(clock.delays(), [500], 'a successful open resets the backoff');
});

test('close code 4401 refreshes the token before reconnecting', async () => {
  const { socket, instances, api, clock } = setup();
  socket.start();
  await flush();
  instances[0].serverClose(4401);
  await flush();
  assert.deepEqual(api.calls, [['refresh']]);
  await clock.advance(500);
  assert.equal(instances.length, 2);
});

test('on reconnect every chat that moved is caught up with since=<known version>', async () => {
  const { socket, instances, clock, store, api, serverChats, log } = setup({ chats: [chat(10, 2), chat(11, 5)] });
  socket.start();
  await flush();
  instances[0].serverOpen();
  await flush();

  // While disconnected, chat 10 gets two messages and an edit; chat 11 does not change.
  instances[0].serverClose(1006);
  log[10] = [message(3, 10, 3), message(4, 10, 4), message(3, 10, 5, { content: 'edited', edited_at: '2024-01-02T00:00:00Z' })];
  serverChats[0].version = 5;
  serverChats[0].unread_count = 2;
  api.calls.length = 0;
  await clock.advance(500);
  instances[1].serverOpen();
  await flush();

  assert.deepEqual(api.calls.filter((c) => c[0] === 'since'), [['since', 10, 2]]);
  assert.deepEqual(store.messagesOf(10).map((m) => [m.id, m.content]), [[3, 'edited'], [4, 'm4']]);
  assert.equal(store.knownVersion(10), 5);
  assert.equal(store.getChat(10).unread_count, 2);
});

test('catch-up follows has_more until it has everything', async () => {
  const log = { 10: [1, 2, 3, 4, 5].map((n) => message(n, 10, n + 2)) };
  const { socket, store, api, serverChats } = setup({ log, pageSize: 2 });
  serverChats[0].version = 7;
  await socket.catchUp(10);
  assert.deepEqual(api.calls.map((c) => c[2]), [2, 4, 6]);
  assert.equal(store.messagesOf(10).length, 5);
  assert.equal(store.knownVersion(10), 7);
});

test('an event that skips a version triggers catch-up for the gap', async () => {
  const { socket, instances, store, api, log } = setup();
  socket.start();
  await flush();
  instances[0].serverOpen();
  await flush();
  api.calls.length = 0;

  instances[0].serverSend({ type: 'message.created', chat_id: 10, version: 3, message: message(3, 10, 3) });
  await flush();
  assert.equal(store.knownVersion(10), 3);
  assert.deepEqual(api.calls, [], 'in-order events need no catch-up');

  log[10] = [message(4, 10, 4), message(5, 10, 5)];
  instances[0].serverSend({ type: 'message.created', chat_id: 10, version: 5, message: message(5, 10, 5) });
  await flush();
  assert.deepEqual(api.calls, [['since', 10, 3]]);
  assert.deepEqual(store.messagesOf(10).map((m) => m.id), [3, 4, 5]);
  assert.equal(store.knownVersion(10), 5);
});

test('messages written while offline are queued and sent on reconnect with the same client_id', async () => {
  const { socket, instances, clock, store, api } = setup();
  socket.start();
  await flush();
  instances[0].serverOpen();
  instances[0].serverClose(1006);
  api.offline = true;

  const entry = socket.sendMessage({ chat_id: 10, content: 'while offline' });
  await flush();
  assert.equal(store.pendingIn(10)[0].status, 'queued', 'REST failed too, so it waits');
  api.offline = false;
  await clock.advance(500);
  instances[1].serverOpen();
  await flush();

  assert.deepEqual(instances[1].sent.filter((f) => f.type === 'message.send'), [
    { type: 'message.send', chat_id: 10, content: 'while offline', client_id: entry.client_id },
  ]);
  assert.equal(store.pendingIn(10)[0].status, 'sent');

  const stored = message(3, 10, 3, { sender: ann, content: 'while offline', client_id: entry.client_id });
  instances[1].serverSend({ type: 'message.ack', client_id: entry.client_id, message: stored });
  instances[1].serverSend({ type: 'message.created', chat_id: 10, version: 3, message: stored });
  await flush();
  assert.equal(store.pendingIn(10).length, 0);
  assert.equal(store.messagesOf(10).length, 1, 'ack plus event is still one message');
});

test('a send that is never acknowledged falls back to REST with the same client_id', async () => {
  const { socket, instances, clock, store, api } = setup();
  socket.start();
  await flush();
  instances[0].serverOpen();
  await flush();
  const entry = socket.sendMessage({ chat_id: 10, content: 'hello?' });

  await clock.advance(8000);

  assert.deepEqual(api.calls.filter((c) => c[0] === 'post'), [['post', 10, entry.client_id]]);
  assert.equal(store.pendingIn(10).length, 0);
  assert.equal(store.messagesOf(10).length, 1);
});

test('with the socket down but REST up, a message goes out over REST at once', async () => {
  const { socket, store, api } = setup();
  const entry = socket.sendMessage({ chat_id: 10, content: 'socket is down' });
  await flush();
  assert.deepEqual(api.calls, [['post', 10, entry.client_id]]);
  assert.equal(store.pendingIn(10).length, 0);
  assert.equal(store.messagesOf(10)[0].client_id, entry.client_id);
});

test('a reply goes out with reply_to_id on the socket, and over REST when no ack comes', async () => {
  const { socket, instances, clock, store, api } = setup();
  const posted = [];
  const original = api.sendMessage.bind(api);
  api.sendMessage = (chatId, entry) => {
    posted.push(entry.reply_to_id);
    return original(chatId, entry);
  };
  socket.start();
  await flush();
  instances[0].serverOpen();
  await flush();
  const quoted = { id: 7, sender: bob, content: 'the question', attachment: null, deleted: false };
  const entry = socket.sendMessage({ chat_id: 10, content: 'the answer', reply_to: quoted });

  assert.deepEqual(instances[0].sent.filter((f) => f.type === 'message.send'), [
    { type: 'message.send', chat_id: 10, content: 'the answer', client_id: entry.client_id, reply_to_id: 7 },
  ]);
  assert.deepEqual(store.pendingIn(10)[0].reply_to, quoted, 'the pending bubble can show the quote');
  await clock.advance(8000);
  assert.deepEqual(posted, [7]);
});

test('a reaction arriving as message.updated replaces the message whole, and an older copy never wins', async () => {
  const { socket, instances, store } = setup({ chats: [chat(10, 1)] });
  socket.start();
  await flush();
  instances[0].serverOpen();
  await flush();
  instances[0].serverSend({ type: 'message.created', chat_id: 10, version: 2, message: message(5, 10, 2) });
  const reacted = message(5, 10, 3, { reactions: [{ emoji: '👍', count: 1, user_ids: [1] }], pinned: true });
  instances[0].serverSend({ type: 'message.updated', chat_id: 10, version: 3, message: reacted });
  instances[0].serverSend({ type: 'message.created', chat_id: 10, version: 2, message: message(5, 10, 2) });
  await flush();
  const shown = store.messageById(10, 5);
  assert.deepEqual(shown.reactions, [{ emoji: '👍', count: 1, user_ids: [1] }]);
  assert.equal(shown.pinned, true);
  assert.equal(store.knownVersion(10), 3);
});

test('an error frame naming a client_id marks that send failed', async () => {
  const { socket, instances, store } = setup();
  socket.start();
  await flush();
  instances[0].serverOpen();
  const entry = socket.sendMessage({ chat_id: 10, content: 'x'.repeat(5000) });
  instances[0].serverSend({ type: 'error', code: 'invalid', detail: 'Too long.', client_id: entry.client_id });
  assert.equal(store.pendingIn(10)[0].status, 'failed');
  assert.equal(store.pendingIn(10)[0].error, 'Too long.');
});

test('being removed from a chat drops it from the store', async () => {
  const { socket, instances, store } = setup();
  socket.start();
  await flush();
  instances[0].serverOpen();
  instances[0].serverSend({ type: 'member.removed', chat_id: 10, user_id: ann.id });
  assert.equal(store.getChat(10), null);
});

test('stop closes the socket and cancels reconnects', async () => {
  const { socket, instances, clock } = setup();
  socket.start();
  await flush();
  instances[0].serverOpen();
  socket.stop();
  await clock.advance(60_000);
  assert.equal(instances.length, 1);
  assert.equal(instances[0].readyState, 3);
});

test('a catch-up the server cannot answer is retried while the socket stays open', async () => {
  const { socket, instances, clock, store, api, serverChats, log } = setup();
  let failures = 1;
  const original = api.chats;
  api.chats = async () => {
    if (failures > 0) {
      failures -= 1;
      throw Object.assign(new Error('Service unavailable'), { status: 503 });
    }
    return original.call(api);
  };
  log[10] = [message(3, 10, 3)];
  serverChats[0].version = 3;
  socket.start();
  await flush();
  instances[0].serverOpen();
  await flush();
  assert.equal(store.messagesOf(10).length, 0);

  await clock.advance(2000);

  assert.deepEqual(store.messagesOf(10).map((m) => m.id), [3]);
});

test('membership deltas are applied to the chat without fetching it again', async () => {
  const { socket, instances, store, api } = setup();
  socket.start();
  await flush();
  instances[0].serverOpen();
  await flush();
  const before = api.calls.filter(([kind]) => kind === 'chat').length;
  const cleo = { id: 3, username: 'cleo', display_name: 'Cleo' };
  instances[0].serverSend({ type: 'member.added', chat_id: 10, user_id: 3, member: { user: cleo, role: 'member' } });
  assert.deepEqual(store.getChat(10).members.map((m) => [m.user.id, m.role]), [[1, 'member'], [2, 'member'], [3, 'member']]);
  instances[0].serverSend({ type: 'member.updated', chat_id: 10, user_id: 3, role: 'admin' });
  assert.equal(store.getChat(10).members.find((m) => m.user.id === 3).role, 'admin');
  instances[0].serverSend({ type: 'member.removed', chat_id: 10, user_id: 2 });
  assert.deepEqual(store.getChat(10).members.map((m) => m.user.id).sort(), [1, 3]);
  assert.equal(api.calls.filter(([kind]) => kind === 'chat').length, before);
});

test('a rename is merged into the chat and keeps its members', async () => {
  const { socket, instances, store } = setup();
  socket.start();
  await flush();
  instances[0].serverOpen();
  instances[0].serverSend({ type: 'chat.updated', chat: { id: 10, is_group: true, title: 'Renamed' } });
  assert.equal(store.getChat(10).title, 'Renamed');
  assert.equal(store.getChat(10).members.length, 2);
});

test('a resync naming chats catches up each of them with since=<known version>', async () => {
  const { socket, instances, store, api, log } = setup({ chats: [chat(10, 2), chat(11, 5), chat(12, 1)] });
  socket.start();
  await flush();
  instances[0].serverOpen();
  await flush();
  api.calls.length = 0;
  log[10] = [message(3, 10, 3)];
  log[11] = [message(6, 11, 6), message(7, 11, 7)];

  instances[0].serverSend({ type: 'resync', chat_ids: [10, 11] });
  await flush();

  assert.deepEqual(api.calls, [['since', 10, 2], ['since', 11, 5]], 'only the chats it names');
  assert.deepEqual(store.messagesOf(11).map((m) => m.id), [6, 7]);
  assert.equal(store.knownVersion(10), 3);
  assert.equal(store.knownVersion(11), 7);
});

test('a resync without chat_ids takes the chat list and catches up every chat that moved', async () => {
  const { socket, instances, store, api, log, serverChats } = setup({ chats: [chat(10, 2), chat(11, 5)] });
  socket.start();
  await flush();
  instances[0].serverOpen();
  await flush();
  api.calls.length = 0;
  log[11] = [message(6, 11, 6)];
  serverChats[1].version = 6;
  serverChats.push(chat(12, 0)); // created while events were lost

  instances[0].serverSend({ type: 'resync' });
  await flush();

  assert.deepEqual(api.calls, [['chats'], ['since', 11, 5]]);
  assert.equal(store.knownVersion(11), 6);
  assert.ok(store.getChat(12), 'the chat list is taken too');
  assert.equal(instances.length, 1, 'the socket stays open');
});

test('a catch-up a resync asked for is tried again if the server cannot answer', async () => {
  const { socket, instances, store, api, log, clock } = setup();
  socket.start();
  await flush();
  instances[0].serverOpen();
  await flush();
  const real = api.changesSince;
  let failures = 1;
  api.changesSince = async (...args) => {
    if (failures-- > 0) throw Object.assign(new Error('503'), { status: 503 });
    return real.apply(api, args);
  };
  log[10] = [message(3, 10, 3)];

  instances[0].serverSend({ type: 'resync', chat_ids: [10] });
  await flush();
  assert.equal(store.knownVersion(10), 2);
  await clock.advance(2000);

  assert.equal(store.knownVersion(10), 3);
});

test('close code 1001 (the server restarts) reconnects after a short random delay, then catches up', async () => {
  const { socket, instances, clock, api } = setup();
  socket.start();
  await flush();
  instances[0].serverOpen();
  await flush();
  api.calls.length = 0;

  instances[0].serverClose(1001);
  assert.deepEqual(clock.delays(), [2250], 'at most 0.25 + 2 s (random() = 1 here)');
  await clock.advance(2250);
  instances[1].serverOpen();
  await flush();

  assert.deepEqual(api.calls.map((c) => c[0]), ['chats'], 'caught up after the reconnect');
});

test('close code 4503 retries with growing delays though each socket was accepted first', async () => {
  const { socket, instances, clock } = setup();
  socket.start();
  await flush();
  const delays = [];
  for (let i = 0; i < 3; i += 1) {
    instances[i].serverOpen();
    instances[i].serverClose(4503);
    delays.push(...clock.delays());
    await clock.advance(clock.delays()[0]);
  }
  assert.deepEqual(delays, [2000, 4000, 8000]);
  instances[3].serverOpen();
  instances[3].serverSend({ type: 'pong' });
  instances[3].serverClose(4503);
  assert.deepEqual(clock.delays(), [2000], 'a socket that got a frame resets the count');
});

/** setup() with an API that announces new access tokens, as the real one does after each refresh. */
function setupWithTokens({ current: initial = null } = {}) {
  const listeners = new Set();
  let current = initial;
  const parts = setup({
    extendApi: (api) => {
      api.onAccessToken = (listener) => {
        listeners.add(listener);
        return () => listeners.delete(listener);
      };
      api.currentAccessToken = () => current;
    },
  });
  parts.newToken = (token) => {
    current = token;
    for (const listener of listeners) listener(token);
  };
  parts.listeners = listeners;
  return parts;
}

const authFrames = (ws) => ws.sent.filter((frame) => frame.type === 'auth');

test('after each refresh the open socket renews its session with auth', async () => {
  const { socket, instances, newToken } = setupWithTokens();
  socket.start();
  await flush();
  instances[0].serverOpen();

  newToken('fresh1');
  newToken('fresh1');
  newToken('fresh2');

  assert.deepEqual(authFrames(instances[0]), [{ type: 'auth', token: 'fresh1' }, { type: 'auth', token: 'fresh2' }]);
});

test('a token refreshed while the socket was opening is sent as soon as it opens', async () => {
  const { socket, instances, newToken } = setupWithTokens();
  socket.start();
  await flush();
  newToken('fresh'); // the socket is still connecting with token1

  instances[0].serverOpen();

  assert.deepEqual(authFrames(instances[0]), [{ type: 'auth', token: 'fresh' }]);
});

test('a socket that opened with the newest token sends no auth', async () => {
  const { socket, instances } = setupWithTokens({ current: 'token1' });
  socket.start();
  await flush();

  instances[0].serverOpen();

  assert.deepEqual(authFrames(instances[0]), []);
});

test('auth.ok is taken quietly and the socket stays online', async () => {
  const { socket, instances, newToken, store } = setupWithTokens();
  socket.start();
  await flush();
  instances[0].serverOpen();
  newToken('fresh');

  instances[0].serverSend({ type: 'auth.ok', expires_at: '2026-12-01T23:40:00Z' });

  assert.equal(store.state.connection, 'online');
});

test('with the socket closed no auth is written, and dispose stops listening', async () => {
  const { socket, instances, newToken, listeners } = setupWithTokens();
  socket.start();
  await flush();
  newToken('while-connecting');
  instances[0].serverClose(1006);

  newToken('while-down');
  socket.dispose();

  assert.deepEqual(instances[0].sent, []);
  assert.equal(listeners.size, 0);
});

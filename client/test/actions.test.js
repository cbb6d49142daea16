import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createApi } from '../renderer/js/api.js';
import { createStore } from '../renderer/js/store.js';
import { createActions } from '../renderer/js/actions.js';
import { memoryStorage, jwt, jsonResponse, fakeFetch, fakeTimers } from './fakes.js';

const ann = { id: 1, username: 'ann', display_name: 'Ann' };
const bob = { id: 2, username: 'bob', display_name: 'Bob' };

function message(id, overrides = {}) {
  return {
    id, chat_id: 10, sender: bob, content: `m${id}`, attachment: null, is_read: false, client_id: null,
    created_at: '2024-01-01T00:00:00Z', edited_at: null, deleted: false, version: id, reactions: [], pinned: false,
    ...overrides,
  };
}

async function setup(routes) {
  const clock = fakeTimers();
  const { fetch, calls } = fakeFetch({
    'POST /api/auth/login': () => jsonResponse(200, { user: ann, access: jwt(Math.floor(clock.now() / 1000) + 300), refresh: 'r' }),
    ...routes,
  });
  const api = createApi({
    baseUrl: 'http://server.test', fetch, storage: memoryStorage(), now: clock.now,
    setTimer: clock.timers.setTimeout, clearTimer: clock.timers.clearTimeout,
  });
  await api.login({ username: 'ann', password: 'pw' });
  calls.length = 0;
  const store = createStore();
  store.setUser(ann);
  store.upsertChat({
    id: 10, is_group: true, title: 'G', version: 5, unread_count: 0, last_read_id: 0, my_role: 'member',
    created_at: '2024-01-01T00:00:00Z', last_message: null, members: [{ user: ann, role: 'member' }, { user: bob, role: 'owner' }],
  });
  return { api, store, calls, actions: createActions({ api, store }) };
}

const THUMBS = encodeURIComponent('👍');

test('a reaction I have not made is PUT with the emoji URL-encoded, and the answer shows at once', async () => {
  const { store, calls, actions } = await setup({
    [`PUT /api/chats/10/messages/5/reactions/${THUMBS}`]: () =>
      jsonResponse(200, message(5, { version: 6, reactions: [{ emoji: '👍', count: 1, user_ids: [1] }] })),
  });
  store.addHistory(10, [message(5)], false);

  await actions.toggleReaction(store.messageById(10, 5), '👍');

  assert.deepEqual(calls.map((c) => `${c.method} ${c.path}`), [`PUT /api/chats/10/messages/5/reactions/${THUMBS}`]);
  assert.deepEqual(store.messageById(10, 5).reactions, [{ emoji: '👍', count: 1, user_ids: [1] }]);
});

test('a reaction of mine is taken back with DELETE', async () => {
  const { store, calls, actions } = await setup({
    [`DELETE /api/chats/10/messages/5/reactions/${THUMBS}`]: () => jsonResponse(200, message(5, { version: 7 })),
  });
  store.addHistory(10, [message(5, { version: 6, reactions: [{ emoji: '👍', count: 2, user_ids: [2, 1] }] })], false);

  await actions.toggleReaction(store.messageById(10, 5), '👍');

  assert.equal(calls[0].method, 'DELETE');
  assert.deepEqual(store.messageById(10, 5).reactions, []);
});

test('forwarding posts forward_of_id to the other chat with a client_id, and no content of its own', async () => {
  const { calls, actions, store } = await setup({
    'POST /api/chats/11/messages': ({ body }) => jsonResponse(201, message(40, {
      chat_id: 11, sender: ann, content: 'm5', forwarded_from: { sender: bob, created_at: '2024-01-01T00:00:00Z' }, client_id: body.client_id,
    })),
  });
  store.upsertChat({ id: 11, is_group: false, version: 0, members: [], created_at: '2024-01-01T00:00:00Z', last_message: null });

  await actions.forward(message(5), 11);

  assert.equal(calls[0].body.forward_of_id, 5);
  assert.equal(calls[0].body.content, undefined);
  assert.match(calls[0].body.client_id, /^c-/);
  assert.equal(store.messageById(11, 40).forwarded_from.sender.id, 2);
});

test('muting patches the chat and the answer lands in the store', async () => {
  const { calls, actions, store } = await setup({
    'PATCH /api/chats/10': ({ body }) => jsonResponse(200, { id: 10, is_group: true, title: 'G', muted: body.muted, version: 5 }),
  });
  await actions.setMuted(10, true);
  assert.deepEqual(calls[0].body, { muted: true });
  assert.equal(store.getChat(10).muted, true);
});

test('jumping to an old message loads older pages from the oldest loaded one until it is there', async () => {
  const all = Array.from({ length: 250 }, (_, i) => message(i + 1));
  const { calls, actions, store } = await setup({
    'GET /api/chats/10/messages': ({ search }) => {
      const params = new URLSearchParams(search);
      const before = Number(params.get('before') || Infinity);
      const limit = Number(params.get('limit'));
      const older = all.filter((m) => m.id < before).reverse();
      return jsonResponse(200, { results: older.slice(0, limit), has_more: older.length > limit });
    },
  });

  assert.equal(await actions.loadUntil(10, 30), true);
  assert.ok(store.messageById(10, 30));
  assert.deepEqual(calls.map((c) => new URLSearchParams(c.search).get('before')), [null, '151', '51']);
  // one unbroken run: nothing missing between the oldest loaded and the newest
  const ids = store.messagesOf(10).map((m) => m.id);
  assert.equal(ids.length, 250);

  assert.equal(await actions.loadUntil(10, 9999), false, 'a message not in the chat ends the search');
});

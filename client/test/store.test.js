import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createStore } from '../renderer/js/store.js';
import { memoryStorage } from './fakes.js';

const ann = { id: 1, username: 'ann', display_name: 'Ann' };
const bob = { id: 2, username: 'bob', display_name: 'Bob' };

function chat(overrides = {}) {
  return {
    id: 10, is_group: false, title: null, version: 3, unread_count: 0, last_read_id: 0,
    created_at: '2024-01-01T00:00:00Z', last_message: null,
    members: [{ user: ann, role: 'member' }, { user: bob, role: 'member' }],
    ...overrides,
  };
}

function message(id, overrides = {}) {
  return {
    id, chat_id: 10, sender: bob, content: `m${id}`, attachment: null, attachment_url: null, is_read: false,
    client_id: null, created_at: `2024-01-01T00:00:${String(id).padStart(2, '0')}Z`, edited_at: null, deleted: false,
    version: id, ...overrides,
  };
}

function signedIn(storage = memoryStorage()) {
  const store = createStore({ storage });
  store.setUser(ann);
  store.upsertChat(chat());
  return store;
}

test('a queued message shows as pending until acknowledged, then appears once', () => {
  const store = signedIn();
  const entry = store.enqueue({ chat_id: 10, content: 'hello' });
  assert.equal(store.pendingIn(10).length, 1);
  assert.equal(store.outbox().length, 1);

  store.applyAck({ client_id: entry.client_id, message: message(4, { sender: ann, content: 'hello', client_id: entry.client_id }) });

  assert.equal(store.pendingIn(10).length, 0);
  assert.deepEqual(store.messagesOf(10).map((m) => m.content), ['hello']);
});

test('ack and message.created for the same send give one message, in either order', () => {
  for (const order of [['ack', 'created'], ['created', 'ack']]) {
    const store = signedIn();
    const entry = store.enqueue({ chat_id: 10, content: 'hi' });
    const stored = message(4, { sender: ann, content: 'hi', client_id: entry.client_id });
    for (const step of order) {
      if (step === 'ack') store.applyAck({ client_id: entry.client_id, message: stored });
      else store.applyMessage(stored);
    }
    assert.equal(store.messagesOf(10).length, 1, order.join(' then '));
    assert.equal(store.pendingIn(10).length, 0);
    assert.equal(store.getChat(10).unread_count, 0, 'my own message is never unread');
  }
});

test('the same event delivered twice counts once toward unread', () => {
  const store = signedIn();
  store.applyMessage(message(4));
  store.applyMessage(message(4));
  store.applyMessage(message(5));
  assert.equal(store.getChat(10).unread_count, 2);
  assert.equal(store.messagesOf(10).length, 2);
});

test('an older copy of a message never overwrites a newer edit', () => {
  const store = signedIn();
  store.applyMessage(message(4, { content: 'edited', edited_at: '2024-01-02T00:00:00Z', version: 6 }));
  store.addHistory(10, [message(4, { content: 'original', version: 4 })], false);
  assert.equal(store.messagesOf(10)[0].content, 'edited');
});

test('a deletion blanks the message but keeps its place', () => {
  const store = signedIn();
  store.applyMessage(message(4));
  store.applyDeleted({ chat_id: 10, message_id: 4, version: 5 });
  const [deleted] = store.messagesOf(10);
  assert.equal(deleted.deleted, true);
  assert.equal(deleted.content, '');
  assert.equal(store.getChat(10).last_message.deleted, true);
});

test('pending sends survive a reload through storage and are sent again', () => {
  const storage = memoryStorage();
  const first = signedIn(storage);
  const entry = first.enqueue({ chat_id: 10, content: 'offline' });
  first.markPending(entry.client_id, 'sent');

  const second = signedIn(storage);

  assert.deepEqual(second.outbox().map((p) => [p.client_id, p.status]), [[entry.client_id, 'queued']]);
});

test('a failed send leaves the outbox but stays visible', () => {
  const store = signedIn();
  const entry = store.enqueue({ chat_id: 10, content: 'x' });
  store.markPending(entry.client_id, 'failed', 'rate_limited');
  assert.equal(store.outbox().length, 0);
  assert.equal(store.pendingIn(10)[0].error, 'rate_limited');
});

test('someone else reading marks my messages read; my own read clears the badge', () => {
  const store = signedIn();
  store.applyMessage(message(4, { sender: ann }));
  store.applyMessage(message(5));
  assert.equal(store.getChat(10).unread_count, 1);

  store.applyRead({ chat_id: 10, user_id: bob.id, last_read_id: 4 });
  store.applyRead({ chat_id: 10, user_id: ann.id, last_read_id: 5 });

  assert.equal(store.messagesOf(10)[0].is_read, true);
  assert.equal(store.getChat(10).unread_count, 0);
  assert.equal(store.unreadTotal(), 0);
});

test('chats are ordered by latest activity and a stale list cannot roll back the last message', () => {
  const store = signedIn();
  store.upsertChat(chat({ id: 11, created_at: '2024-01-01T00:00:30Z', members: [] }));
  assert.deepEqual(store.chatList().map((c) => c.id), [11, 10]);

  store.applyMessage(message(40, { created_at: '2024-01-01T00:01:00Z' }));
  assert.deepEqual(store.chatList().map((c) => c.id), [10, 11]);

  store.upsertChat(chat({ last_message: message(3) }));
  assert.equal(store.getChat(10).last_message.id, 40);
});

test('known versions only move forward', () => {
  const store = signedIn();
  assert.equal(store.knownVersion(10), 3);
  store.advanceVersion(10, 7);
  store.advanceVersion(10, 5);
  store.upsertChat(chat({ version: 9 }));
  assert.equal(store.knownVersion(10), 7, 'a fresh chat list does not skip the catch-up');
});

test('typing notices expire and end when the typist sends a message', () => {
  let time = 0;
  const store = createStore({ now: () => time });
  store.setUser(ann);
  store.upsertChat(chat());
  store.applyTyping({ chat_id: 10, user: bob });
  assert.deepEqual(store.typingIn(10).map((u) => u.id), [2]);
  store.applyMessage(message(4));
  assert.deepEqual(store.typingIn(10), []);
  store.applyTyping({ chat_id: 10, user: bob });
  time = 10_000;
  assert.deepEqual(store.typingIn(10), []);
});

test('subscribers hear one batched notification per burst of changes', async () => {
  const store = signedIn();
  const heard = [];
  store.subscribe((topics) => heard.push([...topics].sort()));
  store.applyMessage(message(4));
  store.applyPresence({ user_id: 2, is_online: true, last_seen: null });
  await Promise.resolve();
  assert.equal(heard.length, 1);
  assert.ok(heard[0].includes('messages:10') && heard[0].includes('presence'));
});

test('a system line from someone else never counts as unread', () => {
  const store = signedIn();
  store.applyMessage(message(4, { kind: 'system', system: { action: 'chat.renamed', actor_id: 2, title: 'X' } }));
  assert.equal(store.getChat(10).unread_count, 0);
  store.applyMessage(message(5));
  assert.equal(store.getChat(10).unread_count, 1);
});

test('a muted chat keeps its unread count but leaves the total', () => {
  const store = signedIn();
  store.upsertChat(chat({ id: 11, unread_count: 4, muted: true }));
  store.upsertChat(chat({ id: 12, unread_count: 2, muted: false }));
  assert.equal(store.getChat(11).unread_count, 4);
  assert.equal(store.unreadTotal(), 2);
});

test('a reply waits in the outbox with the id of the message it answers', () => {
  const store = signedIn(memoryStorage());
  const entry = store.enqueue({ chat_id: 10, content: 'yes', reply_to: { id: 3, content: 'really?' } });
  assert.equal(entry.reply_to_id, 3);
  assert.equal(store.outbox()[0].reply_to.content, 'really?');
});

test('a change to a message older than the loaded history is left for its page, so no hole opens', () => {
  const store = signedIn();
  store.addHistory(10, [message(60), message(59), message(58)], true);
  store.applyMessage(message(12, { version: 70, reactions: [{ emoji: '👍', count: 1, user_ids: [2] }] }));
  assert.deepEqual(store.messagesOf(10).map((m) => m.id), [58, 59, 60]);
  assert.equal(store.oldestMessageId(10), 58, 'the next page is still asked for before 58');

  // Its page brings it later, as it is by then.
  store.addHistory(10, [message(57), message(12, { version: 70 })], false);
  assert.ok(store.messagesOf(10).some((m) => m.id === 12));
});

test('with all history loaded, a change to any message is applied', () => {
  const store = signedIn();
  store.addHistory(10, [message(3), message(2)], false);
  store.applyMessage(message(2, { version: 9, pinned: true }));
  assert.equal(store.messagesOf(10).find((m) => m.id === 2).pinned, true);
});

test('before any history is loaded, a change to an old message waits while a new message shows', () => {
  const store = signedIn();
  store.upsertChat(chat({ last_message: message(40) }));
  store.applyMessage(message(5, { version: 50 }));
  store.applyMessage(message(41, { version: 51 }));
  assert.deepEqual(store.messagesOf(10).map((m) => m.id), [40, 41]);
});

test('a profile change reaches every copy of the user the store holds, and only theirs', async () => {
  const store = signedIn();
  store.upsertChat(chat({ id: 11, is_group: true, title: 'G', members: [{ user: ann, role: 'owner' }, { user: bob, role: 'member' }] }));
  store.addHistory(10, [
    message(2, { sender: ann, content: 'mine' }),
    message(1, { reply_to: { id: 9, sender: bob, content: 'q', attachment: null, deleted: false },
      forwarded_from: { sender: bob, created_at: '2024-01-01T00:00:00Z' } }),
  ], false);
  const untouched = store.messageById(10, 2);
  await Promise.resolve(); // the setup's own notification goes first
  const topics = [];
  store.subscribe((touched) => topics.push(...touched));

  store.applyUser({ id: 2, username: 'bob', display_name: 'Robert', avatar_url: '/api/avatars/abc', is_online: true, last_seen: null });
  await Promise.resolve();

  assert.equal(store.userById(2).display_name, 'Robert');
  for (const id of [10, 11]) {
    const member = store.getChat(id).members.find((m) => m.user.id === 2);
    assert.deepEqual([member.user.display_name, member.user.avatar_url, member.role], ['Robert', '/api/avatars/abc', 'member']);
  }
  const quoted = store.messageById(10, 1);
  assert.equal(quoted.sender.display_name, 'Robert');
  assert.equal(quoted.reply_to.sender.display_name, 'Robert');
  assert.equal(quoted.forwarded_from.sender.avatar_url, '/api/avatars/abc');
  assert.equal(store.getChat(10).last_message.sender.display_name, 'Ann'); // Ann's message, not Bob's
  assert.equal(store.messageById(10, 2), untouched);
  assert.equal(store.state.user.display_name, 'Ann');
  assert.ok(topics.includes('chats') && topics.includes('messages:10') && !topics.includes('user'));
});

test('our own profile change, from another tab or the settings, updates "me" and our bubbles', async () => {
  const store = signedIn();
  store.addHistory(10, [message(1, { sender: ann })], false);

  store.applyUser({ id: 1, username: 'ann', display_name: 'Annie', avatar_url: null, is_online: true, last_seen: null });
  assert.equal(store.state.user.display_name, 'Annie');
  assert.equal(store.messageById(10, 1).sender.display_name, 'Annie');

  store.setUser({ ...store.state.user, display_name: 'Ann B.', email: 'ann@example.com' });
  assert.equal(store.getChat(10).members.find((m) => m.user.id === 1).user.display_name, 'Ann B.');
  assert.equal(store.messageById(10, 1).sender.display_name, 'Ann B.');
  assert.equal(store.getChat(10).members.find((m) => m.user.id === 1).user.email, undefined); // public fields only
});

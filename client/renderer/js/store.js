// The client's state: who is signed in, their chats, the messages loaded per chat, and the sends
// that the server has not confirmed yet. Network modules feed it; views read from it and re-render
// when it announces a change. Nothing here touches the DOM or the network, so it runs in Node tests.

const PENDING_KEY_PREFIX = 'messenger.pending.';
const TYPING_TTL_MS = 6000;

/** A random id the server uses to recognise a repeated send (see `client_id` in docs/API.md). */
export function newClientId(random = Math.random, now = Date.now) {
  const bytes = Array.from({ length: 12 }, () => Math.floor(random() * 36).toString(36)).join('');
  return `c-${now().toString(36)}-${bytes}`;
}

function byIdAscending(a, b) {
  return a.id - b.id;
}

/** The moment a chat last saw activity, for ordering the sidebar (most recent first). */
export function chatActivityTime(chat) {
  return chat.last_message ? chat.last_message.created_at : chat.created_at;
}

// Bidi embeddings, overrides and isolates (U+202A–202E, U+2066–2069): a name carrying them could
// reorder the text shown after it ("Remove <U+202E>nimda from the group?"). Removed from every
// user-provided name shown; the server refuses them in display names besides.
const BIDI_CONTROLS = /[\u202A-\u202E\u2066-\u2069]/g;

export function withoutBidiControls(text) {
  return String(text ?? '').replace(BIDI_CONTROLS, '');
}

export function displayName(user) {
  if (!user) return '';
  return withoutBidiControls(user.display_name || user.username);
}

/** A name inside running text: isolated (FSI … PDI), so a right-to-left name keeps the words around it in order. */
export function isolated(name) {
  return `\u2068${withoutBidiControls(name)}\u2069`;
}

// What `user.updated` changes of a user wherever the store holds a copy of them (presence has its own event).
const PROFILE_FIELDS = ['username', 'display_name', 'avatar_url'];

function profileOf(user) {
  return Object.fromEntries(PROFILE_FIELDS.filter((key) => key in user).map((key) => [key, user[key]]));
}

function withProfile(copy, id, profile) {
  return copy && copy.id === id ? { ...copy, ...profile } : copy;
}

/**
 * A message with every copy of user `id` in it (sender, the quoted sender, the forward's author) given
 * `profile`; the same object when none is theirs, so nothing re-renders for nothing.
 */
export function messageWithProfile(message, id, profile) {
  if (!message) return message;
  const changes = {};
  if (message.sender && message.sender.id === id) changes.sender = withProfile(message.sender, id, profile);
  if (message.reply_to && message.reply_to.sender && message.reply_to.sender.id === id) {
    changes.reply_to = { ...message.reply_to, sender: withProfile(message.reply_to.sender, id, profile) };
  }
  const forwarded = message.forwarded_from;
  if (forwarded && forwarded.sender && forwarded.sender.id === id) {
    changes.forwarded_from = { ...forwarded, sender: withProfile(forwarded.sender, id, profile) };
  }
  return Object.keys(changes).length ? { ...message, ...changes } : message;
}

export function createStore({ storage = null, now = Date.now } = {}) {
  const listeners = new Set();
  const state = {
    user: null,
    connection: 'offline', // 'offline' | 'connecting' | 'online'
    chats: new Map(), // id -> Chat
    // id -> { byId: Map<id, Message>, hasMoreBefore: boolean, loaded: boolean }
    messages: new Map(),
    versions: new Map(), // chat id -> highest chat version this client has caught up to
    pending: [], // { client_id, chat_id, content, attachment, attachment_id, created_at, status, error }
    typing: new Map(), // chat id -> Map<user id, { user, until }>
    users: new Map(), // user id -> PublicUser (latest presence)
    profiles: 0, // bumped by every profile change (applyUser): what names users by id re-renders
    activeChatId: null,
  };

  // Notify subscribers once per synchronous burst of changes with the set of topics touched.
  let queuedTopics = null;
  function emit(...topics) {
    if (queuedTopics) {
      topics.forEach((t) => queuedTopics.add(t));
      return;
    }
    queuedTopics = new Set(topics);
    queueMicrotask(() => {
      const touched = queuedTopics;
      queuedTopics = null;
      for (const listener of listeners) listener(touched);
    });
  }

  function subscribe(listener) {
    listeners.add(listener);
    return () => listeners.delete(listener);
  }

  // ---- users and presence -------------------------------------------------------------------

  // A presence event is newer than a user embedded in an older payload, so a known user is kept.
  function rememberUser(user) {
    if (user && user.id != null && !state.users.has(user.id)) state.users.set(user.id, { ...user });
  }

  function userById(id) {
    return state.users.get(id) || null;
  }

  function applyPresence({ user_id, is_online, last_seen }) {
    const known = state.users.get(user_id);
    if (known) state.users.set(user_id, { ...known, is_online, last_seen });
    else state.users.set(user_id, { id: user_id, is_online, last_seen });
    emit('presence', 'chats');
  }

  /**
   * A user's profile changed (`user.updated`, or our own change answered by the server): every copy of
   * them the store holds takes it — the users map, "me", chats' members and last messages, the messages
   * held (senders, quotes, forwards) — and the views re-render through their usual topics.
   */
  function applyUser(user) {
    if (!user || user.id == null) return;
    const id = user.id;
    const profile = profileOf(user);
    state.users.set(id, { ...state.users.get(id), ...user });
    state.profiles += 1;
    const touched = new Set(['presence', 'chats']);
    if (state.user && state.user.id === id) {
      state.user = { ...state.user, ...profile };
      touched.add('user');
    }
    for (const [chatId, chat] of state.chats) {
      const changes = {};
      if ((chat.members || []).some((m) => m.user.id === id)) {
        changes.members = chat.members.map((m) => (m.user.id === id ? { ...m, user: withProfile(m.user, id, profile) } : m));
        touched.add(`messages:${chatId}`); // its system lines may name them
      }
      const last = messageWithProfile(chat.last_message, id, profile);
      if (last !== chat.last_message) changes.last_message = last;
      if (Object.keys(changes).length) state.chats.set(chatId, { ...chat, ...changes });
    }
    for (const [chatId, entry] of state.messages) {
      for (const [messageId, message] of entry.byId) {
        const updated = messageWithProfile(message, id, profile);
        if (updated === message) continue;
        entry.byId.set(messageId, updated);
        touched.add(`messages:${chatId}`);
      }
    }
    emit(...touched);
  }

  // ---- session ------------------------------------------------------------------------------

  function setUser(user) {
    const sameUser = Boolean(state.user && user && state.user.id === user.id);
    state.user = user;
    // Our own change (settings): shown everywhere at once, before the server's `user.updated` repeats it.
    if (sameUser) applyUser(user);
    if (user) {
      state.users.set(user.id, { ...user, is_online: true });
      state.pending = loadPending();
    }
    emit('user', 'pending');
  }

  function reset() {
    state.user = null;
    state.chats.clear();
    state.messages.clear();
    state.versions.clear();
    state.pending = [];
    state.typing.clear();
    state.users.clear();
    state.activeChatId = null;
    state.connection = 'offline';
    emit('user', 'chats', 'messages', 'pending', 'typing', 'connection', 'active');
  }

  function setConnection(status) {
    if (state.connection === status) return;
    state.connection = status;
    emit('connection');
  }

  // ---- chats --------------------------------------------------------------------------------

  function upsertChat(chat) {
    for (const member of chat.members || []) {
      const known = state.users.get(member.user.id);
      if (!known) state.users.set(member.user.id, { ...member.user });
      else if (member.user.last_seen && (!known.last_seen || member.user.last_seen > known.last_seen)) {
        state.users.set(member.user.id, { ...known, ...member.user });
      }
    }
    const previous = state.chats.get(chat.id);
    const merged = { ...previous, ...chat };
    // Keep the newer of two last messages: a list fetched before a live event must not roll it back.
    if (previous && previous.last_message && chat.last_message && previous.last_message.id > chat.last_message.id) {
      merged.last_message = previous.last_message;
    }
    state.chats.set(chat.id, merged);
    if (!state.versions.has(chat.id)) state.versions.set(chat.id, chat.version || 0);
    if (chat.last_message) rememberMessage(chat.last_message, { countUnread: false });
    emit('chats');
    return merged;
  }

  /**
   * A membership change told by the server (member.added / member.updated / member.removed): applied to
   * the chat we have, without fetching it again. `member` is {user, role}; null removes `userId`.
   */
  function applyMember(chatId, userId, member) {
    const known = state.chats.get(chatId);
    if (!known) return null;
    const others = (known.members || []).filter((m) => m.user.id !== userId);
    const previous = (known.members || []).find((m) => m.user.id === userId);
    const members = member ? [...others, { ...previous, ...member, user: { ...(previous || {}).user, ...member.user } }] : others;
    const changes = { id: chatId, members };
    if (state.user && userId === state.user.id && member) changes.my_role = member.role;
    return upsertChat(changes);
  }

  function setChats(chats) {
    for (const chat of chats) upsertChat(chat);
    const ids = new Set(chats.map((c) => c.id));
    for (const id of [...state.chats.keys()]) if (!ids.has(id)) removeChat(id);
    emit('chats');
  }

  function removeChat(chatId) {
    state.chats.delete(chatId);
    state.messages.delete(chatId);
    state.versions.delete(chatId);
    state.typing.delete(chatId);
    if (state.activeChatId === chatId) {
      state.activeChatId = null;
      emit('active');
    }
    emit('chats', `messages:${chatId}`);
  }

  function chatList() {
    return [...state.chats.values()].sort((a, b) => {
      const ta = chatActivityTime(a) || '';
      const tb = chatActivityTime(b) || '';
      if (ta !== tb) return ta < tb ? 1 : -1;
      return b.id - a.id;
    });
  }

  function getChat(chatId) {
    return state.chats.get(chatId) || null;
  }

  /** The other person in a direct chat (or null in a group). */
  function peerOf(chat) {
    if (!chat || chat.is_group || !state.user) return null;
    const member = (chat.members || []).find((m) => m.user.id !== state.user.id);
    if (!member) return null;
    return state.users.get(member.user.id) || member.user;
  }

  function chatTitle(chat) {
    if (!chat) return '';
    if (chat.is_group) return withoutBidiControls(chat.title) || 'Group';
    const peer = peerOf(chat);
    return peer ? displayName(peer) : 'Saved messages';
  }

  function setActiveChat(chatId) {
    if (state.activeChatId === chatId) return;
    state.activeChatId = chatId;
    emit('active');
  }

  /** Unread messages over all chats, for the title and the tray; a muted chat does not count. */
  function unreadTotal() {
    let total = 0;
    for (const chat of state.chats.values()) if (!chat.muted) total += chat.unread_count || 0;
    return total;
  }

  /** A message loaded in its chat, or null. */
  function messageById(chatId, messageId) {
    return state.messages.get(chatId)?.byId.get(messageId) || null;
  }

  function knownVersion(chatId) {
    return state.versions.get(chatId) || 0;
  }

  /** Record that everything up to `version` in the chat has been seen (never moves backwards). */
  function advanceVersion(chatId, version) {
    if (version == null) return;
    if (version > knownVersion(chatId)) state.versions.set(chatId, version);
  }

  // ---- messages -----------------------------------------------------------------------------

  function bucket(chatId) {
    let entry = state.messages.get(chatId);
    if (!entry) {
      entry = { byId: new Map(), hasMoreBefore: true, loaded: false };
      state.messages.set(chatId, entry);
    }
    return entry;
  }

  /**
   * Put a message in its chat's bucket; a copy with a lower version never replaces a newer one,
   * which makes every path (REST page, catch-up, event, ack) safe to repeat in any order.
   * Returns true when the message was not known before.
   */
  function rememberMessage(message, { countUnread, fromHistory = false }) {
    const entry = bucket(message.chat_id);
    const known = entry.byId.get(message.id);
    if (known && (known.version || 0) >= (message.version || 0)) return false;
    if (!known && !fromHistory && beforeLoadedRun(entry, message)) return false;
    entry.byId.set(message.id, message);
    rememberUser(message.sender);
    if (message.client_id) dropPending(message.client_id);
    const chat = state.chats.get(message.chat_id);
    if (chat) {
      if (!chat.last_message || message.id >= chat.last_message.id) chat.last_message = message;
      const isNew = !known;
      const fromOther = state.user && message.sender && message.sender.id !== state.user.id;
      // A system line (a rename, a member added) never counts as unread.
      if (isNew && countUnread && fromOther && !message.deleted && message.kind !== 'system'
        && message.id > (chat.last_read_id || 0)) {
        chat.unread_count = (chat.unread_count || 0) + 1;
      }
      if (fromOther) clearTyping(message.chat_id, message.sender.id);
    }
    emit(`messages:${message.chat_id}`, 'chats');
    return !known;
  }

  /**
   * Whether a message lies before the run of history held for its chat, with older pages still to
   * load: a reaction, pin or edit on an old message arrives as `message.updated`, and keeping it
   * would leave a hole (the next page is asked for before the oldest message held). Its page brings
   * it, as it is then, when the reader scrolls up to it.
   */
  function beforeLoadedRun(entry, message) {
    if (!entry.hasMoreBefore) return false;
    let oldest = null;
    for (const id of entry.byId.keys()) if (oldest === null || id < oldest) oldest = id;
    if (oldest !== null) return message.id < oldest;
    const last = state.chats.get(message.chat_id)?.last_message;
    return Boolean(last) && message.id < last.id;
  }

  /** A message learned live (event, ack or catch-up): it counts toward unread when it is new. */
  function applyMessage(message) {
    return rememberMessage(message, { countUnread: true });
  }

  function applyDeleted({ chat_id, message_id, version }) {
    const entry = bucket(chat_id);
    const known = entry.byId.get(message_id);
    if (known && (known.version || 0) >= version) return;
    const base = known || { id: message_id, chat_id, sender: null, created_at: null, is_read: false };
    rememberMessage({ ...base, content: '', attachment: null, attachment_url: null, deleted: true, version },
      { countUnread: false });
    if (!known) entry.byId.delete(message_id); // never seen it: nothing to show in its place
    const chat = state.chats.get(chat_id);
    if (chat && chat.last_message && chat.last_message.id === message_id) {
      chat.last_message = { ...chat.last_message, content: '', attachment: null, deleted: true };
    }
    emit(`messages:${chat_id}`, 'chats');
  }

  /** A page of history (newest first, as `?before=` returns it). */
  function addHistory(chatId, messages, hasMore) {
    const entry = bucket(chatId);
    for (const message of messages) rememberMessage(message, { countUnread: false, fromHistory: true });
    entry.hasMoreBefore = hasMore;
    entry.loaded = true;
    emit(`messages:${chatId}`);
  }

  function messagesOf(chatId) {
    const entry = state.messages.get(chatId);
    if (!entry) return [];
    return [...entry.byId.values()].sort(byIdAscending);
  }

  function historyState(chatId) {
    const entry = state.messages.get(chatId);
    return entry ? { loaded: entry.loaded, hasMoreBefore: entry.hasMoreBefore } : { loaded: false, hasMoreBefore: true };
  }

  function oldestMessageId(chatId) {
    const list = messagesOf(chatId);
    return list.length ? list[0].id : null;
  }

  // ---- read state ---------------------------------------------------------------------------

  function applyRead({ chat_id, user_id, last_read_id, unread_count }) {
    const chat = state.chats.get(chat_id);
    if (!chat) return;
    if (state.user && user_id === state.user.id) {
      if (last_read_id >= (chat.last_read_id || 0)) chat.last_read_id = last_read_id;
      if (unread_count != null) chat.unread_count = unread_count;
      else chat.unread_count = countUnreadAfter(chat_id, chat.last_read_id);
      emit('chats');
      return;
    }
    // Someone else read up to last_read_id: my messages up to it now show as read.
    const entry = state.messages.get(chat_id);
    if (entry) {
      for (const [id, message] of entry.byId) {
        if (id <= last_read_id && !message.is_read && message.sender && message.sender.id === state.user?.id) {
          entry.byId.set(id, { ...message, is_read: true });
        }
      }
    }
    if (chat.last_message && chat.last_message.id <= last_read_id) {
      chat.last_message = { ...chat.last_message, is_read: true };
    }
    emit(`messages:${chat_id}`, 'chats');
  }

  function countUnreadAfter(chatId, lastReadId) {
    const chat = state.chats.get(chatId);
    if (chat && chat.last_message && chat.last_message.id <= lastReadId) return 0;
    return messagesOf(chatId).filter(
      (m) => m.id > lastReadId && !m.deleted && m.kind !== 'system' && m.sender && m.sender.id !== state.user?.id,
    ).length;
  }

  /** The newest message that would be marked read when the chat is looked at, or null. */
  function unreadMarker(chatId) {
    const chat = state.chats.get(chatId);
    if (!chat) return null;
    const last = messagesOf(chatId).at(-1) || chat.last_message;
    if (!last) return null;
    if (last.id <= (chat.last_read_id || 0) && !chat.unread_count) return null;
    return last.id;
  }

  // ---- typing -------------------------------------------------------------------------------

  function applyTyping({ chat_id, user }) {
    if (!user || (state.user && user.id === state.user.id)) return;
    let chatTyping = state.typing.get(chat_id);
    if (!chatTyping) {
      chatTyping = new Map();
      state.typing.set(chat_id, chatTyping);
    }
    chatTyping.set(user.id, { user, until: now() + TYPING_TTL_MS });
    emit('typing');
  }

  function clearTyping(chatId, userId) {
    const chatTyping = state.typing.get(chatId);
    if (chatTyping && chatTyping.delete(userId)) emit('typing');
  }

  function typingIn(chatId) {
    const chatTyping = state.typing.get(chatId);
    if (!chatTyping) return [];
    const t = now();
    for (const [id, entry] of chatTyping) if (entry.until <= t) chatTyping.delete(id);
    return [...chatTyping.values()].map((e) => e.user);
  }

  /** Forget typing notices that timed out; returns true when something changed. */
  function expireTyping() {
    const t = now();
    let changed = false;
    for (const chatTyping of state.typing.values()) {
      for (const [id, entry] of chatTyping) {
        if (entry.until <= t) {
          chatTyping.delete(id);
          changed = true;
        }
      }
    }
    if (changed) emit('typing');
    return changed;
  }

  // ---- pending sends ------------------------------------------------------------------------

  function pendingKey() {
    return state.user ? `${PENDING_KEY_PREFIX}${state.user.id}` : null;
  }

  function loadPending() {
    const key = pendingKey();
    if (!storage || !key) return [];
    try {
      const saved = JSON.parse(storage.getItem(key) || '[]');
      // Anything saved was in flight when the page went away: send it again on the next connect.
      return Array.isArray(saved) ? saved.map((p) => ({ ...p, status: p.status === 'failed' ? 'failed' : 'queued' })) : [];
    } catch {
      return [];
    }
  }

  function savePending() {
    const key = pendingKey();
    if (!storage || !key) return;
    if (state.pending.length) storage.setItem(key, JSON.stringify(state.pending));
    else storage.removeItem(key);
  }

  /** Queue a message; it shows as pending until the server acknowledges its client_id. */
  function enqueue({ chat_id, content, attachment = null, reply_to = null, client_id = newClientId() }) {
    const entry = {
      client_id,
      chat_id,
      content,
      attachment,
      attachment_id: attachment ? attachment.id : null,
      // the message answered: its `reply_to` summary, shown in the pending bubble; its id goes to the server
      reply_to,
      reply_to_id: reply_to ? reply_to.id : null,
      created_at: new Date(now()).toISOString(),
      status: 'queued', // 'queued' → 'sent' (frame written) or 'posting' (REST) → gone when acked; or 'failed'
      error: null,
    };
    state.pending.push(entry);
    savePending();
    emit('pending', `messages:${chat_id}`);
    return entry;
  }

  function markPending(clientId, status, error = null) {
    const entry = state.pending.find((p) => p.client_id === clientId);
    if (!entry) return;
    entry.status = status;
    entry.error = error;
    savePending();
    emit('pending', `messages:${entry.chat_id}`);
  }

  function dropPending(clientId) {
    const index = state.pending.findIndex((p) => p.client_id === clientId);
    if (index === -1) return null;
    const [entry] = state.pending.splice(index, 1);
    savePending();
    emit('pending', `messages:${entry.chat_id}`);
    return entry;
  }

  /** The server confirmed a send (`message.ack` or a REST 201/200): swap the pending entry for it. */
  function applyAck({ client_id, message }) {
    dropPending(client_id);
    if (message) applyMessage(message);
  }

  function pendingIn(chatId) {
    return state.pending.filter((p) => p.chat_id === chatId);
  }

  /** Sends that still need to go out (queued ones, and ones written but never acknowledged). */
  function outbox() {
    return state.pending.filter((p) => p.status !== 'failed');
  }

  return {
    state,
    subscribe,
    emit,
    setUser,
    reset,
    setConnection,
    upsertChat,
    applyMember,
    setChats,
    removeChat,
    chatList,
    getChat,
    peerOf,
    chatTitle,
    setActiveChat,
    unreadTotal,
    knownVersion,
    advanceVersion,
    applyMessage,
    applyDeleted,
    addHistory,
    messagesOf,
    messageById,
    historyState,
    oldestMessageId,
    applyRead,
    unreadMarker,
    applyTyping,
    typingIn,
    expireTyping,
    applyPresence,
    applyUser,
    userById,
    enqueue,
    markPending,
    dropPending,
    applyAck,
    pendingIn,
    outbox,
  };
}

// The sidebar: who I am, the connection state, search (chats by name, people to start a direct
// chat with, messages of my chats with the hits highlighted), the chat list with previews, times and
// unread badges (grey when muted), "new group", and the Mentions view (messages that name me).
import { h, avatar, replaceChildren, debounce, userName, highlighted } from '../dom.js';
import { displayName, isolated } from '../store.js';
import { shortStamp, preview } from '../format.js';
import { systemText, isSystem, hitExcerpt, quoteText } from '../conversation.js';
import { openNewGroup } from './newGroup.js';
import { openMediaFeed } from './gallery.js';
import { openSettings } from './settings.js';
import { icon } from '../icons.js';

const CONNECTION_TEXT = { online: '', connecting: 'Connecting…', offline: 'Offline' };
// The server matches substrings of 3 characters or more.
const MESSAGE_SEARCH_MIN = 3;

export function mountSidebar(layout, app) {
  const { store, api } = app;
  let query = '';
  let people = [];
  let searching = false;
  // Message search: the hits for `hits.query`, in the server's order (newest first).
  let hits = { query: '', results: [], hasMore: false, loading: false, error: '' };
  // The Mentions view replaces the chat list while open.
  let mentions = null; // { results, hasMore, loading, error }

  const status = h('p', { class: 'sidebar__status', role: 'status' });
  const meBox = h('div', { class: 'sidebar__me' });
  // An address given at registration (or a new one) waits for the code mailed to it.
  const confirmBox = h('div', { class: 'sidebar__confirm' });
  const search = h('input', {
    class: 'search', type: 'search', placeholder: 'Search chats, people and messages', 'aria-label': 'Search chats, people and messages',
    oninput: () => {
      query = search.value.trim();
      mentions = null;
      renderList();
      findPeople(query);
      findMessages(query);
    },
    onkeydown: (event) => {
      if (event.key === 'ArrowDown') {
        event.preventDefault();
        list.querySelector('button')?.focus();
      } else if (event.key === 'Escape') {
        search.value = '';
        query = '';
        people = [];
        hits = { query: '', results: [], hasMore: false, loading: false, error: '' };
        renderList();
      }
    },
  });
  const list = h('nav', { class: 'chat-list', 'aria-label': 'Chats', onkeydown: moveFocus });
  // In a browser, notifications need the user's permission, asked for on a click (Electron needs none).
  const canAskForNotifications = !app.desktop && 'Notification' in window && Notification.permission === 'default';
  const notificationsButton = canAskForNotifications ? h('button', {
    class: 'icon-button', type: 'button', title: 'Enable notifications', 'aria-label': 'Enable notifications',
    onclick: async () => {
      await Notification.requestPermission();
      if (Notification.permission !== 'default') notificationsButton.remove();
    },
  }, icon('notifications')) : null;
  const element = h('aside', { class: 'sidebar' },
    h('header', { class: 'sidebar__header' },
      meBox,
      notificationsButton,
      h('button', {
        class: 'icon-button sidebar__mentions-button', type: 'button', title: 'Mentions', 'aria-label': 'Mentions',
        onclick: () => (mentions ? closeMentions() : openMentions()),
      }, icon('at')),
      h('button', { class: 'icon-button', type: 'button', title: 'Media of all chats', 'aria-label': 'Media', onclick: () => openMediaFeed(app) }, icon('image')),
      h('button', { class: 'icon-button', type: 'button', title: 'New group', 'aria-label': 'New group', onclick: () => openNewGroup(app) }, icon('group')),
      h('button', { class: 'icon-button', type: 'button', title: 'Settings', 'aria-label': 'Settings', onclick: () => openSettings(app) }, icon('settings')),
      h('button', { class: 'icon-button', type: 'button', title: 'Sign out', 'aria-label': 'Sign out', onclick: () => app.logout() }, icon('logout'))),
    status,
    confirmBox,
    h('div', { class: 'sidebar__search' }, search),
    list);
  layout.append(element);

  const findPeople = debounce(async (q) => {
    if (!q) {
      people = [];
      renderList();
      return;
    }
    searching = true;
    renderList();
    try {
      const results = await api.searchUsers(q);
      if (q !== query) return;
      people = results.filter((user) => user.id !== store.state.user.id);
    } catch {
      people = [];
    } finally {
      searching = false;
    }
    renderList();
  }, 250);

  const findMessages = debounce((q) => searchMessages(q), 300);

  async function searchMessages(q, { more = false } = {}) {
    if ([...q].length < MESSAGE_SEARCH_MIN) {
      hits = { query: q, results: [], hasMore: false, loading: false, error: '' };
      renderList();
      return;
    }
    const before = more ? hits.results.at(-1)?.id : undefined;
    hits = more ? { ...hits, loading: true } : { query: q, results: [], hasMore: false, loading: true, error: '' };
    renderList();
    try {
      const page = await api.searchMessages(q, { before });
      if (q !== query) return;
      hits = { query: q, results: [...(more ? hits.results : []), ...(page.results || [])], hasMore: Boolean(page.has_more), loading: false, error: '' };
    } catch (error) {
      if (q !== query) return;
      hits = { ...hits, loading: false, error: error.message };
    }
    renderList();
  }

  async function loadMentions({ more = false } = {}) {
    const before = more ? mentions.results.at(-1)?.id : undefined;
    mentions = { ...(mentions || { results: [], hasMore: false }), loading: true, error: '' };
    renderList();
    try {
      const page = await api.mentions({ before });
      if (!mentions) return;
      mentions = { results: [...(more ? mentions.results : []), ...(page.results || [])], hasMore: Boolean(page.has_more), loading: false, error: '' };
    } catch (error) {
      if (!mentions) return;
      mentions = { ...mentions, loading: false, error: error.message };
    }
    renderList();
  }

  function openMentions() {
    search.value = '';
    query = '';
    people = [];
    mentions = { results: [], hasMore: false, loading: true, error: '' };
    loadMentions();
  }

  function closeMentions() {
    mentions = null;
    renderList();
  }

  /** A found message (a search hit or a mention): its chat, sender, the text, when; opens the chat at it. */
  function messageItem(message, { highlight = '' } = {}) {
    const chat = store.getChat(message.chat_id);
    const title = chat ? store.chatTitle(chat) : 'Chat';
    const sender = message.sender ? displayName(message.sender) : '';
    const text = message.content ? hitExcerpt(message.content, highlight) : quoteText(message);
    return h('button', {
      class: 'chat-item found', type: 'button', dataset: { focusKey: `found-${message.id}`, messageId: message.id, chatId: message.chat_id },
      onclick: () => app.openChat(message.chat_id, { messageId: message.id }),
    },
    avatar(sender || title, message.sender?.id, { size: 'sm', picture: app.picture(message.sender) }),
    h('span', { class: 'chat-item__body' },
      h('span', { class: 'chat-item__top' },
        h('span', { class: 'chat-item__title' }, h('bdi', { text: title })),
        h('time', { class: 'chat-item__time', datetime: message.created_at || '', text: shortStamp(message.created_at) })),
      h('span', { class: 'found__line' },
        sender && chat?.is_group ? h('bdi', { class: 'found__sender', text: `${sender}: ` }) : null,
        h('span', { class: 'found__text' }, highlight ? highlighted(text, highlight) : text))));
  }

  function moreButton(label, onclick) {
    return h('button', { type: 'button', class: 'link-button chat-list__more', onclick }, label);
  }

  function mentionsParts() {
    const parts = [h('div', { class: 'chat-list__view-header' },
      h('h3', { class: 'chat-list__heading', text: 'Mentions' }),
      h('button', { type: 'button', class: 'link-button', onclick: closeMentions }, 'Back to chats'))];
    parts.push(...mentions.results.map((m) => messageItem(m)));
    if (mentions.error) parts.push(h('p', { class: 'chat-list__empty', role: 'alert', text: mentions.error }));
    else if (mentions.loading) parts.push(h('p', { class: 'chat-list__empty', text: 'Loading…' }));
    else if (!mentions.results.length) parts.push(h('p', { class: 'chat-list__empty', text: 'Nobody has mentioned you yet.' }));
    else if (mentions.hasMore) parts.push(moreButton('Show older mentions', () => loadMentions({ more: true })));
    return parts;
  }

  function hitParts() {
    if ([...query].length < MESSAGE_SEARCH_MIN) return [];
    const parts = [h('h3', { class: 'chat-list__heading', text: 'Messages' })];
    const current = hits.query === query;
    if (current) parts.push(...hits.results.map((m) => messageItem(m, { highlight: query })));
    if (current && hits.error) parts.push(h('p', { class: 'chat-list__empty', role: 'alert', text: hits.error }));
    else if (!current || hits.loading) parts.push(h('p', { class: 'chat-list__empty', text: 'Searching…' }));
    else if (!hits.results.length) parts.push(h('p', { class: 'chat-list__empty', text: 'No messages found' }));
    else if (hits.hasMore) parts.push(moreButton('Show older messages', () => searchMessages(query, { more: true })));
    return parts;
  }

  async function startDirectChat(user) {
    try {
      const chat = await api.createDirectChat(user.id);
      store.upsertChat(chat);
      search.value = '';
      query = '';
      people = [];
      renderList();
      app.openChat(chat.id);
    } catch (error) {
      status.textContent = error.message;
    }
  }

  function renderMe() {
    const me = store.state.user;
    if (!me) return;
    replaceChildren(meBox, [
      avatar(displayName(me), me.id, { size: 'sm', picture: app.picture(me) }),
      h('div', { class: 'sidebar__me-text' },
        h('strong', {}, userName(me)),
        h('span', { class: 'muted', text: `@${me.username}` })),
    ]);
    renderConfirm(me);
  }

  function renderConfirm(me) {
    const pending = me.pending_email;
    confirmBox.hidden = !pending;
    if (!pending) return replaceChildren(confirmBox, []);
    const code = h('input', { id: 'email-code', autocomplete: 'one-time-code', placeholder: 'Code', required: true });
    const error = h('span', { class: 'sidebar__confirm-error', role: 'alert' });
    replaceChildren(confirmBox, h('form', {
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          store.setUser(await api.confirmEmail(code.value.trim()));
        } catch (e) {
          error.textContent = e.message;
        }
      },
    },
    h('label', { for: 'email-code', text: `Confirm ${pending} with the code mailed to it` }),
    h('span', { class: 'sidebar__confirm-row' }, code, h('button', { class: 'button', type: 'submit' }, 'Confirm')),
    error));
  }

  function renderStatus() {
    const text = CONNECTION_TEXT[store.state.connection] || '';
    status.textContent = text;
    status.hidden = !text;
  }

  function chatItem(chat) {
    const peer = store.peerOf(chat);
    const title = store.chatTitle(chat);
    const last = chat.last_message;
    const me = store.state.user;
    const system = isSystem(last);
    const mine = !system && last && last.sender && me && last.sender.id === me.id;
    const sender = !system && last && chat.is_group && !mine && last.sender ? `${isolated(displayName(last.sender))}: ` : '';
    const nameOf = (id) => {
      const user = store.userById(id);
      return user ? displayName(user) : null;
    };
    const active = store.state.activeChatId === chat.id;
    const unread = chat.unread_count || 0;
    const typing = store.typingIn(chat.id);
    return h('button', {
      class: `chat-item${active ? ' chat-item--active' : ''}${unread ? ' chat-item--unread' : ''}`,
      type: 'button', 'aria-current': active ? 'true' : null, dataset: { focusKey: `chat-${chat.id}`, chatId: chat.id },
      onclick: () => app.openChat(chat.id),
    },
    avatar(title, chat.is_group ? -chat.id : peer?.id, { online: peer ? Boolean(peer.is_online) : null, picture: app.picture(peer) }),
    h('span', { class: 'chat-item__body' },
      h('span', { class: 'chat-item__top' },
        h('span', { class: 'chat-item__title' }, h('bdi', { text: title })),
        h('time', { class: 'chat-item__time', datetime: last?.created_at || '', text: shortStamp(last?.created_at) })),
      h('span', { class: 'chat-item__bottom' },
        typing.length
          ? h('span', { class: 'chat-item__preview chat-item__typing', text: chat.is_group ? `${isolated(displayName(typing[0]))} is typing…` : 'typing…' })
          : h('span', { class: 'chat-item__preview' },
            mine ? h('span', { class: 'chat-item__you', text: 'You: ' }) : sender,
            system ? systemText(last.system, { meId: me?.id, nameOf }) : preview(last)),
        chat.muted ? h('span', { class: 'chat-item__muted', title: 'Muted' }, icon('notificationsOff', { size: 16, label: 'Muted' })) : null,
        unread ? h('span', {
          class: `badge${chat.muted ? ' badge--muted' : ''}`, 'aria-label': `${unread} unread${chat.muted ? ', muted' : ''}`,
          text: unread > 99 ? '99+' : String(unread),
        }) : null)));
  }

  function personItem(user) {
    return h('button', {
      class: 'chat-item', type: 'button', dataset: { focusKey: `user-${user.id}`, userId: user.id },
      onclick: () => startDirectChat(user),
    },
    avatar(displayName(user), user.id, { online: Boolean(user.is_online), picture: app.picture(user) }),
    h('span', { class: 'chat-item__body' },
      h('span', { class: 'chat-item__title' }, userName(user)),
      h('span', { class: 'chat-item__preview', text: `@${user.username}` })));
  }

  function renderList() {
    if (mentions) {
      replaceChildren(list, mentionsParts());
      return;
    }
    const needle = query.toLowerCase();
    const chats = store.chatList().filter((chat) => !needle || store.chatTitle(chat).toLowerCase().includes(needle));
    const parts = [];
    if (query) parts.push(h('h3', { class: 'chat-list__heading', text: 'Chats' }));
    parts.push(...chats.map(chatItem));
    if (!chats.length && !query) {
      parts.push(h('p', { class: 'chat-list__empty' }, 'No chats yet. Search for someone by name to start one.'));
    }
    if (query) {
      if (!chats.length) parts.push(h('p', { class: 'chat-list__empty', text: 'No matching chats' }));
      parts.push(h('h3', { class: 'chat-list__heading', text: 'People' }));
      if (people.length) parts.push(...people.map(personItem));
      else parts.push(h('p', { class: 'chat-list__empty', text: searching ? 'Searching…' : 'Nobody found' }));
      parts.push(...hitParts());
    }
    replaceChildren(list, parts);
  }

  function moveFocus(event) {
    if (event.key !== 'ArrowDown' && event.key !== 'ArrowUp') return;
    const buttons = [...list.querySelectorAll('button')];
    const index = buttons.indexOf(document.activeElement);
    if (index === -1) return;
    event.preventDefault();
    const next = buttons[index + (event.key === 'ArrowDown' ? 1 : -1)];
    if (next) next.focus();
    else if (event.key === 'ArrowUp') search.focus();
  }

  const unsubscribe = store.subscribe((topics) => {
    if (topics.has('user')) renderMe();
    if (topics.has('connection')) renderStatus();
    if (topics.has('chats') || topics.has('active') || topics.has('presence') || topics.has('typing')) renderList();
  });
  // Relative times ("14:05" → "Mon") age; refresh them now and then.
  const ticker = setInterval(renderList, 60_000);
  renderMe();
  renderStatus();
  renderList();

  return {
    element,
    destroy() {
      unsubscribe();
      clearInterval(ticker);
    },
  };
}

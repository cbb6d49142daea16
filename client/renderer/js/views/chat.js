// The chat area: header (title, presence or typing, media and info buttons), the history with
// infinite scroll upward, day separators, bubbles with edited/deleted marks and read ticks, pending
// sends, and the composer.
import { h, avatar, renderKeyed, replaceChildren, linkified, openLightbox, userName } from '../dom.js';
import { displayName, isolated } from '../store.js';
import { dayLabel, timeOfDay, lastSeen, sameDay } from '../format.js';
import { mountComposer } from './composer.js';
import { icon } from '../icons.js';

const PAGE_SIZE = 50;
const LOAD_MORE_WITHIN_PX = 300;

export function mountChat(layout, app) {
  const { store, api } = app;
  let chatId = null;
  let loadingOlder = false;
  let stickToBottom = true;
  // Where the reader left off when the chat was opened: the divider goes above the first message
  // after it, and stays there while the chat is open.
  let unreadAfter = null;
  let newWhileAway = 0;
  let renderedUpTo = 0;
  // Messages from others that are on screen now; only these are marked read, and only while the
  // page is visible and focused.
  const onScreen = new Set();

  const header = h('header', { class: 'chat__header' });
  const loader = h('div', { class: 'chat__loader', 'aria-hidden': 'true' });
  const items = h('div', { class: 'chat__items' });
  const scroller = h('div', {
    class: 'chat__messages', role: 'log', 'aria-live': 'polite', 'aria-label': 'Messages', tabindex: '0',
    onscroll: onScroll,
  }, loader, items);
  // One floating day label, updated on scroll: the in-flow separators never stick, so two days
  // never pile on top of each other.
  const dayFloat = h('div', { class: 'chat__day-float', 'aria-hidden': 'true', hidden: true }, h('span'));
  const jump = h('button', {
    class: 'chat__jump', type: 'button', hidden: true, 'aria-label': 'Jump to newest messages', onclick: () => jumpToNewest(),
  }, h('span', { class: 'chat__jump-count' }), icon('back', { size: 18 }));
  const history = h('div', { class: 'chat__history' }, scroller, dayFloat, jump);
  const seen = new IntersectionObserver((records) => {
    for (const record of records) {
      const id = Number(record.target.dataset.messageId);
      if (record.isIntersecting) onScreen.add(id);
      else onScreen.delete(id);
    }
    markSeen();
  }, { root: scroller, threshold: 0.6 });
  const empty = h('div', { class: 'chat__empty' },
    h('img', { src: './assets/icon.png', alt: '', width: 96, height: 96 }),
    h('p', { text: 'Select a chat or search for someone to start messaging.' }));
  const composer = mountComposer(app, {
    onSent: () => {
      stickToBottom = true;
    },
  });
  const body = h('div', { class: 'chat__body' }, header, history, composer.element);
  const element = h('main', { class: 'chat' }, empty, body);
  layout.append(element);

  // ---- loading history --------------------------------------------------------------------

  async function loadInitial(id) {
    const state = store.historyState(id);
    if (state.loaded) return;
    try {
      const page = await api.history(id, { limit: PAGE_SIZE });
      store.addHistory(id, page.results || [], Boolean(page.has_more));
    } catch (error) {
      if (error.status === 404) store.removeChat(id);
    }
  }

  async function loadOlder() {
    const id = chatId;
    const state = store.historyState(id);
    if (!id || loadingOlder || !state.loaded || !state.hasMoreBefore) return;
    const before = store.oldestMessageId(id);
    if (!before) return;
    loadingOlder = true;
    loader.textContent = 'Loading earlier messages…';
    try {
      const page = await api.history(id, { before, limit: PAGE_SIZE });
      if (id !== chatId) return;
      // Keep what the user is looking at in place while older messages appear above it.
      const fromBottom = scroller.scrollHeight - scroller.scrollTop;
      store.addHistory(id, page.results || [], Boolean(page.has_more));
      await Promise.resolve();
      renderMessages();
      scroller.scrollTop = scroller.scrollHeight - fromBottom;
    } catch (error) {
      console.warn('history failed', error);
    } finally {
      loadingOlder = false;
      loader.textContent = '';
      fillViewport();
    }
  }

  function onScroll() {
    stickToBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
    if (scroller.scrollTop < LOAD_MORE_WITHIN_PX) loadOlder();
    if (stickToBottom) {
      newWhileAway = 0;
    }
    updateDayFloat();
    updateJump();
  }

  function attentive() {
    return document.visibilityState === 'visible' && document.hasFocus();
  }

  /** Mark read up to the newest message from others that is on screen, if the reader can see it. */
  function markSeen() {
    // Before the history arrives the view may hold only the chat's last message, alone and so on
    // screen; the reader has not seen it in place yet.
    if (!chatId || !onScreen.size || !attentive() || !store.historyState(chatId).loaded) return;
    app.markRead(chatId, Math.max(...onScreen));
  }

  function updateDayFloat() {
    const top = scroller.scrollTop;
    let current = null;
    for (const node of items.querySelectorAll('.day')) {
      if (node.offsetTop - items.offsetTop <= top + 4) current = node;
      else break;
    }
    // Hidden while a separator itself sits at the top, so the label never shows twice.
    const label = current?.textContent || '';
    dayFloat.hidden = !label || top < 8;
    dayFloat.firstChild.textContent = label;
  }

  function updateJump() {
    jump.hidden = stickToBottom;
    const count = jump.firstChild;
    count.textContent = newWhileAway ? `${newWhileAway} new message${newWhileAway === 1 ? '' : 's'}` : '';
    count.hidden = !newWhileAway;
  }

  function jumpToNewest() {
    stickToBottom = true;
    newWhileAway = 0;
    scrollToBottom();
    updateJump();
  }

  /** When the history does not fill the view there is nothing to scroll, so load more now. */
  function fillViewport() {
    if (chatId && scroller.scrollHeight <= scroller.clientHeight + LOAD_MORE_WITHIN_PX) loadOlder();
  }

  // ---- rendering ----------------------------------------------------------------------------

  function renderHeader() {
    const chat = store.getChat(chatId);
    if (!chat) return;
    const peer = store.peerOf(chat);
    const typing = store.typingIn(chatId);
    let subtitle;
    let subtitleClass = 'chat__subtitle';
    if (typing.length) {
      subtitle = typing.length === 1
        ? (chat.is_group ? `${isolated(displayName(typing[0]))} is typing…` : 'typing…')
        : `${typing.map((user) => isolated(displayName(user))).join(', ')} are typing…`;
      subtitleClass += ' chat__subtitle--typing';
    } else if (chat.is_group) {
      const online = chat.members.filter((m) => store.userById(m.user.id)?.is_online).length;
      subtitle = `${chat.members.length} member${chat.members.length === 1 ? '' : 's'}${online ? `, ${online} online` : ''}`;
    } else {
      subtitle = lastSeen(peer);
      if (peer?.is_online) subtitleClass += ' chat__subtitle--online';
    }
    const connection = store.state.connection === 'online' ? null
      : h('span', { class: 'chat__connection', role: 'status', text: store.state.connection === 'connecting' ? 'Connecting…' : 'Offline' });
    replaceChildren(header, [
      h('button', { class: 'icon-button chat__back', type: 'button', 'aria-label': 'Back to chats', onclick: () => app.openChat(null) }, icon('back')),
      h('button', { class: 'chat__title-button', type: 'button', onclick: () => app.openPanel('info'), 'aria-label': `${store.chatTitle(chat)}: details` },
        avatar(store.chatTitle(chat), chat.is_group ? -chat.id : peer?.id, { online: peer ? Boolean(peer.is_online) : null }),
        h('span', { class: 'chat__titles' },
          h('strong', { class: 'chat__title' }, h('bdi', { text: store.chatTitle(chat) })),
          h('span', { class: subtitleClass, 'aria-live': 'polite', text: subtitle }))),
      connection,
      h('button', { class: 'icon-button', type: 'button', title: 'Shared media', 'aria-label': 'Shared media', dataset: { focusKey: 'media' }, onclick: () => app.openPanel('media') }, icon('image')),
      h('button', { class: 'icon-button', type: 'button', title: chat.is_group ? 'Group info' : 'Profile', 'aria-label': chat.is_group ? 'Group info' : 'Profile', dataset: { focusKey: 'info' }, onclick: () => app.openPanel('info') }, icon('info')),
    ]);
  }

  /** The history as render items: day separators, messages, then pending sends. */
  function entries() {
    const chat = store.getChat(chatId);
    const list = [];
    let previous = null;
    let dividerPlaced = false;
    const me = store.state.user;
    const state = store.historyState(chatId);
    if (state.loaded && !state.hasMoreBefore) list.push({ kind: 'start', key: 'start' });
    for (const message of store.messagesOf(chatId)) {
      if (!message.created_at) continue;
      if (!previous || !sameDay(previous.created_at, message.created_at)) {
        list.push({ kind: 'day', key: `day-${message.created_at.slice(0, 10)}-${message.id}`, at: message.created_at });
      }
      // Placed once the history is in: before it the view may hold only the chat's last message.
      if (!dividerPlaced && state.loaded && unreadAfter !== null && message.id > unreadAfter && message.sender?.id !== me?.id) {
        list.push({ kind: 'unread', key: 'unread' });
        dividerPlaced = true;
      }
      const grouped = previous && previous.sender?.id === message.sender?.id && sameDay(previous.created_at, message.created_at)
        && new Date(message.created_at) - new Date(previous.created_at) < 5 * 60_000;
      list.push({ kind: 'message', key: `m-${message.id}`, message, grouped, isGroup: chat?.is_group });
      previous = message;
    }
    for (const pending of store.pendingIn(chatId)) {
      list.push({ kind: 'pending', key: `p-${pending.client_id}`, pending });
    }
    return list;
  }

  function signature(entry) {
    if (entry.kind === 'message') {
      const m = entry.message;
      return `${m.version}|${m.is_read}|${m.deleted}|${entry.grouped}`;
    }
    if (entry.kind === 'pending') return `${entry.pending.status}|${entry.pending.error}`;
    return entry.key;
  }

  function build(entry) {
    if (entry.kind === 'start') return h('div', { class: 'chat__start', text: 'This is the beginning of the conversation' });
    if (entry.kind === 'day') return h('div', { class: 'day', role: 'separator' }, h('span', { text: dayLabel(entry.at) }));
    if (entry.kind === 'unread') return h('div', { class: 'unread-divider', role: 'separator' }, h('span', { text: 'Unread messages' }));
    if (entry.kind === 'pending') return pendingBubble(entry.pending);
    return messageBubble(entry);
  }

  function messageBubble({ message, grouped, isGroup }) {
    const me = store.state.user;
    const own = message.sender && me && message.sender.id === me.id;
    const chat = store.getChat(message.chat_id);
    const canModerate = chat?.is_group && (chat.my_role === 'owner' || chat.my_role === 'admin');
    const content = [];
    if (isGroup && !own && !grouped && message.sender) {
      content.push(h('span', { class: 'bubble__sender' }, userName(message.sender, { handle: true })));
    }
    if (message.deleted) {
      content.push(h('span', { class: 'bubble__deleted', text: 'Message deleted' }));
    } else {
      const attachmentPath = message.attachment?.url || message.attachment_url;
      if (attachmentPath) content.push(attachmentImage(attachmentPath, message.attachment));
      if (message.content) content.push(h('span', { class: 'bubble__text' }, linkified(message.content)));
    }
    const ticks = own && !message.deleted
      ? h('span', { class: `ticks${message.is_read ? ' ticks--read' : ''}`, title: message.is_read ? 'Read' : 'Sent' },
        icon(message.is_read ? 'doneAll' : 'check', { size: 16, label: message.is_read ? 'Read' : 'Sent' }))
      : null;
    content.push(h('span', { class: 'bubble__meta' },
      message.edited_at && !message.deleted ? h('span', { class: 'bubble__edited', text: 'edited' }) : null,
      h('time', { datetime: message.created_at, title: new Date(message.created_at).toLocaleString(), text: timeOfDay(message.created_at) }),
      ticks));

    const actions = !message.deleted && (own || canModerate)
      ? h('span', { class: 'bubble__actions' },
        own && message.content ? h('button', { type: 'button', class: 'bubble__action', 'aria-label': 'Edit message', title: 'Edit', onclick: () => composer.edit(message) }, icon('edit', { size: 16 })) : null,
        h('button', {
          type: 'button', class: 'bubble__action', 'aria-label': 'Delete message', title: 'Delete', onclick: async () => {
            if (!window.confirm('Delete this message for everyone?')) return;
            try {
              await api.deleteMessage(message.chat_id, message.id);
            } catch (error) {
              window.alert(error.message);
            }
          },
        }, icon('delete', { size: 16 })))
      : null;

    return h('div', {
      class: `msg ${own ? 'msg--own' : 'msg--other'}${grouped ? ' msg--grouped' : ''}`,
      dataset: { messageId: message.id },
    },
    h('div', { class: `bubble${message.deleted ? ' bubble--deleted' : ''}`, tabindex: '-1' }, content),
    actions);
  }

  function pendingBubble(pending) {
    const failed = pending.status === 'failed';
    const content = [];
    if (pending.attachment) content.push(localImage(pending.attachment));
    if (pending.content) content.push(h('span', { class: 'bubble__text' }, linkified(pending.content)));
    content.push(h('span', { class: 'bubble__meta' },
      h('time', { datetime: pending.created_at, text: timeOfDay(pending.created_at) }),
      h('span', { class: 'ticks ticks--pending', title: failed ? 'Not sent' : 'Sending' },
        icon(failed ? 'error' : 'schedule', { size: 14, label: failed ? 'Not sent' : 'Sending' }))));
    return h('div', { class: `msg msg--own msg--pending${failed ? ' msg--failed' : ''}`, dataset: { clientId: pending.client_id } },
      h('div', { class: 'bubble' }, content),
      failed ? h('span', { class: 'bubble__failure' },
        h('span', { text: pending.error || 'Not sent' }),
        h('button', { type: 'button', class: 'link-button', onclick: () => app.socket.retry(pending.client_id) }, 'Retry'),
        h('button', { type: 'button', class: 'link-button', onclick: () => store.dropPending(pending.client_id) }, 'Discard'))
        : null);
  }

  function sizedBox(attachment) {
    if (!attachment?.width || !attachment?.height) return {};
    const width = Math.min(320, attachment.width);
    return { width: `${width}px`, aspectRatio: `${attachment.width} / ${attachment.height}` };
  }

  function attachmentImage(path, attachment) {
    const img = h('img', { class: 'bubble__image', alt: 'Image', style: sizedBox(attachment) });
    const button = h('button', { type: 'button', class: 'bubble__image-button', 'aria-label': 'Open image' }, img);
    api.attachmentUrl(path).then((src) => {
      img.src = src;
      img.addEventListener('load', () => stickToBottom && scrollToBottom(), { once: true });
      button.addEventListener('click', () => openLightbox(src));
    }, () => {
      // No broken image: say what happened instead.
      button.replaceWith(h('span', { class: 'bubble__image-missing', role: 'img', 'aria-label': 'Image unavailable', text: 'Image unavailable' }));
    });
    img.addEventListener('error', () => {
      if (button.isConnected) button.replaceWith(h('span', { class: 'bubble__image-missing', text: 'Image unavailable' }));
    }, { once: true });
    return button;
  }

  function localImage(attachment) {
    return h('img', { class: 'bubble__image', alt: 'Image being sent', src: attachment.previewUrl || '', style: sizedBox(attachment) });
  }

  function scrollToBottom() {
    scroller.scrollTop = scroller.scrollHeight;
  }

  function renderMessages() {
    if (!chatId) return;
    const wasAtBottom = stickToBottom;
    const before = items.__keyed ? new Set(items.__keyed.keys()) : new Set();
    const list = entries();
    renderKeyed(items, list, { key: (e) => e.key, signature, build });
    observeMessages(list, before);
    if (wasAtBottom) scrollToBottom();
    updateDayFloat();
    updateJump();
  }

  /** Watch the others' messages for visibility; count the ones that arrived while scrolled up. */
  function observeMessages(list, before) {
    const me = store.state.user;
    const chat = store.getChat(chatId);
    for (const node of items.querySelectorAll('.msg--other[data-message-id]')) {
      if (node.__observed) continue;
      node.__observed = true;
      seen.observe(node);
    }
    const newest = renderedUpTo;
    for (const entry of list) if (entry.kind === 'message') renderedUpTo = Math.max(renderedUpTo, entry.message.id);
    if (!before.size || stickToBottom) return;
    for (const entry of list) {
      if (entry.kind !== 'message' || before.has(entry.key)) continue;
      const m = entry.message;
      if (m.id > newest && m.sender?.id !== me?.id && m.id > (chat?.last_read_id || 0)) newWhileAway += 1;
    }
  }

  function renderAll() {
    const chat = chatId ? store.getChat(chatId) : null;
    element.classList.toggle('chat--empty', !chat);
    if (!chat) return;
    renderHeader();
    renderMessages();
  }

  function switchTo(id) {
    chatId = id;
    stickToBottom = true;
    newWhileAway = 0;
    renderedUpTo = 0;
    onScreen.clear();
    seen.disconnect();
    const opened = id ? store.getChat(id) : null;
    unreadAfter = opened && opened.unread_count ? (opened.last_read_id || 0) : null;
    // With unread messages the view opens at the divider, so no render may pull it to the end first.
    stickToBottom = unreadAfter === null;
    items.__keyed = null;
    replaceChildren(items, []);
    composer.setChat(id);
    renderAll();
    if (id) {
      loadInitial(id).then(() => {
        if (id !== chatId) return;
        renderMessages();
        const divider = items.querySelector('.unread-divider');
        if (divider) {
          // Show where the unread part starts rather than its end; reading marks it read.
          scroller.scrollTop = Math.max(0, divider.offsetTop - items.offsetTop - 8);
          stickToBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
        } else {
          scrollToBottom();
        }
        updateDayFloat();
        updateJump();
        // Forget what was on screen before the history arrived and ask the observer afresh.
        onScreen.clear();
        for (const node of items.querySelectorAll('.msg--other[data-message-id]')) {
          seen.unobserve(node);
          seen.observe(node);
        }
        fillViewport();
      });
    }
  }

  const unsubscribe = store.subscribe((topics) => {
    if (topics.has('active') && store.state.activeChatId !== chatId) {
      switchTo(store.state.activeChatId);
      return;
    }
    if (!chatId) return;
    if (!store.getChat(chatId)) {
      switchTo(null);
      return;
    }
    if (topics.has('chats') || topics.has('typing') || topics.has('presence') || topics.has('connection')) renderHeader();
    if (topics.has(`messages:${chatId}`) || topics.has('pending')) renderMessages();
  });

  const resize = new ResizeObserver(() => stickToBottom && scrollToBottom());
  const onAttention = () => markSeen();
  document.addEventListener('visibilitychange', onAttention);
  window.addEventListener('focus', onAttention);
  resize.observe(scroller);
  switchTo(store.state.activeChatId);

  return {
    element,
    destroy() {
      unsubscribe();
      resize.disconnect();
      seen.disconnect();
      document.removeEventListener('visibilitychange', onAttention);
      window.removeEventListener('focus', onAttention);
      composer.destroy();
    },
  };
}

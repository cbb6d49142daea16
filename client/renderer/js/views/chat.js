// The chat area: header (title, presence or typing, media and info buttons, the chat menu with mute),
// the latest pinned message, the history with infinite scroll upward, day separators, system lines,
// bubbles with replies, forwards, mentions, reactions, edited/deleted marks and read ticks, hover
// actions (reply, react, forward, pin, edit, delete), pending sends, and the composer.
import { h, avatar, renderKeyed, replaceChildren, linkified, openLightbox, userName, richText } from '../dom.js';
import { displayName, isolated } from '../store.js';
import { dayLabel, timeOfDay, lastSeen, sameDay } from '../format.js';
import { systemText, isSystem, quoteText, canPin, mentionsMe } from '../conversation.js';
import { mountComposer } from './composer.js';
import { reactionRow, openReactionBar, closeReactionBar } from './reactions.js';
import { openForwardPicker } from './forward.js';
import { fileCard, mountDropZone } from './files.js';
import { previewCard } from './preview.js';
import { icon } from '../icons.js';

const FLASH_MS = 1600;

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
  // A message to show once the chat opens (a mention, a search hit): {chatId, messageId}.
  let pendingReveal = null;
  let pins = []; // the chat's pinned messages, most recently pinned first
  let pinsKey = null; // which loaded messages were pinned when `pins` was fetched
  let pinsRequest = 0;

  const header = h('header', { class: 'chat__header' });
  const pinBar = h('div', { class: 'pinned', hidden: true });
  const loader = h('div', { class: 'chat__loader', 'aria-hidden': 'true' });
  const items = h('div', { class: 'chat__items' });
  const scroller = h('div', {
    class: 'chat__messages', role: 'log', 'aria-live': 'polite', 'aria-label': 'Messages', tabindex: '0',
    onscroll: onScroll, onkeydown: onHistoryKey,
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
    onQuoteClick: (messageId) => focusMessage(messageId),
  });
  const body = h('div', { class: 'chat__body' }, header, pinBar, history, composer.element);
  const element = h('main', { class: 'chat' }, empty, body);
  layout.append(element);
  const dropZone = mountDropZone(body, { onFiles: (files) => composer.addFiles(files), accepts: () => Boolean(chatId) });

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
        avatar(store.chatTitle(chat), chat.is_group ? -chat.id : peer?.id, { online: peer ? Boolean(peer.is_online) : null, picture: app.picture(peer) }),
        h('span', { class: 'chat__titles' },
          h('strong', { class: 'chat__title' }, h('bdi', { text: store.chatTitle(chat) })),
          h('span', { class: subtitleClass, 'aria-live': 'polite', text: subtitle }))),
      connection,
      chat.muted ? h('span', { class: 'chat__muted', title: 'Muted' }, icon('notificationsOff', { size: 18, label: 'Muted' })) : null,
      h('button', { class: 'icon-button', type: 'button', title: 'Shared media', 'aria-label': 'Shared media', dataset: { focusKey: 'media' }, onclick: () => app.openPanel('media') }, icon('image')),
      h('button', { class: 'icon-button', type: 'button', title: chat.is_group ? 'Group info' : 'Profile', 'aria-label': chat.is_group ? 'Group info' : 'Profile', dataset: { focusKey: 'info' }, onclick: () => app.openPanel('info') }, icon('info')),
      h('button', {
        class: 'icon-button chat__menu-button', type: 'button', title: 'More', 'aria-label': 'Chat menu', 'aria-haspopup': 'menu',
        dataset: { focusKey: 'menu' }, onclick: (event) => toggleMenu(event.currentTarget),
      }, icon('more')),
    ]);
  }

  // ---- the chat menu ------------------------------------------------------------------------

  let closeMenu = null;

  function toggleMenu(anchor) {
    if (closeMenu) return closeMenu();
    const chat = store.getChat(chatId);
    if (!chat) return;
    const item = (label, onclick) => h('button', { type: 'button', class: 'menu__item', role: 'menuitem', onclick: () => {
      close();
      onclick();
    } }, label);
    const menu = h('div', { class: 'menu', role: 'menu', 'aria-label': 'Chat menu' },
      item(chat.muted ? 'Unmute notifications' : 'Mute notifications', () => setMuted(chat.id, !chat.muted)),
      pins.length ? item('Show pinned message', () => focusMessage(pins[0].id)) : null);
    const outside = (event) => {
      if (!menu.contains(event.target) && event.target !== anchor && !anchor.contains(event.target)) close();
    };
    const onKey = (event) => {
      if (event.key === 'Escape') {
        event.stopPropagation();
        close();
        anchor.focus();
      }
    };
    function close() {
      menu.remove();
      document.removeEventListener('pointerdown', outside, true);
      document.removeEventListener('keydown', onKey, true);
      closeMenu = null;
    }
    closeMenu = close;
    // Beside the header, not in it: the header re-renders on every presence or typing change.
    body.append(menu);
    document.addEventListener('pointerdown', outside, true);
    document.addEventListener('keydown', onKey, true);
    menu.querySelector('button')?.focus();
  }

  async function setMuted(id, muted) {
    try {
      await app.actions.setMuted(id, muted);
    } catch (error) {
      window.alert(error.message);
    }
  }

  // ---- pinned messages ----------------------------------------------------------------------

  /** The ids of loaded messages that are pinned: when it changes (a pin or unpin arrived), fetch again. */
  function pinnedKey() {
    return store.messagesOf(chatId).filter((m) => m.pinned).map((m) => m.id).join(',');
  }

  async function loadPins(id) {
    const request = ++pinsRequest;
    pinsKey = pinnedKey();
    try {
      const list = await api.pins(id);
      if (request !== pinsRequest || id !== chatId) return;
      pins = list;
    } catch {
      if (request !== pinsRequest) return;
      pins = [];
    }
    renderPins();
  }

  function renderPins() {
    const chat = store.getChat(chatId);
    const latest = pins[0];
    pinBar.hidden = !latest;
    if (!latest) return replaceChildren(pinBar, []);
    const shown = store.messageById(chatId, latest.id) || latest;
    replaceChildren(pinBar, [
      h('button', {
        type: 'button', class: 'pinned__open', 'aria-label': `Pinned message: ${quoteText(shown)}`,
        onclick: () => focusMessage(latest.id),
      },
      icon('pin', { size: 18 }),
      h('span', { class: 'pinned__body' },
        h('span', { class: 'pinned__label', text: pins.length > 1 ? `Pinned message (${pins.length})` : 'Pinned message' }),
        h('span', { class: 'pinned__text', text: quoteText(shown) }))),
      canPin(chat) ? h('button', {
        type: 'button', class: 'icon-button pinned__unpin', 'aria-label': 'Unpin message', title: 'Unpin',
        onclick: () => unpin(latest),
      }, icon('close', { size: 18 })) : null,
    ]);
  }

  async function pin(message) {
    try {
      // The answer marks the message pinned, which fetches the pins again (see renderMessages).
      await app.actions.pin(message);
    } catch (error) {
      window.alert(error.message);
    }
  }

  async function unpin(message) {
    try {
      await app.actions.unpin(message.chat_id, message.id);
      // 204: the message.updated event follows; an unpinned message not loaded here changes nothing
      // renderMessages would notice, so ask now.
      if (message.chat_id === chatId) loadPins(chatId);
    } catch (error) {
      window.alert(error.message);
    }
  }

  // ---- jumping to a message -----------------------------------------------------------------

  /** Show a message of this chat (a quote, a pin, a mention or a search hit), loading older history as needed. */
  async function focusMessage(messageId) {
    const id = chatId;
    if (!id || !messageId) return;
    stickToBottom = false;
    let found = false;
    try {
      found = await app.actions.loadUntil(id, messageId);
    } catch (error) {
      console.warn('could not load the history up to a message', error);
    }
    if (id !== chatId) return;
    renderMessages();
    const node = items.querySelector(`[data-message-id="${messageId}"]`);
    if (!found || !node) {
      flashNotice('That message is no longer in this chat.');
      return;
    }
    node.scrollIntoView({ block: 'center' });
    stickToBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
    updateDayFloat();
    updateJump();
    node.classList.remove('msg--flash');
    void node.offsetWidth; // restart the animation when the same message is shown twice
    node.classList.add('msg--flash');
    setTimeout(() => node.classList.remove('msg--flash'), FLASH_MS);
    (node.querySelector('.bubble') || node).focus({ preventScroll: true });
  }

  const notice = h('div', { class: 'chat__notice', role: 'status', hidden: true });
  history.append(notice);
  function flashNotice(text) {
    notice.textContent = text;
    notice.hidden = false;
    clearTimeout(flashNotice.timer);
    flashNotice.timer = setTimeout(() => {
      notice.hidden = true;
    }, 3000);
  }

  /** Open `id` at `messageId`: at once when it is the open chat, else once the chat has switched. */
  function reveal(id, messageId) {
    if (id === chatId) {
      focusMessage(messageId);
      return;
    }
    pendingReveal = { chatId: id, messageId };
  }

  /** Keys on a focused message: R replies, E edits mine, F forwards. */
  function onHistoryKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (!(target instanceof Element) || !target.classList.contains('bubble')) return;
    const node = target.closest('[data-message-id]');
    const message = node && store.messageById(chatId, Number(node.dataset.messageId));
    if (!message || message.deleted || isSystem(message)) return;
    const key = event.key.toLowerCase();
    if (key === 'r') {
      event.preventDefault();
      composer.reply(message);
    } else if (key === 'e' && message.sender?.id === store.state.user?.id && message.content && !message.forwarded_from) {
      event.preventDefault();
      composer.edit(message);
    } else if (key === 'f') {
      event.preventDefault();
      openForwardPicker(app, message);
    }
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
      if (isSystem(message)) {
        list.push({ kind: 'system', key: `m-${message.id}`, message });
        previous = message;
        continue;
      }
      // Placed once the history is in: before it the view may hold only the chat's last message.
      if (!dividerPlaced && state.loaded && unreadAfter !== null && message.id > unreadAfter && message.sender?.id !== me?.id) {
        list.push({ kind: 'unread', key: 'unread' });
        dividerPlaced = true;
      }
      const grouped = previous && !isSystem(previous) && previous.sender?.id === message.sender?.id
        && sameDay(previous.created_at, message.created_at)
        && new Date(message.created_at) - new Date(previous.created_at) < 5 * 60_000;
      list.push({ kind: 'message', key: `m-${message.id}`, message, grouped, isGroup: chat?.is_group });
      previous = message;
    }
    for (const pending of store.pendingIn(chatId)) {
      list.push({ kind: 'pending', key: `p-${pending.client_id}`, pending });
    }
    return list;
  }

  // How a bubble shows a person (their name and picture): a `user.updated` rebuilds the bubbles they are in.
  function shown(user) {
    return user ? `${user.display_name}/${user.avatar_url}` : '';
  }

  function signature(entry) {
    if (entry.kind === 'message') {
      const m = entry.message;
      const people = `${shown(m.sender)}|${shown(m.reply_to?.sender)}|${shown(m.forwarded_from?.sender)}`;
      return `${m.version}|${m.is_read}|${m.deleted}|${entry.grouped}|${canPin(store.getChat(chatId))}|${people}`;
    }
    // A system line names people by id, from the store's users: any profile change may rename it.
    if (entry.kind === 'system') return `${entry.message.version}|${store.state.profiles}`;
    if (entry.kind === 'pending') return `${entry.pending.status}|${entry.pending.error}`;
    return entry.key;
  }

  function build(entry) {
    if (entry.kind === 'start') return h('div', { class: 'chat__start', text: 'This is the beginning of the conversation' });
    if (entry.kind === 'day') return h('div', { class: 'day', role: 'separator' }, h('span', { text: dayLabel(entry.at) }));
    if (entry.kind === 'unread') return h('div', { class: 'unread-divider', role: 'separator' }, h('span', { text: 'Unread messages' }));
    if (entry.kind === 'pending') return pendingBubble(entry.pending);
    if (entry.kind === 'system') return systemLine(entry.message);
    return messageBubble(entry);
  }

  function nameOf(id) {
    const user = store.userById(id);
    return user ? displayName(user) : null;
  }

  /** A centred grey line: "Alice renamed the group to “Plans”"; a pin's line opens the pinned message. */
  function systemLine(message) {
    const text = systemText(message.system, { meId: store.state.user?.id, nameOf });
    const target = message.system?.action === 'message.pinned' ? message.system.message_id : null;
    return h('div', { class: 'system-line', role: 'note', dataset: { messageId: message.id } },
      target
        ? h('button', { type: 'button', class: 'system-line__text', onclick: () => focusMessage(target) }, text)
        : h('span', { class: 'system-line__text', text }));
  }

  function quoteBlock(reply) {
    const sender = reply.sender ? displayName(reply.sender) : '';
    return h('button', {
      type: 'button', class: `quote${reply.deleted ? ' quote--deleted' : ''}`,
      'aria-label': `Reply to ${sender}: ${quoteText(reply)}. Show the original`,
      onclick: (event) => {
        event.stopPropagation();
        focusMessage(reply.id);
      },
    },
    h('bdi', { class: 'quote__sender', text: sender }),
    h('span', { class: 'quote__text', text: quoteText(reply) }));
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
      if (message.forwarded_from) {
        content.push(h('span', { class: 'bubble__forwarded' },
          icon('forward', { size: 14 }), 'Forwarded from ', userName(message.forwarded_from.sender)));
      }
      if (message.reply_to) content.push(quoteBlock(message.reply_to));
      const attachmentPath = message.attachment?.url || message.attachment_url;
      if (attachmentPath) {
        content.push(message.attachment?.kind === 'file' ? fileCard(message.attachment, { api }) : attachmentImage(attachmentPath, message.attachment));
      }
      if (message.content) {
        content.push(h('span', { class: 'bubble__text' }, richText(message.content, chat?.members || [], me?.id)));
      }
      content.push(previewCard(message.link_preview));
    }
    const ticks = own && !message.deleted
      ? h('span', { class: `ticks${message.is_read ? ' ticks--read' : ''}`, title: message.is_read ? 'Read' : 'Sent' },
        icon(message.is_read ? 'doneAll' : 'check', { size: 16, label: message.is_read ? 'Read' : 'Sent' }))
      : null;
    content.push(h('span', { class: 'bubble__meta' },
      message.pinned && !message.deleted ? h('span', { class: 'bubble__pinned', title: 'Pinned' }, icon('pin', { size: 13, label: 'Pinned' })) : null,
      message.edited_at && !message.deleted ? h('span', { class: 'bubble__edited', text: 'edited' }) : null,
      h('time', { datetime: message.created_at, title: new Date(message.created_at).toLocaleString(), text: timeOfDay(message.created_at) }),
      ticks));

    const action = (name, label, title, onclick) => h('button', {
      type: 'button', class: `bubble__action bubble__action--${name}`, 'aria-label': label, title, onclick,
    }, icon(name, { size: 16 }));
    let row = null;
    const actions = !message.deleted
      ? h('span', { class: 'bubble__actions' },
        action('reply', 'Reply', 'Reply (R)', () => composer.reply(message)),
        action('mood', 'React', 'React', () => openReactionBar(row, {
          below: row.getBoundingClientRect().top - scroller.getBoundingClientRect().top < 70,
          onPick: (emoji) => toggleReaction(message, emoji),
        })),
        action('forward', 'Forward', 'Forward (F)', () => openForwardPicker(app, message)),
        canPin(chat) ? action('pin', message.pinned ? 'Unpin message' : 'Pin message', message.pinned ? 'Unpin' : 'Pin',
          () => (message.pinned ? unpin(message) : pin(message))) : null,
        own && message.content && !message.forwarded_from ? action('edit', 'Edit message', 'Edit (E)', () => composer.edit(message)) : null,
        own || canModerate ? h('button', {
          type: 'button', class: 'bubble__action', 'aria-label': 'Delete message', title: 'Delete', onclick: async () => {
            if (!window.confirm('Delete this message for everyone?')) return;
            try {
              await api.deleteMessage(message.chat_id, message.id);
            } catch (error) {
              window.alert(error.message);
            }
          },
        }, icon('delete', { size: 16 })) : null)
      : null;

    const mentioned = !own && !message.deleted && mentionsMe(message, me?.id);
    // In a group, the sender's face beside the first bubble of each run of theirs (a spacer keeps the rest aligned).
    const face = isGroup && !own && message.sender
      ? (grouped ? h('span', { class: 'msg__face' }) : avatar(displayName(message.sender), message.sender.id, { size: 'xs', picture: app.picture(message.sender) }))
      : null;
    row = h('div', {
      class: `msg ${own ? 'msg--own' : 'msg--other'}${grouped ? ' msg--grouped' : ''}${mentioned ? ' msg--mentions-me' : ''}`,
      dataset: { messageId: message.id },
    },
    face,
    h('div', { class: 'msg__column' },
      h('div', { class: `bubble${message.deleted ? ' bubble--deleted' : ''}`, tabindex: '-1' }, content),
      message.deleted ? null : reactionRow(message, { store, onToggle: (emoji) => toggleReaction(message, emoji) })),
    actions);
    return row;
  }

  async function toggleReaction(message, emoji) {
    // The newest copy: the bubble's own may be older than what the store holds by now.
    const current = store.messageById(message.chat_id, message.id) || message;
    try {
      await app.actions.toggleReaction(current, emoji);
    } catch (error) {
      flashNotice(error.message);
    }
  }

  function pendingBubble(pending) {
    const failed = pending.status === 'failed';
    const content = [];
    if (pending.reply_to) content.push(quoteBlock(pending.reply_to));
    if (pending.attachment) {
      content.push(pending.attachment.kind === 'file' ? fileCard(pending.attachment, { api }) : localImage(pending.attachment));
    }
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
    if (pinsKey !== null && pinnedKey() !== pinsKey) loadPins(chatId);
    else if (pins.length) renderPins();
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
    closeReactionBar();
    closeMenu?.();
    const target = pendingReveal && pendingReveal.chatId === id ? pendingReveal.messageId : null;
    pendingReveal = null;
    pins = [];
    pinsKey = null;
    pinsRequest += 1;
    renderPins();
    chatId = id;
    stickToBottom = true;
    newWhileAway = 0;
    renderedUpTo = 0;
    onScreen.clear();
    seen.disconnect();
    const opened = id ? store.getChat(id) : null;
    unreadAfter = opened && opened.unread_count ? (opened.last_read_id || 0) : null;
    // With unread messages the view opens at the divider, so no render may pull it to the end first.
    stickToBottom = unreadAfter === null && !target;
    items.__keyed = null;
    replaceChildren(items, []);
    composer.setChat(id);
    renderAll();
    if (id) {
      loadInitial(id).then(async () => {
        if (id !== chatId) return;
        loadPins(id);
        renderMessages();
        const divider = items.querySelector('.unread-divider');
        if (target) {
          await focusMessage(target);
          if (id !== chatId) return;
        } else if (divider) {
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
    reveal,
    destroy() {
      unsubscribe();
      resize.disconnect();
      seen.disconnect();
      document.removeEventListener('visibilitychange', onAttention);
      window.removeEventListener('focus', onAttention);
      composer.destroy();
      dropZone.destroy();
    },
  };
}

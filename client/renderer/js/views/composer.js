// The composer: Enter sends, Shift+Enter adds a line; paste, pick or drop files (any type, several
// at once) to upload each with its progress, a cancel and a retry (views/files.js); typing notices;
// editing one of my messages (Up in an empty composer edits the last one); replying (the quote above
// the input, Ctrl+Up / Ctrl+Down pick the message, Esc cancels); `@` offers the chat's members.
import { h, avatar, replaceChildren, userName } from '../dom.js';
import { lengthStatus } from '../format.js';
import { displayName } from '../store.js';
import {
  quoteText, lastEditable, replyStep, mentionAt, mentionCandidates, insertMention, replySummary,
} from '../conversation.js';
import { icon } from '../icons.js';
import { mountUploadTray } from './files.js';
import { uploadLimits } from '../uploads.js';
import { transferredFiles } from '../fileTypes.js';

const TYPING_EVERY_MS = 3000;
// The server's message limit when GET /api/config publishes it; this until then (the server's
// default MESSAGE_MAX_LENGTH).
const DEFAULT_MAX_LENGTH = 4000;

export function mountComposer(app, { onSent, onQuoteClick = () => {} }) {
  const { api, socket, store } = app;
  let chatId = null;
  let lastTypingAt = 0;
  let editing = null; // the message being edited
  let replying = null; // the message being answered
  let suggestions = null; // { start, caret, users, index } while `@` autocomplete is open
  const drafts = new Map();
  let maxLength = DEFAULT_MAX_LENGTH;
  // The server's upload limits; until GET /api/config answers the server alone judges a file.
  let limits = uploadLimits(null);
  api.config?.().then((config) => {
    const limit = Number(config?.message_max_length ?? config?.limits?.message_max_length);
    if (Number.isInteger(limit) && limit > 0) maxLength = limit;
    limits = uploadLimits(config);
    updateCounter();
  });
  const tray = mountUploadTray({ api, limits: () => limits, onChange: () => updateSendState() });

  const textarea = h('textarea', {
    class: 'composer__input', rows: 1, placeholder: 'Write a message…', 'aria-label': 'Message', 'aria-describedby': 'composer-counter',
    'aria-autocomplete': 'list', 'aria-controls': 'composer-mentions',
    onkeydown: onKeyDown, oninput: onInput, onpaste: onPaste,
    onclick: () => updateSuggestions(), onblur: () => setTimeout(closeSuggestions, 150),
  });
  const quoteBox = h('div', { class: 'composer__quote', hidden: true });
  const mentionList = h('div', { class: 'composer__mentions', id: 'composer-mentions', role: 'listbox', 'aria-label': 'Members', hidden: true });
  const fileInput = h('input', {
    type: 'file', multiple: true, class: 'visually-hidden', id: 'composer-file', tabindex: '-1',
    onchange: () => {
      addFiles(fileInput.files);
      fileInput.value = '';
    },
  });
  const attachButton = h('button', {
    type: 'button', class: 'icon-button composer__attach', 'aria-label': 'Attach files', title: 'Attach files',
    onclick: () => fileInput.click(),
  }, icon('attach'));
  const sendButton = h('button', { type: 'button', class: 'composer__send', 'aria-label': 'Send', title: 'Send (Enter)', onclick: submit }, icon('send'));
  const banner = h('div', { class: 'composer__banner', hidden: true });
  const counter = h('span', { class: 'composer__counter', id: 'composer-counter', 'aria-live': 'polite', hidden: true });
  const element = h('div', { class: 'composer' },
    banner, quoteBox, mentionList, tray.element,
    h('div', { class: 'composer__row' }, attachButton, fileInput, textarea, counter, sendButton));

  function onKeyDown(event) {
    if (suggestions && !event.isComposing) {
      if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
        event.preventDefault();
        const step = event.key === 'ArrowDown' ? 1 : -1;
        suggestions.index = (suggestions.index + step + suggestions.users.length) % suggestions.users.length;
        renderSuggestions();
        return;
      }
      if (event.key === 'Enter' || event.key === 'Tab') {
        event.preventDefault();
        chooseSuggestion(suggestions.users[suggestions.index]);
        return;
      }
      if (event.key === 'Escape') {
        event.preventDefault();
        closeSuggestions();
        return;
      }
    }
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    } else if (event.key === 'Escape' && (editing || replying)) {
      event.preventDefault();
      if (editing) cancelEdit();
      else cancelReply();
    } else if ((event.key === 'ArrowUp' || event.key === 'ArrowDown') && (event.ctrlKey || event.metaKey) && !editing) {
      // Ctrl+Up answers the newest message, and each press an older one; Ctrl+Down goes back down.
      event.preventDefault();
      const next = replyStep(store.messagesOf(chatId), replying?.id ?? null, event.key === 'ArrowUp' ? 'older' : 'newer');
      if (next) reply(next);
      else cancelReply();
    } else if (event.key === 'ArrowUp' && !event.shiftKey && !event.ctrlKey && !event.metaKey && !event.altKey
      && !textarea.value && !editing && !tray.items.length) {
      const mine = lastEditable(store.messagesOf(chatId), store.state.user?.id);
      if (mine) {
        event.preventDefault();
        edit(mine);
      }
    }
  }

  // ---- @ mentions -----------------------------------------------------------------------------

  function updateSuggestions() {
    const chat = store.getChat(chatId);
    const at = mentionAt(textarea.value, textarea.selectionStart);
    if (!chat || !at || textarea.selectionStart !== textarea.selectionEnd) return closeSuggestions();
    const users = mentionCandidates(chat.members || [], at.query, { meId: store.state.user?.id });
    if (!users.length) return closeSuggestions();
    const previous = suggestions?.users[suggestions.index]?.id;
    const index = Math.max(0, users.findIndex((u) => u.id === previous));
    suggestions = { start: at.start, caret: textarea.selectionStart, users, index };
    renderSuggestions();
  }

  function renderSuggestions() {
    mentionList.hidden = !suggestions;
    if (!suggestions) {
      textarea.removeAttribute('aria-activedescendant');
      return replaceChildren(mentionList, []);
    }
    replaceChildren(mentionList, suggestions.users.map((user, i) => h('div', {
      class: `composer__mention${i === suggestions.index ? ' composer__mention--active' : ''}`,
      role: 'option', id: `composer-mention-${user.id}`, 'aria-selected': i === suggestions.index ? 'true' : 'false',
      dataset: { username: user.username },
      // mousedown, not click: the textarea keeps its focus and caret
      onmousedown: (event) => {
        event.preventDefault();
        chooseSuggestion(user);
      },
    },
    avatar(displayName(user), user.id, { size: 'sm', picture: app.picture(user) }),
    h('span', { class: 'composer__mention-name' }, userName(user, { handle: true })))));
    textarea.setAttribute('aria-activedescendant', `composer-mention-${suggestions.users[suggestions.index].id}`);
  }

  function chooseSuggestion(user) {
    if (!suggestions || !user) return;
    const next = insertMention(textarea.value, suggestions, user.username);
    textarea.value = next.value;
    textarea.setSelectionRange(next.caret, next.caret);
    closeSuggestions();
    onInput();
    textarea.focus();
  }

  function closeSuggestions() {
    if (!suggestions && mentionList.hidden) return;
    suggestions = null;
    renderSuggestions();
  }

  function onInput() {
    autosize();
    updateSuggestions();
    updateCounter();
    if (chatId && !editing) drafts.set(chatId, textarea.value);
    const now = Date.now();
    if (!editing && textarea.value && now - lastTypingAt > TYPING_EVERY_MS) {
      lastTypingAt = now;
      socket.typing(chatId);
    }
  }

  function onPaste(event) {
    const files = transferredFiles(event.clipboardData);
    if (files.length) {
      event.preventDefault();
      addFiles(files);
    }
  }

  function updateCounter() {
    const status = lengthStatus(textarea.value, maxLength);
    counter.hidden = !status.near;
    counter.textContent = status.over ? `${status.length - maxLength} over` : `${status.left}`;
    counter.title = `${status.length} of ${maxLength} characters`;
    counter.classList.toggle('composer__counter--over', status.over);
    if (status.over) textarea.setAttribute('aria-invalid', 'true');
    else textarea.removeAttribute('aria-invalid');
    if (!status.over && banner.dataset.kind === 'length') hideBanner();
  }

  function autosize() {
    textarea.style.height = 'auto';
    textarea.style.height = `${Math.min(textarea.scrollHeight, 180)}px`;
  }

  // ---- uploads ------------------------------------------------------------------------------

  /** Upload files to send in this chat (the picker, a paste, a drop); not while editing a message. */
  function addFiles(files) {
    if (!chatId || editing) return;
    tray.add(files);
    updateSendState();
  }

  function updateSendState() {
    sendButton.disabled = tray.busy();
  }

  // ---- send and edit ------------------------------------------------------------------------

  async function submit() {
    if (!chatId) return;
    const content = textarea.value.trim();
    if (editing) return saveEdit(content);
    if (tray.busy()) return; // still uploading
    const hasFiles = tray.items.some((item) => item.status === 'ready');
    if (!content && !hasFiles) return;
    const status = lengthStatus(content, maxLength);
    if (status.over) {
      showBanner(`This message is ${status.length} characters; the limit is ${maxLength}. Shorten it by ${status.length - maxLength} to send it.`, true);
      banner.dataset.kind = 'length';
      return;
    }
    // One message per file (a message carries one attachment); the text and the reply go with the first.
    const attachments = tray.takeReady();
    const reply_to = replying ? replySummary(replying) : null;
    if (!attachments.length) socket.sendMessage({ chat_id: chatId, content, attachment: null, reply_to });
    attachments.forEach((attachment, i) => socket.sendMessage({
      chat_id: chatId, content: i === 0 ? content : '', attachment, reply_to: i === 0 ? reply_to : null,
    }));
    cancelReply({ focus: false });
    textarea.value = '';
    updateCounter();
    drafts.delete(chatId);
    autosize();
    onSent();
  }

  // ---- replies ----------------------------------------------------------------------------------

  function reply(message) {
    if (!chatId || !message || message.chat_id !== chatId) return;
    if (editing) cancelEdit();
    replying = message;
    const sender = message.sender ? displayName(message.sender) : '';
    quoteBox.hidden = false;
    replaceChildren(quoteBox, [
      icon('reply', { size: 20 }),
      h('button', {
        type: 'button', class: 'composer__quote-body', 'aria-label': `Replying to ${sender}: show the message`,
        onclick: () => onQuoteClick(message.id),
      },
      h('span', { class: 'composer__quote-label' }, 'Reply to ', h('bdi', { text: sender })),
      h('span', { class: 'composer__quote-text', text: quoteText(message) })),
      h('button', { type: 'button', class: 'icon-button', 'aria-label': 'Cancel reply', title: 'Cancel reply (Esc)', onclick: () => cancelReply() },
        icon('close', { size: 18 })),
    ]);
    textarea.focus();
  }

  function cancelReply({ focus = true } = {}) {
    replying = null;
    quoteBox.hidden = true;
    replaceChildren(quoteBox, []);
    if (focus && chatId) textarea.focus();
  }

  function edit(message) {
    if (!editing) drafts.set(chatId, textarea.value);
    cancelReply({ focus: false });
    closeSuggestions();
    tray.clear();
    editing = message;
    textarea.value = message.content;
    showBanner('Editing message · Enter to save, Esc to cancel');
    autosize();
    textarea.focus();
  }

  function cancelEdit() {
    editing = null;
    textarea.value = drafts.get(chatId) || '';
    hideBanner();
    autosize();
  }

  async function saveEdit(content) {
    const message = editing;
    if (!content) return showBanner('A message cannot be empty; delete it instead.', true);
    if (content === message.content) return cancelEdit();
    try {
      const updated = await api.editMessage(message.chat_id, message.id, content);
      app.store.applyMessage(updated);
      cancelEdit();
    } catch (error) {
      showBanner(error.message, true);
    }
  }

  function showBanner(text, isError = false) {
    banner.hidden = false;
    banner.className = `composer__banner${isError ? ' composer__banner--error' : ''}`;
    banner.setAttribute('role', isError ? 'alert' : 'status');
    replaceChildren(banner, [h('span', { text }),
      editing ? h('button', { type: 'button', class: 'link-button', onclick: cancelEdit }, 'Cancel') : null]);
  }

  function hideBanner() {
    banner.hidden = true;
    delete banner.dataset.kind;
  }

  function setChat(id) {
    if (chatId) drafts.set(chatId, editing ? drafts.get(chatId) || '' : textarea.value);
    editing = null;
    cancelReply({ focus: false });
    closeSuggestions();
    hideBanner();
    tray.clear();
    chatId = id;
    textarea.value = drafts.get(id) || '';
    autosize();
    updateCounter();
    if (id && window.matchMedia('(pointer: fine)').matches) textarea.focus();
  }

  return {
    element,
    setChat,
    edit,
    reply,
    addFiles,
    destroy() {
      tray.clear();
    },
  };
}

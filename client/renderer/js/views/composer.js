// The composer: Enter sends, Shift+Enter adds a line; paste or pick an image to upload it with a
// progress bar and a preview; typing notices; editing one of my messages (Up in an empty composer
// edits the last one); replying (the quote above the input, Ctrl+Up / Ctrl+Down pick the message,
// Esc cancels); `@` offers the chat's members.
import { h, avatar, replaceChildren, userName } from '../dom.js';
import { fileSize, lengthStatus } from '../format.js';
import { displayName } from '../store.js';
import {
  quoteText, lastEditable, replyStep, mentionAt, mentionCandidates, insertMention, replySummary,
} from '../conversation.js';
import { icon } from '../icons.js';

const TYPING_EVERY_MS = 3000;
// The server's message limit when GET /api/config publishes it; this until then (the server's
// default MESSAGE_MAX_LENGTH).
const DEFAULT_MAX_LENGTH = 4000;
const IMAGE_TYPES = 'image/png,image/jpeg,image/gif,image/webp';
const MAX_UPLOAD_BYTES = 10 * 1024 * 1024;

export function mountComposer(app, { onSent, onQuoteClick = () => {} }) {
  const { api, socket, store } = app;
  let chatId = null;
  let lastTypingAt = 0;
  let editing = null; // the message being edited
  let replying = null; // the message being answered
  let suggestions = null; // { start, caret, users, index } while `@` autocomplete is open
  let upload = null; // { file, previewUrl, progress, attachment, error, cancelled }
  const drafts = new Map();
  let maxLength = DEFAULT_MAX_LENGTH;
  api.config?.().then((config) => {
    const limit = Number(config?.message_max_length ?? config?.limits?.message_max_length);
    if (Number.isInteger(limit) && limit > 0) maxLength = limit;
    updateCounter();
  });

  const textarea = h('textarea', {
    class: 'composer__input', rows: 1, placeholder: 'Write a message…', 'aria-label': 'Message', 'aria-describedby': 'composer-counter',
    'aria-autocomplete': 'list', 'aria-controls': 'composer-mentions',
    onkeydown: onKeyDown, oninput: onInput, onpaste: onPaste,
    onclick: () => updateSuggestions(), onblur: () => setTimeout(closeSuggestions, 150),
  });
  const quoteBox = h('div', { class: 'composer__quote', hidden: true });
  const mentionList = h('div', { class: 'composer__mentions', id: 'composer-mentions', role: 'listbox', 'aria-label': 'Members', hidden: true });
  const fileInput = h('input', {
    type: 'file', accept: IMAGE_TYPES, class: 'visually-hidden', id: 'composer-file', tabindex: '-1',
    onchange: () => {
      if (fileInput.files[0]) startUpload(fileInput.files[0]);
      fileInput.value = '';
    },
  });
  const attachButton = h('button', {
    type: 'button', class: 'icon-button composer__attach', 'aria-label': 'Attach an image', title: 'Attach an image',
    onclick: () => fileInput.click(),
  }, icon('attach'));
  const sendButton = h('button', { type: 'button', class: 'composer__send', 'aria-label': 'Send', title: 'Send (Enter)', onclick: submit }, icon('send'));
  const banner = h('div', { class: 'composer__banner', hidden: true });
  const counter = h('span', { class: 'composer__counter', id: 'composer-counter', 'aria-live': 'polite', hidden: true });
  const tray = h('div', { class: 'composer__upload', hidden: true });
  const element = h('div', { class: 'composer' },
    banner, quoteBox, mentionList, tray,
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
      && !textarea.value && !editing && !upload) {
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
    const file = [...(event.clipboardData?.files || [])].find((f) => f.type.startsWith('image/'));
    if (file) {
      event.preventDefault();
      startUpload(file);
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

  // ---- image upload -------------------------------------------------------------------------

  function startUpload(file) {
    if (!chatId || editing) return;
    discardUpload();
    if (!IMAGE_TYPES.split(',').includes(file.type)) {
      upload = { file, error: 'Only PNG, JPEG, GIF or WebP images can be sent.' };
      return renderUpload();
    }
    if (file.size > MAX_UPLOAD_BYTES) {
      upload = { file, error: `This image is ${fileSize(file.size)}; the limit is 10 MB.` };
      return renderUpload();
    }
    const current = { file, previewUrl: URL.createObjectURL(file), progress: 0, attachment: null, error: null, cancelled: false };
    upload = current;
    renderUpload();
    api.upload(file, (fraction) => {
      current.progress = fraction;
      if (upload === current) renderProgress();
    }).then((attachment) => {
      if (current.cancelled) return;
      current.attachment = attachment;
      renderUpload();
      textarea.focus();
    }, (error) => {
      if (current.cancelled) return;
      current.error = error.message || 'The server refused this image.';
      URL.revokeObjectURL(current.previewUrl);
      current.previewUrl = null;
      renderUpload();
    });
  }

  function discardUpload({ keepPreview = false } = {}) {
    if (upload) {
      upload.cancelled = true;
      if (upload.previewUrl && !keepPreview) URL.revokeObjectURL(upload.previewUrl);
    }
    upload = null;
    renderUpload();
  }

  let progressBar = null;
  function renderProgress() {
    if (progressBar && upload) {
      progressBar.value = Math.round(upload.progress * 100);
      progressBar.textContent = `${progressBar.value}%`;
    }
  }

  function renderUpload() {
    tray.hidden = !upload;
    progressBar = null;
    if (!upload) return replaceChildren(tray, []);
    const status = upload.error
      ? h('span', { class: 'field__error', role: 'alert', text: upload.error })
      : upload.attachment
        ? h('span', { class: 'muted', text: `Ready · ${fileSize(upload.file.size)}` })
        : (progressBar = h('progress', { class: 'composer__progress', max: 100, value: Math.round(upload.progress * 100), 'aria-label': 'Upload progress' }));
    replaceChildren(tray, [
      upload.previewUrl ? h('img', { class: 'composer__preview', src: upload.previewUrl, alt: 'Image to send' }) : null,
      h('div', { class: 'composer__upload-info' },
        h('span', { class: 'composer__filename', text: upload.file.name || 'Pasted image' }),
        status),
      h('button', { type: 'button', class: 'icon-button', 'aria-label': 'Remove image', onclick: () => discardUpload() }, icon('close', { size: 18 })),
    ]);
    updateSendState();
  }

  function updateSendState() {
    const uploading = upload && !upload.attachment && !upload.error;
    sendButton.disabled = Boolean(uploading);
  }

  // ---- send and edit ------------------------------------------------------------------------

  async function submit() {
    if (!chatId) return;
    const content = textarea.value.trim();
    if (editing) return saveEdit(content);
    if (upload && !upload.attachment && !upload.error) return; // still uploading
    const attachment = upload?.attachment ? { ...upload.attachment, previewUrl: upload.previewUrl } : null;
    if (!content && !attachment) return;
    const status = lengthStatus(content, maxLength);
    if (status.over) {
      showBanner(`This message is ${status.length} characters; the limit is ${maxLength}. Shorten it by ${status.length - maxLength} to send it.`, true);
      banner.dataset.kind = 'length';
      return;
    }
    socket.sendMessage({ chat_id: chatId, content, attachment, reply_to: replying ? replySummary(replying) : null });
    cancelReply({ focus: false });
    textarea.value = '';
    updateCounter();
    drafts.delete(chatId);
    if (attachment) discardUpload({ keepPreview: true });
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
    discardUpload();
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
    discardUpload();
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
    destroy() {
      discardUpload();
    },
  };
}

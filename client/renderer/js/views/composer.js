// The composer: Enter sends, Shift+Enter adds a line; paste or pick an image to upload it with a
// progress bar and a preview; typing notices; editing one of my messages.
import { h, replaceChildren } from '../dom.js';
import { fileSize, lengthStatus } from '../format.js';
import { icon } from '../icons.js';

const TYPING_EVERY_MS = 3000;
// The server's message limit when GET /api/config publishes it; this until then (the server's
// default MESSAGE_MAX_LENGTH).
const DEFAULT_MAX_LENGTH = 4000;
const IMAGE_TYPES = 'image/png,image/jpeg,image/gif,image/webp';
const MAX_UPLOAD_BYTES = 10 * 1024 * 1024;

export function mountComposer(app, { onSent }) {
  const { api, socket } = app;
  let chatId = null;
  let lastTypingAt = 0;
  let editing = null; // the message being edited
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
    onkeydown: onKeyDown, oninput: onInput, onpaste: onPaste,
  });
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
    banner, tray,
    h('div', { class: 'composer__row' }, attachButton, fileInput, textarea, counter, sendButton));

  function onKeyDown(event) {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    } else if (event.key === 'Escape' && editing) {
      event.preventDefault();
      cancelEdit();
    }
  }

  function onInput() {
    autosize();
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
    socket.sendMessage({ chat_id: chatId, content, attachment });
    textarea.value = '';
    updateCounter();
    drafts.delete(chatId);
    if (attachment) discardUpload({ keepPreview: true });
    autosize();
    onSent();
  }

  function edit(message) {
    if (!editing) drafts.set(chatId, textarea.value);
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
    destroy() {
      discardUpload();
    },
  };
}

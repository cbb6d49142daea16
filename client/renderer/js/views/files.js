// Files in the conversation: the card a file shows as (type, name, size, a download that sends the
// bearer token), the composer's upload tray (one row per file with its progress, cancel and retry),
// and the drop zone over the chat.
import { h, replaceChildren } from '../dom.js';
import { fileSize } from '../format.js';
import { icon } from '../icons.js';
import { fileType, carriesFiles, transferredFiles } from '../fileTypes.js';
import { createUploadQueue, looksLikeImage } from '../uploads.js';

// How long a saved file's object URL lives: the browser has read it by then.
const DOWNLOAD_URL_MS = 60_000;

/**
 * Save an attachment's bytes under its name. Its URL needs the bearer token, so a plain link cannot
 * fetch it: the bytes come as a Blob and are saved through an object URL.
 */
export async function downloadAttachment(api, attachment) {
  const blob = await api.attachmentBlob(attachment.url);
  const objectUrl = URL.createObjectURL(blob);
  const link = h('a', { href: objectUrl, download: attachment.name || 'file', hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(objectUrl), DOWNLOAD_URL_MS);
}

function typeBadge(name) {
  const type = fileType(name);
  return h('span', { class: `file-icon file-icon--${type.family}`, 'aria-hidden': 'true' },
    icon('file', { size: 40 }), h('span', { class: 'file-icon__label', text: type.label }));
}

/**
 * A file as a card: its type, name and size, and a download button. `details` adds a line (the
 * gallery's sender and date).
 */
export function fileCard(attachment, { api, details = null }) {
  const name = attachment.name || 'File';
  const status = h('span', { class: 'file-card__status', role: 'status' });
  const button = h('button', {
    type: 'button', class: 'icon-button file-card__download', 'aria-label': `Download ${name}`, title: 'Download',
    onclick: async (event) => {
      event.stopPropagation();
      button.disabled = true;
      status.textContent = '';
      try {
        await downloadAttachment(api, attachment);
      } catch (error) {
        status.textContent = `Download failed: ${error.message}`;
      } finally {
        button.disabled = false;
      }
    },
  }, icon('download', { size: 22 }));
  return h('div', { class: 'file-card', dataset: { attachmentId: attachment.id } },
    typeBadge(name),
    h('span', { class: 'file-card__body' },
      h('bdi', { class: 'file-card__name', title: name, text: name }),
      h('span', { class: 'file-card__meta', text: `${fileType(name).label} · ${fileSize(attachment.size || 0)}` }),
      details ? h('span', { class: 'file-card__details', text: details }) : null,
      status),
    button);
}

/**
 * The composer's upload tray. Each file added uploads at once in its own row; the composer takes the
 * uploaded ones when it sends. `limits()` gives the server's limits (uploads.uploadLimits).
 */
export function mountUploadTray({ api, limits, onChange = () => {} }) {
  const element = h('div', { class: 'composer__upload uploads', role: 'group', hidden: true, 'aria-label': 'Files to send' });
  const rows = new Map(); // key -> {row, progress}
  const previews = new Map(); // key -> object URL of an image's own bytes, shown while it uploads

  const queue = createUploadQueue({
    upload: (file, { onProgress, signal }) => api.upload(file, onProgress, { signal }),
    limits,
    onChange: (item) => {
      if (item) return showProgress(item);
      render();
      onChange();
    },
    onDiscard: (item) => {
      if (previews.has(item.key)) URL.revokeObjectURL(previews.get(item.key));
      previews.delete(item.key);
    },
  });

  function showProgress(item) {
    const bar = rows.get(item.key)?.progress;
    if (!bar) return;
    bar.value = Math.round(item.progress * 100);
    bar.textContent = `${bar.value}%`;
  }

  function statusOf(item) {
    if (item.status === 'failed') return h('span', { class: 'field__error', role: 'alert', text: item.error });
    if (item.status === 'ready') return h('span', { class: 'muted', text: `Ready · ${fileSize(item.file.size)}` });
    return h('progress', {
      class: 'composer__progress', max: 100, value: Math.round(item.progress * 100), 'aria-label': `Uploading ${item.file.name || 'file'}`,
    });
  }

  function row(item) {
    const name = item.file.name || 'Pasted file';
    // An image's own bytes as its thumbnail, never once it failed: no broken picture for a refusal.
    const preview = item.status !== 'failed' && previews.get(item.key);
    const node = h('div', { class: `upload upload--${item.status}`, dataset: { uploadKey: item.key } },
      preview ? h('img', { class: 'composer__preview', src: preview, alt: '' }) : typeBadge(name),
      h('div', { class: 'composer__upload-info' },
        h('bdi', { class: 'composer__filename', title: name, text: name }),
        statusOf(item)),
      item.status === 'failed' && item.retryable ? h('button', {
        type: 'button', class: 'icon-button', 'aria-label': `Retry ${name}`, title: 'Retry', onclick: () => queue.retry(item.key),
      }, icon('refresh', { size: 18 })) : null,
      h('button', {
        type: 'button', class: 'icon-button', title: item.status === 'uploading' ? 'Cancel' : 'Remove',
        'aria-label': `${item.status === 'uploading' ? 'Cancel upload of' : 'Remove'} ${name}`,
        onclick: () => queue.cancel(item.key),
      }, icon('close', { size: 18 })));
    rows.set(item.key, { row: node, progress: node.querySelector('progress') });
  }

  function render() {
    rows.clear();
    const items = queue.items;
    for (const item of items) row(item);
    element.hidden = !items.length;
    replaceChildren(element, [...rows.values()].map((r) => r.row));
  }

  return {
    element,
    get items() {
      return queue.items;
    },
    add(files) {
      const list = [...files];
      if (!list.length) return;
      const added = queue.add(list);
      for (const item of added) {
        if (item.status === 'uploading' && looksLikeImage(item.file, limits())) previews.set(item.key, URL.createObjectURL(item.file));
      }
      render();
    },
    busy: () => queue.busy(),
    /** The uploaded files, each `{...attachment, previewUrl}`, out of the tray (the preview URL goes with it). */
    takeReady() {
      return queue.takeReady().map((item) => {
        const previewUrl = previews.get(item.key) || null;
        previews.delete(item.key);
        return { ...item.attachment, previewUrl };
      });
    },
    clear: () => queue.clear(),
  };
}

/**
 * Files dragged over `target` show a drop zone over it; dropped ones go to `onFiles`. A file
 * dropped anywhere else in the window is ignored rather than opened in place of the app.
 */
export function mountDropZone(target, { onFiles, accepts = () => true }) {
  const zone = h('div', { class: 'drop-zone', hidden: true, 'aria-hidden': 'true' },
    h('div', { class: 'drop-zone__box' }, icon('attach', { size: 36 }), h('span', { text: 'Drop files to send them' })));
  target.append(zone);
  let depth = 0; // dragenter/dragleave pairs of the target's children

  const hide = () => {
    depth = 0;
    zone.hidden = true;
  };
  const onEnter = (event) => {
    if (!carriesFiles(event.dataTransfer) || !accepts()) return;
    event.preventDefault();
    depth += 1;
    zone.hidden = false;
  };
  const onOver = (event) => {
    if (!carriesFiles(event.dataTransfer) || !accepts()) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = 'copy';
    zone.hidden = false;
  };
  const onLeave = () => {
    depth = Math.max(0, depth - 1);
    if (!depth) zone.hidden = true;
  };
  const onDrop = (event) => {
    if (!carriesFiles(event.dataTransfer)) return;
    event.preventDefault();
    event.stopPropagation();
    hide();
    if (accepts()) onFiles(transferredFiles(event.dataTransfer));
  };
  const outside = (event) => {
    if (carriesFiles(event.dataTransfer) && !target.contains(event.target)) event.preventDefault();
  };
  target.addEventListener('dragenter', onEnter);
  target.addEventListener('dragover', onOver);
  target.addEventListener('dragleave', onLeave);
  target.addEventListener('drop', onDrop);
  window.addEventListener('dragover', outside);
  window.addEventListener('drop', outside);
  window.addEventListener('dragend', hide);
  return {
    element: zone,
    destroy() {
      window.removeEventListener('dragover', outside);
      window.removeEventListener('drop', outside);
      window.removeEventListener('dragend', hide);
    },
  };
}

// The composer's uploads: which files the server will take (its limits, from GET /api/config) and a
// queue in which each file uploads on its own, with its progress, a cancel and a retry. No DOM here:
// the tray (views/files.js) renders the queue's items and calls its methods.
import { fileSize } from './format.js';

/**
 * The limits a client checks before uploading, from GET /api/config. Without an answer (an older
 * server, no network yet) nothing is refused here: the server still decides.
 */
export function uploadLimits(config) {
  const bytes = (value) => (Number.isInteger(value) && value > 0 ? value : null);
  return {
    imageTypes: Array.isArray(config?.image_types) ? config.image_types.map(String) : [],
    imageMaxBytes: bytes(config?.upload_max_bytes),
    fileMaxBytes: bytes(config?.file_max_bytes),
  };
}

/** Whether the server will judge this file an image (it does so by its bytes; the type is a good guess). */
export function looksLikeImage(file, limits) {
  return limits.imageTypes.includes(file.type);
}

/** Why the server would refuse this file, in words, or null when it may be sent. */
export function refusalOf(file, limits) {
  const name = file.name || 'This file';
  if (!file.size) return `${name} is empty.`;
  const image = looksLikeImage(file, limits);
  const max = image ? limits.imageMaxBytes : limits.fileMaxBytes;
  if (max !== null && file.size > max) {
    return `${name} is ${fileSize(file.size)}; ${image ? 'an image' : 'a file'} can be at most ${fileSize(max)}.`;
  }
  return null;
}

/** True for the rejection of an upload that was cancelled (its AbortSignal fired). */
export function isAbort(error) {
  return error?.name === 'AbortError';
}

/**
 * @param {object} options
 * @param {Function} options.upload      (file, {onProgress, signal}) => Promise<Attachment>
 * @param {Function} options.limits      () => the current uploadLimits
 * @param {Function} [options.onChange]  (item | null): an item changed (its progress only: `item`), or the list did (null)
 * @param {Function} [options.onDiscard] (item): an item left the queue (cancelled, removed, sent)
 *
 * An item: `{key, file, status, progress, attachment, error, retryable}`, `status` one of
 * "uploading", "ready", "failed". A file refused here is "failed" and not retryable (it would be
 * refused again); one the server refused or that did not arrive can be retried.
 */
export function createUploadQueue({ upload, limits, onChange = () => {}, onDiscard = () => {} }) {
  let items = [];
  let nextKey = 1;
  const controllers = new Map(); // key -> AbortController of the request in flight

  function start(item) {
    const controller = new AbortController();
    controllers.set(item.key, controller);
    Object.assign(item, { status: 'uploading', progress: 0, error: null, attachment: null });
    upload(item.file, {
      signal: controller.signal,
      onProgress: (fraction) => {
        if (controllers.get(item.key) !== controller) return;
        item.progress = fraction;
        onChange(item);
      },
    }).then((attachment) => {
      if (controllers.get(item.key) !== controller) return;
      controllers.delete(item.key);
      Object.assign(item, { status: 'ready', progress: 1, attachment });
      onChange(null);
    }, (error) => {
      if (controllers.get(item.key) !== controller || isAbort(error)) return;
      controllers.delete(item.key);
      Object.assign(item, { status: 'failed', error: error?.message || 'The upload failed.', retryable: true });
      onChange(null);
    });
  }

  function leave(item) {
    controllers.get(item.key)?.abort();
    controllers.delete(item.key);
    items = items.filter((other) => other !== item);
    onDiscard(item);
  }

  const find = (key) => items.find((item) => item.key === key);

  return {
    get items() {
      return items;
    },
    /** Queue these files; each uploads at once unless it is refused here. Returns the new items. */
    add(files) {
      const added = [...files].map((file) => ({
        key: nextKey++, file, status: 'failed', progress: 0, attachment: null, error: null, retryable: false,
      }));
      items = [...items, ...added];
      for (const item of added) {
        const refusal = refusalOf(item.file, limits());
        if (refusal) item.error = refusal;
        else start(item);
      }
      onChange(null);
      return added;
    },
    /** Stop an upload in flight (its request is aborted) or drop a finished one. */
    cancel(key) {
      const item = find(key);
      if (!item) return;
      leave(item);
      onChange(null);
    },
    retry(key) {
      const item = find(key);
      if (!item || item.status !== 'failed' || !item.retryable) return;
      start(item);
      onChange(null);
    },
    /** Whether any file is still on its way. */
    busy: () => items.some((item) => item.status === 'uploading'),
    /** The uploaded items, in the order they were added, taken out of the queue (they are being sent). */
    takeReady() {
      const ready = items.filter((item) => item.status === 'ready');
      if (!ready.length) return [];
      items = items.filter((item) => item.status !== 'ready');
      onChange(null);
      return ready;
    },
    /** Forget everything (the chat changed): uploads in flight are aborted. */
    clear() {
      if (!items.length) return;
      for (const item of [...items]) leave(item);
      onChange(null);
    },
  };
}

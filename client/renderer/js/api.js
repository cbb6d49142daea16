// REST client for the API in docs/API.md (every operation and status: GET /api/schema/).
// The access token lives only in memory; the refresh token is kept in storage so a reload keeps the
// session. The access token is refreshed shortly before it expires and again on any 401, and however
// many requests fail at once there is only ever one refresh in flight (refresh tokens rotate, so two
// parallel refreshes would make the second one fail and sign the user out).

export const REFRESH_KEY = 'messenger.refresh';
const REFRESH_MARGIN_MS = 60_000; // refresh this long before the access token expires
const MIN_REFRESH_DELAY_MS = 5_000;

export class ApiError extends Error {
  constructor(status, body, retryAfter = null) {
    super(ApiError.describe(status, body));
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
    this.retryAfter = retryAfter;
  }

  /** Field errors in DRF's shape, `{field: ["message"]}`, without the non-field ones. */
  get fields() {
    if (!this.body || typeof this.body !== 'object' || Array.isArray(this.body)) return {};
    const fields = {};
    for (const [key, value] of Object.entries(this.body)) {
      if (key === 'detail' || key === 'non_field_errors') continue;
      fields[key] = Array.isArray(value) ? value.map(String) : [String(value)];
    }
    return fields;
  }

  static describe(status, body) {
    if (body && typeof body === 'object') {
      if (typeof body.detail === 'string') return body.detail;
      if (Array.isArray(body.non_field_errors)) return body.non_field_errors.join(' ');
      const first = Object.values(body)[0];
      if (Array.isArray(first) && first.length) return String(first[0]);
    }
    if (status === 0) return 'Cannot reach the server.';
    if (status === 413) return 'The file is too large.';
    if (status === 429) return 'Too many requests, please wait a moment.';
    return `Request failed (${status}).`;
  }
}

/** Decode the `exp` claim of a JWT (seconds since the epoch) into milliseconds, or null. */
export function tokenExpiry(token) {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const padded = payload + '='.repeat((4 - (payload.length % 4)) % 4);
    const claims = JSON.parse(atob(padded));
    return typeof claims.exp === 'number' ? claims.exp * 1000 : null;
  } catch {
    return null;
  }
}

function withQuery(path, query) {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== '') params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

async function readBody(response) {
  if (response.status === 204 || response.status === 205) return null;
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return { detail: text.slice(0, 200) };
  }
}

/**
 * @param {object} options
 * @param {string} options.baseUrl          server origin, e.g. "http://127.0.0.1:8000"
 * @param {Function} options.fetch          the fetch implementation
 * @param {Storage} options.storage         where the refresh token is kept (localStorage)
 * @param {Function} [options.createXhr]    () => XMLHttpRequest, for uploads with progress
 * @param {Function} [options.onSessionEnd] called once the refresh token is refused
 */
export function createApi({
  baseUrl,
  fetch: fetchImpl,
  storage,
  createXhr = () => new XMLHttpRequest(),
  onSessionEnd = () => {},
  now = Date.now,
  setTimer = setTimeout,
  clearTimer = clearTimeout,
}) {
  const origin = baseUrl.replace(/\/+$/, '');
  let accessToken = null;
  let accessExpiry = null;
  let refreshInFlight = null;
  let refreshTimer = null;
  let passwordChange = null; // a password change in flight: resolves to the new access token
  const tokenListeners = new Set(); // called with each new access token (open sockets renew with it)

  function url(path) {
    if (/^https?:\/\//i.test(path)) return path;
    return `${origin}${path.startsWith('/') ? '' : '/'}${path}`;
  }

  function hasSession() {
    return Boolean(storage.getItem(REFRESH_KEY));
  }

  function setTokens({ access, refresh }) {
    accessToken = access;
    accessExpiry = tokenExpiry(access);
    if (refresh) storage.setItem(REFRESH_KEY, refresh);
    scheduleRefresh();
    for (const listener of tokenListeners) {
      try {
        listener(access);
      } catch {
        /* a listener's failure is its own */
      }
    }
  }

  function clearTokens() {
    accessToken = null;
    accessExpiry = null;
    storage.removeItem(REFRESH_KEY);
    if (refreshTimer) clearTimer(refreshTimer);
    refreshTimer = null;
  }

  function scheduleRefresh() {
    if (refreshTimer) clearTimer(refreshTimer);
    refreshTimer = null;
    if (!accessExpiry) return;
    const delay = Math.max(MIN_REFRESH_DELAY_MS, accessExpiry - now() - REFRESH_MARGIN_MS);
    refreshTimer = setTimer(() => {
      refreshTimer = null;
      refresh().catch(() => {}); // a failure here is retried by the next request's 401
    }, delay);
  }

  function endSession() {
    const had = hasSession() || accessToken;
    clearTokens();
    if (had) onSessionEnd();
  }

  /**
   * Trade the stored refresh token for a new pair. Concurrent callers share one request.
   * Rejects with ApiError; a 400/401 answer means the session is over.
   */
  function refresh() {
    if (passwordChange) return passwordChange.catch(() => refresh());
    if (refreshInFlight) return refreshInFlight;
    const token = storage.getItem(REFRESH_KEY);
    if (!token) return Promise.reject(new ApiError(401, { detail: 'Not signed in.' }));
    refreshInFlight = exchange(token, false).finally(() => {
      refreshInFlight = null;
    });
    return refreshInFlight;
  }

  async function exchange(token, isRetry) {
    let response;
    try {
      response = await fetchImpl(url('/api/auth/refresh'), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ refresh: token }),
      });
    } catch {
      throw new ApiError(0, null);
    }
    const body = await readBody(response);
    if (!response.ok) {
      if (response.status === 400 || response.status === 401) {
        // Another tab sharing this storage may have rotated the token a moment ago: use its new one.
        const current = storage.getItem(REFRESH_KEY);
        if (current && current !== token && !isRetry) return exchange(current, true);
        endSession();
      }
      throw new ApiError(response.status, body);
    }
    setTokens(body);
    return body.access;
  }

  /** A usable access token, refreshing first when it is missing or about to expire. */
  async function accessTokenFresh() {
    if (accessToken && (!accessExpiry || accessExpiry - now() > 5_000)) return accessToken;
    return refresh();
  }

  /** `body` goes as JSON; `form` (a FormData) as multipart, its boundary set by fetch. */
  async function send(method, path, { body, form, query, auth = true, headers = {} } = {}) {
    const init = { method, headers: { Accept: 'application/json', ...headers } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    } else if (form !== undefined) {
      init.body = form;
    }
    const target = url(withQuery(path, query));
    const attempt = async (token) => {
      if (token) init.headers.Authorization = `Bearer ${token}`;
      try {
        return await fetchImpl(target, init);
      } catch {
        throw new ApiError(0, null);
      }
    };

    let response = await attempt(auth ? await accessTokenFresh() : null);
    if (auth && response.status === 401) {
      // The token may have been revoked or expired in flight: refresh once and try again.
      const usedToken = init.headers.Authorization?.slice(7);
      const token = accessToken && accessToken !== usedToken ? accessToken : await refresh();
      response = await attempt(token);
    }
    const data = await readBody(response);
    if (!response.ok) {
      const retryAfter = response.headers?.get?.('Retry-After') ?? null;
      throw new ApiError(response.status, data, retryAfter);
    }
    return data;
  }

  /** Every item of a paginated list, following `next` (bounded so a bad server cannot loop us). */
  async function all(path, query, maxPages = 50) {
    const items = [];
    let page = await send('GET', path, { query });
    for (let i = 0; page && i < maxPages; i += 1) {
      items.push(...(page.results || []));
      if (!page.next) break;
      page = await send('GET', page.next);
    }
    return items;
  }

  async function startSession(answer) {
    setTokens(answer);
    return answer.user;
  }

  // Object URLs for attachment bytes, which need the bearer token and so cannot be plain <img src>.
  const blobUrls = new Map();

  async function fetchBlob(path) {
    const attempt = async (token) =>
      fetchImpl(url(path), { headers: { Authorization: `Bearer ${token}` } });
    let response = await attempt(await accessTokenFresh());
    if (response.status === 401) response = await attempt(await refresh());
    if (!response.ok) throw new ApiError(response.status, null);
    return response.blob();
  }

  return {
    url,
    hasSession,
    refresh,
    accessToken: accessTokenFresh,
    /** The access token held now (no refresh), or null. */
    currentAccessToken: () => accessToken,
    /** Call `listener(access)` with every new access token (each refresh, login, password change); returns an unsubscribe. */
    onAccessToken(listener) {
      tokenListeners.add(listener);
      return () => tokenListeners.delete(listener);
    },
    request: send,

    async register({ username, email, password, display_name }) {
      const body = { username, email, password };
      if (display_name) body.display_name = display_name;
      return startSession(await send('POST', '/api/auth/register', { body, auth: false }));
    },
    async login({ username, password }) {
      return startSession(await send('POST', '/api/auth/login', { body: { username, password }, auth: false }));
    },
    /** Resume from the stored refresh token; resolves to Me, or null when there is no session. */
    async restore() {
      if (!hasSession()) return null;
      await refresh();
      return send('GET', '/api/auth/me');
    },
    async logout() {
      const token = storage.getItem(REFRESH_KEY);
      try {
        if (token) await send('POST', '/api/auth/logout', { body: { refresh: token }, auth: false });
      } catch {
        // Signing out locally matters more than telling a server we cannot reach.
      } finally {
        clearTokens();
        for (const objectUrl of blobUrls.values()) objectUrl.then((u) => globalThis.URL?.revokeObjectURL?.(u), () => {});
        blobUrls.clear();
      }
    },
    /** Drop the tokens here without asking the server: another tab of this origin signed out. */
    forget() {
      clearTokens();
    },
    /**
     * Change the password: every other session of the user ends (their sockets close with 4401);
     * this one continues with the answer's new pair. A wrong old password or a refused new one is
     * an ApiError 400 with `fields.old_password` / `fields.new_password`.
     */
    async changePassword({ oldPassword, newPassword }) {
      const body = { old_password: oldPassword, new_password: newPassword };
      await accessTokenFresh(); // so that the request below starts no refresh of its own
      // The server closes this user's sockets (4401) as it answers, and the socket may hear that
      // before this answer arrives: refresh() waits for the new pair (passwordChange) instead of
      // spending the old refresh token, which no longer works (that would end this session too).
      passwordChange = send('POST', '/api/auth/password', { body }).then((answer) => {
        passwordChange = null;
        setTokens(answer);
        return answer.access;
      }, (error) => {
        passwordChange = null; // the old tokens still work: a waiting refresh goes ahead with them
        throw error;
      });
      await passwordChange;
    },
    /** End every session of the user, this one too (the server answers 205). */
    async logoutAll() {
      try {
        await send('POST', '/api/auth/logout-all');
      } finally {
        clearTokens();
      }
    },
    me: () => send('GET', '/api/auth/me'),
    /** The server's limits, where it publishes them (GET /api/config); null where it does not. */
    config: () => send('GET', '/api/config', { auth: false }).catch(() => null),
    updateMe: (changes) => send('PATCH', '/api/auth/me', { body: changes }),
    /** Set my profile picture from an image (the server stores it at most 512 px); resolves to Me. */
    setAvatar(blob, name = 'avatar.png') {
      const form = new FormData();
      form.append('file', blob, name);
      return send('PUT', '/api/auth/me/avatar', { form });
    },
    removeAvatar: () => send('DELETE', '/api/auth/me/avatar'),
    /** The code mailed to the pending address makes it the account's email; resolves to Me. */
    confirmEmail: (code) => send('POST', '/api/auth/email/confirm', { body: { code } }),

    searchUsers: (q) => send('GET', '/api/users/search', { query: { q } }).then((page) => page.results || []),
    user: (id) => send('GET', `/api/users/${id}`),

    chats: () => all('/api/chats'),
    chat: (id) => send('GET', `/api/chats/${id}`),
    createDirectChat: (userId) => send('POST', '/api/chats', { body: { is_group: false, member_ids: [userId] } }),
    createGroup: ({ title, memberIds }) =>
      send('POST', '/api/chats', { body: { is_group: true, title, member_ids: memberIds } }),
    renameChat: (id, title) => send('PATCH', `/api/chats/${id}`, { body: { title } }),
    addMember: (id, userId) => send('POST', `/api/chats/${id}/members`, { body: { user_id: userId } }),
    /** Remove a member, or leave (`userId` is mine); an owner leaving may name `heirId`, the next owner. */
    removeMember: (id, userId, { heirId } = {}) =>
      send('DELETE', `/api/chats/${id}/members/${userId}`, { query: { heir_id: heirId } }),
    /** The owner makes a member an admin or an admin a member again; resolves to the Chat. */
    setRole: (id, userId, role) => send('PATCH', `/api/chats/${id}/members/${userId}`, { body: { role } }),

    /** History, newest first: `{results, has_more}`. */
    history: (id, { before, limit = 50 } = {}) => send('GET', `/api/chats/${id}/messages`, { query: { before, limit } }),
    /** Everything changed after `since`, ascending by version: `{results, has_more}`. */
    changesSince: (id, since, limit = 100) =>
      send('GET', `/api/chats/${id}/messages`, { query: { since, limit } }),
    sendMessage: (id, { content, attachment_id, client_id, reply_to_id, forward_of_id }) => {
      const body = { client_id };
      if (content) body.content = content;
      if (attachment_id) body.attachment_id = attachment_id;
      if (reply_to_id) body.reply_to_id = reply_to_id;
      if (forward_of_id) body.forward_of_id = forward_of_id;
      return send('POST', `/api/chats/${id}/messages`, { body });
    },
    editMessage: (id, messageId, content) =>
      send('PATCH', `/api/chats/${id}/messages/${messageId}`, { body: { content } }),
    deleteMessage: (id, messageId) => send('DELETE', `/api/chats/${id}/messages/${messageId}`),
    markRead: (id, messageId) => send('POST', `/api/chats/${id}/read`, { body: { message_id: messageId } }),
    /** Add or remove my reaction; the emoji is one path segment, URL-encoded. Resolves to the Message. */
    react: (id, messageId, emoji) =>
      send('PUT', `/api/chats/${id}/messages/${messageId}/reactions/${encodeURIComponent(emoji)}`),
    unreact: (id, messageId, emoji) =>
      send('DELETE', `/api/chats/${id}/messages/${messageId}/reactions/${encodeURIComponent(emoji)}`),
    pin: (id, messageId) => send('POST', `/api/chats/${id}/pins`, { body: { message_id: messageId } }),
    unpin: (id, messageId) => send('DELETE', `/api/chats/${id}/pins/${messageId}`),
    /** Pinned messages, most recently pinned first (the first page). */
    pins: (id) => send('GET', `/api/chats/${id}/pins`).then((page) => page.results || []),
    /** Messages that mention me, newest first: `{results, has_more}`. */
    mentions: ({ before, limit = 30 } = {}) => send('GET', '/api/mentions', { query: { before, limit } }),
    /** Messages of my chats matching `q` (3 characters or more), newest first: `{results, has_more}`. */
    searchMessages: (q, { chatId, before, limit = 30 } = {}) =>
      send('GET', '/api/search/messages', { query: { q, chat_id: chatId, before, limit } }),
    setMuted: (id, muted) => send('PATCH', `/api/chats/${id}`, { body: { muted } }),
    /** A chat's images (`kind` "image") or other files ("file"), newest first: `{results, next}`. */
    media: (id, next, kind = 'image') => (next ? send('GET', next) : send('GET', `/api/chats/${id}/media`, { query: { kind } })),
    /** The same rows across all my chats, each with `chat_id`: `{results, next}`. */
    mediaFeed: (next, kind = 'image') => (next ? send('GET', next) : send('GET', '/api/media', { query: { kind } })),

    /**
     * Upload a file (an image or any other) as multipart `file`, reporting progress as a fraction
     * 0..1. XMLHttpRequest rather than fetch because only XHR reports upload progress. `signal`
     * aborts the request; the promise then rejects with an AbortError.
     */
    async upload(file, onProgress = () => {}, { signal } = {}) {
      const aborted = () => new DOMException('The upload was cancelled.', 'AbortError');
      const go = (token) =>
        new Promise((resolve, reject) => {
          if (signal?.aborted) return reject(aborted());
          const xhr = createXhr();
          const onAbort = () => {
            xhr.abort();
            reject(aborted());
          };
          signal?.addEventListener('abort', onAbort, { once: true });
          xhr.onloadend = () => signal?.removeEventListener('abort', onAbort);
          xhr.open('POST', url('/api/attachments'));
          xhr.setRequestHeader('Authorization', `Bearer ${token}`);
          xhr.setRequestHeader('Accept', 'application/json');
          xhr.upload.onprogress = (event) => {
            if (event.lengthComputable) onProgress(event.loaded / event.total);
          };
          xhr.onload = () => {
            let body = null;
            try {
              body = xhr.responseText ? JSON.parse(xhr.responseText) : null;
            } catch {
              body = { detail: String(xhr.responseText).slice(0, 200) };
            }
            if (xhr.status >= 200 && xhr.status < 300) {
              onProgress(1);
              resolve(body);
            } else reject(new ApiError(xhr.status, body));
          };
          xhr.onerror = () => reject(new ApiError(0, null));
          const form = new FormData();
          form.append('file', file, file.name || 'file');
          xhr.send(form);
        });
      try {
        return await go(await accessTokenFresh());
      } catch (error) {
        if (error instanceof ApiError && error.status === 401) return go(await refresh());
        throw error;
      }
    },

    /** An attachment's bytes as a Blob, fetched with the bearer token (a file to save, never cached). */
    attachmentBlob: (path) => fetchBlob(path),

    /** An object URL for an attachment's bytes (cached per URL for the session). */
    attachmentUrl(path) {
      if (!blobUrls.has(path)) {
        const pending = fetchBlob(path).then((blob) => URL.createObjectURL(blob));
        pending.catch(() => blobUrls.delete(path));
        blobUrls.set(path, pending);
      }
      return blobUrls.get(path);
    },
  };
}

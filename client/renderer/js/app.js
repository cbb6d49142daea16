// Start-up and the glue between the modules: pick the server, restore the session, show the login
// screen or the main layout, and react to events that need more than a store update (marking a
// visible chat read, notifications, the unread total for the tray and the title).
import { createApi, ApiError, REFRESH_KEY } from './api.js';
import { createStore, displayName } from './store.js';
import { createSocket, socketUrl } from './socket.js';
import { createActions } from './actions.js';
import { shouldNotify } from './conversation.js';
import { h, replaceChildren } from './dom.js';
import { preview } from './format.js';
import { renderLogin } from './views/login.js';
import { mountSidebar } from './views/sidebar.js';
import { mountChat } from './views/chat.js';
import { mountPanel } from './views/panel.js';
import { watchRemovals } from './views/removed.js';
import { createPictures } from './avatar.js';
import { startTheme } from './theme.js';
import { readNotificationPrefs } from './preferences.js';
import { chime } from './sound.js';

startTheme();

const desktop = window.messengerDesktop || null;

/** In Electron the address comes from the settings; in a browser the page's own origin is the server. */
function serverAddress() {
  if (desktop && desktop.serverUrl) return desktop.serverUrl;
  if (location.protocol === 'http:' || location.protocol === 'https:') return location.origin;
  return 'http://127.0.0.1:8000';
}

const root = document.getElementById('root');
const serverUrl = serverAddress();
const store = createStore({ storage: localStorage });
let teardown = [];

const api = createApi({
  baseUrl: serverUrl,
  fetch: window.fetch.bind(window),
  storage: localStorage,
  onSessionEnd: () => {
    leaveApp();
    showLogin('Your session has ended. Please sign in again.');
  },
});

const socket = createSocket({
  url: socketUrl(serverUrl),
  api,
  store,
  WebSocket: window.WebSocket,
  onEvent: handleEvent,
  log: (...args) => console.warn(...args),
});

const app = {
  api,
  store,
  socket,
  actions: createActions({ api, store }),
  desktop,
  serverUrl,
  openChat,
  openPanel: (kind) => panel?.open(kind),
  closePanel: () => panel?.close(),
  logout,
  markRead,
  picture: createPictures(api),
};
let panel = null;
let chatView = null;
// Exposed for debugging and the end-to-end tests (e.g. to drop the socket on purpose).
window.messenger = app;

// ---- session ----------------------------------------------------------------------------------

async function boot() {
  let user = null;
  try {
    user = await api.restore();
  } catch (error) {
    if (error instanceof ApiError && error.status === 0 && api.hasSession()) {
      showOffline();
      return;
    }
  }
  if (user) enterApp(user);
  else showLogin();
}

function showOffline() {
  replaceChildren(root, h('div', { class: 'splash', role: 'alert' },
    h('img', { src: './assets/icon.png', alt: '', width: 72, height: 72 }),
    h('p', { text: `Cannot reach the server at ${serverUrl}.` }),
    h('button', { class: 'button', type: 'button', onclick: () => boot() }, 'Try again')));
  window.addEventListener('online', () => boot(), { once: true });
}

function showLogin(notice = '') {
  document.title = 'Messenger';
  desktop?.setUnread(0);
  replaceChildren(root, renderLogin({ api, desktop, serverUrl, notice, onSignedIn: enterApp }));
}

function enterApp(user) {
  signedIn = true;
  store.setUser(user);
  const layout = h('div', { class: 'layout' });
  replaceChildren(root, layout);
  const sidebar = mountSidebar(layout, app);
  const chat = mountChat(layout, app);
  chatView = chat;
  panel = mountPanel(layout, app);
  teardown = [sidebar, chat, panel, watchRemovals(app)];

  const unsubscribe = store.subscribe((topics) => {
    if (topics.has('chats')) updateUnreadTotal();
    if (topics.has('active') || topics.has('chats')) {
      layout.classList.toggle('layout--chat-open', store.state.activeChatId !== null);
    }
  });
  teardown.push({ destroy: unsubscribe });

  api.chats().then((chats) => {
    store.setChats(chats);
    openFromHash();
  }, (error) => console.warn('could not load chats', error));
  socket.start();
}

function leaveApp() {
  signedIn = false;
  socket.stop();
  for (const part of teardown) part?.destroy?.();
  teardown = [];
  panel = null;
  chatView = null;
  store.reset();
  if (location.hash) history.replaceState(null, '', location.pathname + location.search);
}

async function logout(notice = '') {
  socket.stop();
  await api.logout();
  sessionChannel?.postMessage({ type: 'signed-out' });
  leaveApp();
  showLogin(notice);
}

// Every tab of this origin shares the refresh token, so signing out in one signs out all: the
// others hear it on a BroadcastChannel, or, where there is none, from the token leaving storage.
const sessionChannel = 'BroadcastChannel' in window ? new BroadcastChannel('messenger.session') : null;
let signedIn = false;

function signedOutElsewhere() {
  if (!signedIn) return;
  socket.stop();
  api.forget();
  leaveApp();
  showLogin('You signed out in another tab.');
}

sessionChannel?.addEventListener('message', (event) => {
  if (event.data?.type === 'signed-out') signedOutElsewhere();
});
window.addEventListener('storage', (event) => {
  if ((event.key === REFRESH_KEY && event.newValue === null) || event.key === null) signedOutElsewhere();
});

// ---- navigation -------------------------------------------------------------------------------

/** Open a chat; with `messageId`, at that message (loading older history as needed). */
function openChat(chatId, { messageId = null } = {}) {
  store.setActiveChat(chatId);
  if (chatId && messageId) chatView?.reveal(chatId, messageId);
  const hash = chatId ? `#/chat/${chatId}` : '';
  if (location.hash !== hash) history.replaceState(null, '', hash || location.pathname + location.search);
}

function openFromHash() {
  const match = /^#\/chat\/(\d+)$/.exec(location.hash);
  if (match && store.getChat(Number(match[1]))) openChat(Number(match[1]));
}

window.addEventListener('hashchange', openFromHash);
window.addEventListener('online', () => socket.kick());
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') socket.kick();
});
desktop?.onOpenChat?.((chatId) => store.getChat(chatId) && openChat(chatId));

// ---- read state, notifications, unread total --------------------------------------------------

const readInFlight = new Map();

/**
 * Mark a chat read up to a message the reader has seen. The chat view calls it only for messages
 * that were on screen while the page was visible and focused; nothing here guesses.
 */
function markRead(chatId, upTo) {
  if (document.visibilityState !== 'visible') return;
  const chat = store.getChat(chatId);
  if (!chat || !upTo || upTo <= (chat.last_read_id || 0)) return;
  if (readInFlight.get(chatId) >= upTo) return;
  readInFlight.set(chatId, upTo);
  const me = store.state.user.id;
  store.applyRead({ chat_id: chatId, user_id: me, last_read_id: upTo, unread_count: null });
  api.markRead(chatId, upTo).then(
    (answer) => store.applyRead({ chat_id: chatId, user_id: me, ...answer }),
    (error) => console.warn('mark read failed', error),
  ).finally(() => {
    if (readInFlight.get(chatId) === upTo) readInFlight.delete(chatId);
  });
}

function handleEvent(frame) {
  if (frame.type !== 'message.created') return;
  const message = frame.message;
  const me = store.state.user;
  if (!me || !shouldNotify(message, store.getChat(message.chat_id), me.id)) return;
  if (document.hasFocus() && document.visibilityState === 'visible') return;
  // The user's choices in Settings (this device only): a banner, a sound, both or neither.
  const prefs = readNotificationPrefs(localStorage);
  if (prefs.sound) chime();
  if (prefs.desktop) notify(message);
}

function notify(message) {
  const chat = store.getChat(message.chat_id);
  const sender = displayName(message.sender);
  const title = chat && chat.is_group ? `${sender} · ${store.chatTitle(chat)}` : sender;
  const body = preview(message);
  if (desktop) {
    desktop.notify({ title, body, chatId: message.chat_id });
  } else if ('Notification' in window && Notification.permission === 'granted') {
    const notification = new Notification(title, { body, tag: `chat-${message.chat_id}`, icon: './assets/icon.png' });
    notification.onclick = () => {
      window.focus();
      openChat(message.chat_id);
      notification.close();
    };
  }
}

function updateUnreadTotal() {
  const total = store.unreadTotal();
  document.title = total ? `(${total}) Messenger` : 'Messenger';
  desktop?.setUnread(total);
}

// Typing notices end on their own after a few seconds.
setInterval(() => store.expireTyping(), 1000);

boot();

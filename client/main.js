// Electron main process: one window, one instance, a tray icon with the unread total, native
// notifications while the window is in the background, and the server address setting.
// Everything else lives in the renderer, which is the same code Django serves at `/`; the decisions
// (addresses, navigation, permissions) live in policy.js, which `npm test` checks without Electron.
const { app, BrowserWindow, Tray, Menu, Notification, ipcMain, nativeImage, session, shell } = require('electron');
const fs = require('node:fs');
const path = require('node:path');
const { normaliseServerUrl, navigationDecision, permissionAllowed } = require('./policy');

const DEFAULT_SERVER = 'http://127.0.0.1:8000';
const PAGE = path.join(__dirname, 'renderer', 'index.html');
const settingsFile = () => path.join(app.getPath('userData'), 'settings.json');

function readSettings() {
  try {
    return { serverUrl: DEFAULT_SERVER, ...JSON.parse(fs.readFileSync(settingsFile(), 'utf8')) };
  } catch {
    return { serverUrl: process.env.MESSENGER_SERVER || DEFAULT_SERVER };
  }
}

function writeSettings(settings) {
  fs.mkdirSync(path.dirname(settingsFile()), { recursive: true });
  fs.writeFileSync(settingsFile(), JSON.stringify(settings, null, 2));
}

let window = null;
let tray = null;
let settings = null;
let unreadTotal = 0;
let quitting = false;

function createWindow() {
  window = new BrowserWindow({
    width: 1100,
    height: 720,
    minWidth: 360,
    minHeight: 480,
    title: 'Messenger',
    icon: path.join(__dirname, 'build', 'icon.png'),
    show: false,
    webPreferences: {
      preload: path.join(__dirname, 'preload.js'),
      contextIsolation: true,
      nodeIntegration: false,
      sandbox: true,
      webviewTag: false,
      spellcheck: false,
    },
  });
  window.once('ready-to-show', () => window.show());
  window.on('focus', () => window.flashFrame(false));
  // Closing hides to the tray so messages keep arriving; Quit in the tray menu exits.
  window.on('close', (event) => {
    if (quitting || !tray) return;
    event.preventDefault();
    window.hide();
  });
  // Links in messages open in the system browser, never inside the app.
  window.webContents.setWindowOpenHandler(({ url }) => {
    if (navigationDecision(url, PAGE) === 'external') shell.openExternal(url);
    return { action: 'deny' };
  });
  // The window shows the app's own page and nothing else: a page anywhere else would get the bridge.
  const guard = (event, url) => {
    const decision = navigationDecision(url, PAGE);
    if (decision === 'allow') return;
    event.preventDefault();
    if (decision === 'external') shell.openExternal(url);
  };
  window.webContents.on('will-navigate', guard);
  window.webContents.on('will-redirect', guard);
  window.webContents.on('will-attach-webview', (event) => event.preventDefault());
  window.loadFile(PAGE);
}

function showWindow() {
  if (!window) return createWindow();
  if (window.isMinimized()) window.restore();
  window.show();
  window.focus();
}

const trayImage = (unread) => nativeImage.createFromPath(path.join(__dirname, 'build', unread ? 'tray-unread.png' : 'tray.png'));

function createTray() {
  tray = new Tray(trayImage(unreadTotal > 0));
  tray.setContextMenu(Menu.buildFromTemplate([
    { label: 'Open Messenger', click: showWindow },
    { type: 'separator' },
    { label: 'Quit', click: () => app.quit() },
  ]));
  tray.on('click', showWindow);
  updateUnread(unreadTotal);
}

function updateUnread(total) {
  const hadUnread = unreadTotal > 0;
  unreadTotal = Math.max(0, Number(total) || 0);
  const label = unreadTotal ? `Messenger — ${unreadTotal} unread` : 'Messenger';
  tray?.setToolTip(label);
  // The tray icon carries a dot while anything is unread (the count is in its tooltip).
  if (tray && hadUnread !== unreadTotal > 0) tray.setImage(trayImage(unreadTotal > 0));
  if (process.platform !== 'win32') app.setBadgeCount(unreadTotal); // dock / Unity launcher
  if (window) {
    window.setTitle(label);
    if (process.platform === 'win32') {
      window.setOverlayIcon(unreadTotal ? nativeImage.createFromPath(path.join(__dirname, 'build', 'tray.png')) : null,
        label);
    }
  }
}

/**
 * The renderer is loaded from file://, so to the server it is a foreign origin ("null"): its
 * WebSocket would be refused and its fetches would need CORS. For the configured server only,
 * requests carry the server's own Origin, and answers allow the file:// page to read them (the
 * bearer token, not cookies, is the credential, so no other site gains anything from this).
 */
function presentServerOrigin() {
  const web = session.defaultSession.webRequest;
  const http = `${settings.serverUrl}/*`;
  const filter = { urls: [http, `${settings.serverUrl.replace(/^http/, 'ws')}/*`] };
  const rewriteOrigin = (details, callback) => {
    const headers = { ...details.requestHeaders };
    for (const name of Object.keys(headers)) if (name.toLowerCase() === 'origin') delete headers[name];
    headers.Origin = settings.serverUrl;
    callback({ requestHeaders: headers });
  };
  try {
    web.onBeforeSendHeaders(filter, rewriteOrigin);
  } catch {
    // Older Electron without ws:// filters: HTTP only; the server accepts file:// WebSockets anyway.
    web.onBeforeSendHeaders({ urls: [http] }, rewriteOrigin);
  }
  web.onHeadersReceived({ urls: [http] }, (details, callback) => {
    const headers = {};
    for (const [name, value] of Object.entries(details.responseHeaders || {})) {
      if (!name.toLowerCase().startsWith('access-control-')) headers[name] = value;
    }
    headers['Access-Control-Allow-Origin'] = ['*'];
    headers['Access-Control-Allow-Headers'] = ['Authorization, Content-Type, Accept'];
    headers['Access-Control-Allow-Methods'] = ['GET, POST, PATCH, DELETE, OPTIONS'];
    headers['Access-Control-Expose-Headers'] = ['Retry-After'];
    // A CORS preflight must succeed even though the API answers OPTIONS without a token with 401.
    if (details.method === 'OPTIONS') callback({ responseHeaders: headers, statusLine: 'HTTP/1.1 204 No Content' });
    else callback({ responseHeaders: headers });
  });
}

/** Quit, the edit commands (and their shortcuts) and zoom: no Reload, no developer tools, no links. */
function applicationMenu() {
  const fileMenu = process.platform === 'darwin'
    ? { role: 'appMenu' }
    : { label: '&File', submenu: [{ label: 'Close Window', accelerator: 'Ctrl+W', click: () => window?.close() },
      { type: 'separator' }, { role: 'quit' }] };
  return Menu.buildFromTemplate([
    fileMenu,
    { role: 'editMenu' },
    { label: '&View', submenu: [{ role: 'resetZoom' }, { role: 'zoomIn' }, { role: 'zoomOut' }, { type: 'separator' },
      { role: 'togglefullscreen' }] },
  ]);
}

/** Notifications only; every other request (camera, geolocation, ...) and check is refused. */
function refuseOtherPermissions() {
  session.defaultSession.setPermissionRequestHandler((_contents, permission, callback) => {
    callback(permissionAllowed(permission));
  });
  session.defaultSession.setPermissionCheckHandler((_contents, permission) => permissionAllowed(permission));
}

ipcMain.on('settings:get', (event) => {
  event.returnValue = { serverUrl: settings.serverUrl };
});

ipcMain.handle('settings:set-server', (_event, value) => {
  settings = { ...settings, serverUrl: normaliseServerUrl(value) };
  writeSettings(settings);
  presentServerOrigin();
  // Reload the page (the preload asks for the address again) in the same window: destroying the
  // only window would end the app through 'window-all-closed' before a new one existed.
  if (window) window.loadFile(PAGE);
  else createWindow();
  return settings.serverUrl;
});

ipcMain.on('unread:set', (_event, total) => updateUnread(total));

ipcMain.on('notify', (_event, { title, body, chatId }) => {
  if (!Notification.isSupported() || (window && window.isFocused())) return;
  const notification = new Notification({ title: String(title).slice(0, 120), body: String(body).slice(0, 300), silent: false });
  notification.on('click', () => {
    showWindow();
    window?.webContents.send('open-chat', chatId);
  });
  notification.show();
  window?.flashFrame(true);
});

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  app.on('second-instance', showWindow);
  app.on('before-quit', () => {
    quitting = true;
  });
  app.whenReady().then(() => {
    settings = readSettings();
    if (process.platform === 'win32') app.setAppUserModelId('org.messenger.desktop');
    Menu.setApplicationMenu(applicationMenu());
    refuseOtherPermissions();
    presentServerOrigin();
    createWindow();
    createTray();
    app.on('activate', showWindow);
  });
  app.on('window-all-closed', () => {
    if (process.platform !== 'darwin') app.quit();
  });
}

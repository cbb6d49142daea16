// The desktop app end to end: the packaged app (runtime.sh) on a desktop of its own with a tray
// and a notification daemon, against a live server (run.sh starts all of it). One app, one story,
// in order: each test leaves the app where the next one starts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { _electron as electron } from 'playwright-core';

const APP_DIR = required('MESSENGER_APP_DIR');
const SERVER = required('MESSENGER_TEST_SERVER');
const WORK = required('MESSENGER_TEST_WORK');
const SHOTS = required('MESSENGER_SHOTS');
const PASSWORD = 'Quiet-Harbor-2048';
const TIMEOUT = 20_000;
// The server is a fresh one of this run, so the names are fixed (and the screenshots stable).
const NAMES = { alice: 'Alice Martin', bob: 'Bob Chen' };
const EXECUTABLE = path.join(APP_DIR, 'messenger');
// The app's user data (settings.json, the single-instance lock) lives in a folder of this run.
const appEnv = { ...process.env, XDG_CONFIG_HOME: path.join(WORK, 'config'), MESSENGER_SERVER: SERVER };
// Chromium refuses to run as root with its sandbox; as another user the sandbox stays on.
const appArgs = process.getuid?.() === 0 ? ['--no-sandbox'] : [];
const settingsFile = path.join(WORK, 'config', 'messenger-desktop', 'settings.json');

let app;
let appClosed = false;
let page;
const people = {};
let chat;
let trayWithoutUnread;

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this through client/e2e/run.sh (make desktop-test)`);
  return value;
}

async function api(pathname, { method = 'GET', body, as } = {}) {
  const response = await fetch(`${SERVER}${pathname}`, {
    method,
    headers: { 'Content-Type': 'application/json', ...(as ? { Authorization: `Bearer ${people[as].access}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = await response.json();
  assert.ok(response.ok, `${method} ${pathname}: ${response.status} ${JSON.stringify(answer)}`);
  return answer;
}

const bobSays = (content) => api(`/api/chats/${chat.id}/messages`, { method: 'POST', body: { content }, as: 'bob' });
const x = (...args) => execFileSync('xdotool', args, { encoding: 'utf8' }).trim();
const mainWindow = (fn, arg) => app.evaluate(({ BrowserWindow }, [source, value]) => {
  // eslint-disable-next-line no-new-func
  const call = new Function('win', 'value', `return (${source})(win, value);`);
  return call(BrowserWindow.getAllWindows()[0], value);
}, [fn.toString(), arg]);

async function eventually(check, what, timeout = TIMEOUT) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    last = await check();
    if (last) return last;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail(`timed out after ${timeout} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
}

/** The tray as the desktop shows it: trayer's window, cropped from the screen. */
function trayGeometry() {
  const id = x('search', '--onlyvisible', '--class', 'trayer').split('\n')[0];
  const geometry = Object.fromEntries(x('getwindowgeometry', '--shell', id).split('\n').map((line) => line.split('=')));
  return { x: Number(geometry.X), y: Number(geometry.Y), width: Number(geometry.WIDTH), height: Number(geometry.HEIGHT) };
}

function trayPixels() {
  const { x: left, y: top, width, height } = trayGeometry();
  return execFileSync('import', ['-silent', '-window', 'root', '-crop', `${width}x${height}+${left}+${top}`, 'rgb:-']);
}

function screenshot(name, crop) {
  const file = path.join(SHOTS, name);
  execFileSync('import', ['-silent', '-window', 'root', ...(crop ? ['-crop', crop] : []), '+repage', file]);
  return file;
}

function dunstHistory() {
  const history = JSON.parse(execFileSync('dunstctl', ['history'], { encoding: 'utf8' }));
  return history.data.flat().map((item) => ({ summary: item.summary.data, body: item.body.data, appname: item.appname.data }));
}

const displayedNotifications = () => Number(execFileSync('dunstctl', ['count', 'displayed'], { encoding: 'utf8' }).trim());

async function launch() {
  const launched = await electron.launch({ executablePath: EXECUTABLE, args: appArgs, env: appEnv, timeout: 60_000 });
  const first = await launched.firstWindow();
  first.setDefaultTimeout(TIMEOUT);
  // Under Playwright document.hasFocus() is always true; the app must see its real focus, as a
  // user's would, to tell when a notification is due.
  const cdp = await first.context().newCDPSession(first);
  await cdp.send('Emulation.setFocusEmulationEnabled', { enabled: false });
  return [launched, first];
}

before(async () => {
  for (const name of Object.keys(NAMES)) {
    people[name] = await api('/api/auth/register', {
      method: 'POST',
      body: { username: name, email: `${name}@example.com`, password: PASSWORD, display_name: NAMES[name] },
    });
  }
  chat = await api('/api/chats', { method: 'POST', body: { is_group: false, member_ids: [people.bob.user.id] }, as: 'alice' });
  [app, page] = await launch();
  app.once('close', () => {
    appClosed = true;
  });
});

after(async () => {
  if (app && !appClosed) await app.close();
});

test('the application menu is the minimal one: no reload, no developer tools, no links', async () => {
  const menu = await app.evaluate(({ Menu }) => {
    const walk = (items) => items.map((item) => ({ label: item.label, role: item.role || null, submenu: item.submenu ? walk(item.submenu.items) : null }));
    return walk(Menu.getApplicationMenu().items);
  });
  assert.deepEqual(menu.map((item) => item.label.replace('&', '')), ['File', 'Edit', 'View']);
  const roles = JSON.stringify(menu).toLowerCase();
  for (const unwanted of ['reload', 'toggledevtools', 'forcereload', 'help', 'electronjs']) {
    assert.ok(!roles.includes(unwanted), `the menu has ${unwanted}: ${roles}`);
  }
});

test('changing the server address keeps the app running and reloads the page with it', async () => {
  const other = SERVER.replace('127.0.0.1', 'localhost');
  const pid = app.process().pid;
  await page.locator('.auth__server summary').click();
  await page.fill('#server-url', `${other}/ignored/path`);
  await page.locator('.auth__server button[type=submit]').click();

  await page.locator('.auth__server summary', { hasText: `Server: ${other}` }).waitFor();
  assert.equal(app.process().exitCode, null, 'the app is still running');
  assert.equal(app.process().pid, pid);
  assert.equal(await app.evaluate(({ BrowserWindow }) => BrowserWindow.getAllWindows().length), 1);
  assert.equal(JSON.parse(fs.readFileSync(settingsFile, 'utf8')).serverUrl, other);

  // A bad address is refused and keeps the current one.
  await page.locator('.auth__server summary').click();
  await page.fill('#server-url', 'file:///etc/passwd');
  await page.locator('.auth__server button[type=submit]').click();
  await page.locator('.auth__server .field__error', { hasText: 'Enter an address like' }).waitFor();
  assert.equal(JSON.parse(fs.readFileSync(settingsFile, 'utf8')).serverUrl, other);
});

test('signs in against the new address and sees the chat', async () => {
  await page.fill('#auth-username', 'alice');
  await page.fill('#auth-password', PASSWORD);
  await page.click('button[type=submit]');
  await page.locator('.chat-list .chat-item', { hasText: NAMES.bob }).waitFor();
  await page.locator('.sidebar__status').waitFor({ state: 'hidden' }); // the socket is connected
});

test('a message arrives live; the tray icon gets its dot and the title the count', async () => {
  trayWithoutUnread = trayPixels();
  await bobSays('Hello from Bob, live.');
  await page.locator('.chat-item--unread', { hasText: 'Hello from Bob, live.' }).waitFor();
  await eventually(async () => (await mainWindow((win) => win.getTitle())) === 'Messenger — 1 unread', 'the unread title');
  await eventually(() => !trayPixels().equals(trayWithoutUnread), 'the tray icon to change');
  await page.screenshot({ path: path.join(SHOTS, 'desktop-window.png') });
});

test('Close hides the window to the tray and the app keeps running', async () => {
  await mainWindow((win) => win.close());
  await eventually(async () => !(await mainWindow((win) => win.isVisible())), 'the window to hide');
  assert.equal(app.process().exitCode, null);
  // (document.visibilityState stays 'visible' here: a page driven over the DevTools protocol counts
  // as captured. The page still knows it lost focus, which is what the next test relies on.)
  await eventually(async () => !(await page.evaluate(() => document.hasFocus())), 'the page to lose focus');
});

test('a message while hidden shows a native notification; clicking it opens the chat', async () => {
  const history = dunstHistory().length;
  await bobSays('Are you there?');
  await eventually(() => displayedNotifications() > 0, 'a notification from dunst');
  const dunst = x('search', '--onlyvisible', '--class', 'Dunst').split('\n')[0];
  const geometry = Object.fromEntries(x('getwindowgeometry', '--shell', dunst).split('\n').map((line) => line.split('=')));
  screenshot('desktop-notification.png', `${Number(geometry.WIDTH) + 24}x${Number(geometry.HEIGHT) + 60}+${Number(geometry.X) - 12}+0`);

  // A real click on the notification (dunst: left click = its default action, then close).
  x('mousemove', '--sync', String(Number(geometry.X) + 40), String(Number(geometry.Y) + 20));
  x('click', '1');

  await eventually(async () => mainWindow((win) => win.isVisible()), 'the window to show again');
  await page.locator('.chat__title', { hasText: NAMES.bob }).waitFor();
  await page.locator('.msg .bubble__text', { hasText: 'Are you there?' }).waitFor();
  const shown = dunstHistory().slice(0, dunstHistory().length - history);
  assert.ok(shown.some((n) => n.summary === NAMES.bob && n.body.includes('Are you there?')), JSON.stringify(shown));
  await eventually(async () => (await mainWindow((win) => win.getTitle())) === 'Messenger', 'the unread count to clear');
  await eventually(() => trayPixels().equals(trayWithoutUnread), 'the tray icon to lose its dot');
});

test('web links open in the system browser; navigation anywhere else is refused', async () => {
  await app.evaluate(({ shell }) => {
    globalThis.openedExternally = [];
    shell.openExternal = async (url) => {
      globalThis.openedExternally.push(url);
    };
  });
  const pageUrl = page.url();
  await bobSays('The docs: https://example.org/docs?page=2 have it.');
  await page.locator('.msg .bubble__text a', { hasText: 'https://example.org/docs?page=2' }).click();
  await page.evaluate(() => window.open('https://example.org/opened', '_blank'));
  await page.evaluate(() => {
    location.href = 'https://example.org/navigated';
  });
  const opened = ['https://example.org/docs?page=2', 'https://example.org/opened', 'https://example.org/navigated'];
  await eventually(async () => (await app.evaluate(() => globalThis.openedExternally)).length === opened.length, 'three external opens');
  assert.deepEqual(await app.evaluate(() => globalThis.openedExternally), opened);

  for (const target of ['file:///etc/hostname', 'data:text/html,<p>elsewhere</p>', `${pageUrl.replace('index.html', 'js/app.js')}`]) {
    await page.evaluate((url) => {
      location.href = url;
    }, target);
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(page.url(), pageUrl, `navigated to ${target}`);
  }
  assert.equal(await app.evaluate(({ BrowserWindow }) => BrowserWindow.getAllWindows().length), 1, 'no other window');
  assert.equal((await app.evaluate(() => globalThis.openedExternally)).length, opened.length, 'nothing else went outside');
  // Still the app, still signed in. (Not a locator: Playwright waits for the refused navigations to finish.)
  assert.equal(await page.evaluate(() => document.querySelector('.chat__title')?.textContent), NAMES.bob);
});

test('notifications are the only permission the page gets', async () => {
  const states = await page.evaluate(async () => {
    const query = async (name) => (await navigator.permissions.query({ name })).state;
    const position = await new Promise((resolve) => {
      navigator.geolocation.getCurrentPosition(() => resolve('granted'), (error) => resolve(`refused ${error.code}`));
    });
    return { notifications: await query('notifications'), geolocation: await query('geolocation'), camera: await query('camera'), position };
  });
  assert.deepEqual(states, { notifications: 'granted', geolocation: 'denied', camera: 'denied', position: 'refused 1' });
});

test('a second instance shows the first one and exits', async () => {
  await mainWindow((win) => win.close());
  await eventually(async () => !(await mainWindow((win) => win.isVisible())), 'the window to hide');
  const second = spawn(EXECUTABLE, appArgs, { env: appEnv, stdio: 'ignore' });
  const code = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the second instance kept running')), TIMEOUT);
    second.on('exit', (status) => {
      clearTimeout(timer);
      resolve(status);
    });
  });
  assert.equal(code, 0);
  await eventually(async () => mainWindow((win) => win.isVisible()), 'the first window to show');
  assert.equal(await app.evaluate(({ BrowserWindow }) => BrowserWindow.getAllWindows().length), 1);
});

test("Quit in the tray's menu quits", async () => {
  const tray = trayGeometry();
  const centre = [tray.x + Math.floor(tray.width / 2), tray.y + Math.floor(tray.height / 2)];
  x('mousemove', '--sync', String(centre[0]), String(centre[1]));
  x('click', '3');
  const menu = await eventually(() => {
    try {
      return x('search', '--onlyvisible', '--class', 'messenger').split('\n')
        .map((id) => ({ id, name: execFileSync('xprop', ['-id', id, '_NET_WM_WINDOW_TYPE'], { encoding: 'utf8' }) }))
        .find((w) => /POPUP_MENU|DROPDOWN_MENU|_MENU/.test(w.name));
    } catch {
      return null;
    }
  }, 'the tray menu');
  const geometry = Object.fromEntries(x('getwindowgeometry', '--shell', menu.id).split('\n').map((line) => line.split('=')));
  const left = Math.max(0, Math.min(Number(geometry.X), tray.x) - 12);
  const right = Math.max(Number(geometry.X) + Number(geometry.WIDTH), tray.x + tray.width) + 12;
  screenshot('desktop-tray-menu.png', `${right - left}x${Number(geometry.Y) + Number(geometry.HEIGHT) + 12}+${left}+0`);

  const exited = new Promise((resolve) => app.process().once('exit', (status) => resolve(status)));
  // The last item is Quit: Up from no selection selects it.
  x('key', '--clearmodifiers', 'Up');
  x('key', '--clearmodifiers', 'Return');
  const status = await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve('still running'), TIMEOUT))]);
  assert.equal(status, 0);
});

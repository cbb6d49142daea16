import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import policy from '../policy.js';

const { normaliseServerUrl, navigationDecision, permissionAllowed } = policy;
const page = path.resolve('/opt/Messenger/resources/app/renderer/index.html');
const pageUrl = pathToFileURL(page).href;

test('the server address is reduced to an http(s) origin', () => {
  assert.equal(normaliseServerUrl(' https://chat.example.org/some/path?x=1 '), 'https://chat.example.org');
  assert.equal(normaliseServerUrl('http://127.0.0.1:8000/'), 'http://127.0.0.1:8000');
  for (const bad of ['file:///etc/passwd', 'javascript:alert(1)', 'ftp://host', 'not a url', 'https://u:p@host']) {
    assert.throws(() => normaliseServerUrl(bad), undefined, bad);
  }
});

test("the window may navigate to the app's own page only, with any query or fragment", () => {
  assert.equal(navigationDecision(pageUrl, page), 'allow');
  assert.equal(navigationDecision(`${pageUrl}#chat-7`, page), 'allow');
  assert.equal(navigationDecision(`${pageUrl}?x=1`, page), 'allow');
});

test('any other file:// URL is refused', () => {
  for (const other of [
    'file:///etc/hostname',
    pathToFileURL(path.resolve(page, '..', 'js', 'app.js')).href,
    pathToFileURL(path.resolve(page, '..', '..', 'main.js')).href,
    `${pageUrl.replace('index.html', 'index.html%2F..%2F..%2Fmain.js')}`,
    'file://remote-host/share/index.html',
  ]) {
    assert.equal(navigationDecision(other, page), 'deny', other);
  }
});

test('web links go to the system browser; every other scheme is refused', () => {
  assert.equal(navigationDecision('https://example.org/a', page), 'external');
  assert.equal(navigationDecision('http://example.org/', page), 'external');
  for (const other of ['javascript:alert(1)', 'data:text/html,<p>x', 'chrome://gpu', 'devtools://x', 'about:blank', '']) {
    assert.equal(navigationDecision(other, page), 'deny', other);
  }
});

test('notifications are the only permission granted', () => {
  assert.equal(permissionAllowed('notifications'), true);
  for (const other of ['geolocation', 'media', 'midi', 'openExternal', 'clipboard-read', 'fullscreen', 'pointerLock']) {
    assert.equal(permissionAllowed(other), false, other);
  }
});

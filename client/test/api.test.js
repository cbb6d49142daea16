import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createApi, ApiError, REFRESH_KEY, tokenExpiry } from '../renderer/js/api.js';
import { memoryStorage, jwt, jsonResponse, fakeFetch, fakeTimers, flush } from './fakes.js';

const BASE = 'http://server.test';
const me = { id: 1, username: 'ann', display_name: 'Ann', email: 'ann@example.com' };

function setup(routes, { storage = memoryStorage(), clock = fakeTimers() } = {}) {
  const { fetch, calls } = fakeFetch(routes);
  let ended = 0;
  const api = createApi({
    baseUrl: BASE,
    fetch,
    storage,
    now: clock.now,
    setTimer: clock.timers.setTimeout,
    clearTimer: clock.timers.clearTimeout,
    onSessionEnd: () => {
      ended += 1;
    },
  });
  return { api, calls, storage, clock, ended: () => ended };
}

const nowSeconds = (clock) => Math.floor(clock.now() / 1000);

test('tokenExpiry reads the exp claim in milliseconds', () => {
  assert.equal(tokenExpiry(jwt(1234)), 1_234_000);
  assert.equal(tokenExpiry('garbage'), null);
});

test('login keeps the access token in memory and the refresh token in storage', async () => {
  const clock = fakeTimers();
  const access = jwt(nowSeconds(clock) + 300);
  const { api, calls, storage } = setup({
    'POST /api/auth/login': () => jsonResponse(200, { user: me, access, refresh: 'r1' }),
    'GET /api/chats': () => jsonResponse(200, { results: [], next: null }),
  }, { clock });

  const user = await api.login({ username: 'ann', password: 'pw' });
  await api.chats();

  assert.deepEqual(user, me);
  assert.equal(storage.getItem(REFRESH_KEY), 'r1');
  assert.equal(storage.size, 1, 'only the refresh token is stored');
  assert.equal(calls[1].headers.Authorization, `Bearer ${access}`);
});

test('concurrent 401s share a single refresh and every request is retried with the new token', async () => {
  const clock = fakeTimers();
  const stale = jwt(nowSeconds(clock) + 300);
  const fresh = jwt(nowSeconds(clock) + 600, { n: 2 });
  let refreshes = 0;
  let releaseRefresh;
  const { api, calls, storage } = setup({
    'POST /api/auth/login': () => jsonResponse(200, { user: me, access: stale, refresh: 'r1' }),
    'POST /api/auth/refresh': async ({ body }) => {
      refreshes += 1;
      assert.equal(body.refresh, 'r1');
      await new Promise((resolve) => {
        releaseRefresh = resolve;
      });
      return jsonResponse(200, { access: fresh, refresh: 'r2' });
    },
    'GET /api/chats': ({ headers }) =>
      headers.Authorization === `Bearer ${fresh}`
        ? jsonResponse(200, { results: [{ id: 7 }], next: null })
        : jsonResponse(401, { detail: 'Token expired' }),
    'GET /api/auth/me': ({ headers }) =>
      headers.Authorization === `Bearer ${fresh}` ? jsonResponse(200, me) : jsonResponse(401, { detail: 'expired' }),
  }, { clock });
  await api.login({ username: 'ann', password: 'pw' });

  const requests = [api.chats(), api.me(), api.chats()];
  await flush();
  releaseRefresh();
  const [chats, user, chatsAgain] = await Promise.all(requests);

  assert.equal(refreshes, 1, 'one refresh for three 401s');
  assert.deepEqual(chats, [{ id: 7 }]);
  assert.deepEqual(chatsAgain, [{ id: 7 }]);
  assert.equal(user.username, 'ann');
  assert.equal(storage.getItem(REFRESH_KEY), 'r2', 'the rotated refresh token replaces the old one');
  assert.equal(calls.filter((c) => c.path === '/api/chats').length, 4);
});

test('the access token is refreshed shortly before it expires', async () => {
  const clock = fakeTimers();
  const first = jwt(nowSeconds(clock) + 300);
  const second = jwt(nowSeconds(clock) + 900, { n: 2 });
  let refreshes = 0;
  const { api } = setup({
    'POST /api/auth/login': () => jsonResponse(200, { user: me, access: first, refresh: 'r1' }),
    'POST /api/auth/refresh': () => {
      refreshes += 1;
      return jsonResponse(200, { access: second, refresh: 'r2' });
    },
  }, { clock });
  await api.login({ username: 'ann', password: 'pw' });

  await clock.advance(200_000);
  assert.equal(refreshes, 0, 'not yet: more than a minute left');
  await clock.advance(50_000);
  assert.equal(refreshes, 1, 'refreshed a minute before expiry');
  assert.equal(await api.accessToken(), second);
});

test('an expired access token is refreshed before the request instead of after a 401', async () => {
  const clock = fakeTimers();
  const expired = jwt(nowSeconds(clock) - 10);
  const fresh = jwt(nowSeconds(clock) + 600);
  const { api, calls } = setup({
    'POST /api/auth/login': () => jsonResponse(200, { user: me, access: expired, refresh: 'r1' }),
    'POST /api/auth/refresh': () => jsonResponse(200, { access: fresh, refresh: 'r2' }),
    'GET /api/auth/me': ({ headers }) => (headers.Authorization === `Bearer ${fresh}` ? jsonResponse(200, me) : jsonResponse(401, {})),
  }, { clock });
  await api.login({ username: 'ann', password: 'pw' });

  await api.me();

  assert.deepEqual(calls.map((c) => c.path), ['/api/auth/login', '/api/auth/refresh', '/api/auth/me']);
});

test('a refused refresh token ends the session once and clears storage', async () => {
  const clock = fakeTimers();
  const { api, storage, ended } = setup({
    'POST /api/auth/login': () => jsonResponse(200, { user: me, access: jwt(nowSeconds(clock) + 300), refresh: 'r1' }),
    'POST /api/auth/refresh': () => jsonResponse(401, { detail: 'Token is blacklisted', code: 'token_not_valid' }),
    'GET /api/chats': () => jsonResponse(401, { detail: 'expired' }),
  }, { clock });
  await api.login({ username: 'ann', password: 'pw' });

  const results = await Promise.allSettled([api.chats(), api.chats()]);

  assert.ok(results.every((r) => r.status === 'rejected' && r.reason.status === 401));
  assert.equal(storage.getItem(REFRESH_KEY), null);
  assert.equal(ended(), 1);
});

test('restore resumes a session from the stored refresh token', async () => {
  const clock = fakeTimers();
  const storage = memoryStorage({ [REFRESH_KEY]: 'saved' });
  const { api } = setup({
    'POST /api/auth/refresh': ({ body }) =>
      body.refresh === 'saved' ? jsonResponse(200, { access: jwt(nowSeconds(clock) + 300), refresh: 'next' }) : jsonResponse(401, {}),
    'GET /api/auth/me': () => jsonResponse(200, me),
  }, { storage, clock });

  assert.deepEqual(await api.restore(), me);
  assert.equal(storage.getItem(REFRESH_KEY), 'next');
});

test('field errors come back in DRF shape for the forms', async () => {
  const { api } = setup({
    'POST /api/auth/register': () => jsonResponse(400, { username: ['A user with that username already exists.'], password: ['Too short.', 'Too common.'] }),
  });

  const error = await api.register({ username: 'ann', email: 'a@b.c', password: 'x' }).catch((e) => e);

  assert.ok(error instanceof ApiError);
  assert.equal(error.status, 400);
  assert.deepEqual(error.fields, { username: ['A user with that username already exists.'], password: ['Too short.', 'Too common.'] });
});

test('lists follow the next links of paginated answers', async () => {
  const clock = fakeTimers();
  const { api } = setup({
    'POST /api/auth/login': () => jsonResponse(200, { user: me, access: jwt(nowSeconds(clock) + 300), refresh: 'r' }),
    'GET /api/chats': ({ search }) =>
      search === '?cursor=2'
        ? jsonResponse(200, { results: [{ id: 2 }], next: null })
        : jsonResponse(200, { results: [{ id: 1 }], next: `${BASE}/api/chats?cursor=2` }),
  }, { clock });
  await api.login({ username: 'ann', password: 'pw' });

  assert.deepEqual(await api.chats(), [{ id: 1 }, { id: 2 }]);
});

test('logout revokes the refresh token on the server and forgets it locally', async () => {
  const clock = fakeTimers();
  const { api, calls, storage } = setup({
    'POST /api/auth/login': () => jsonResponse(200, { user: me, access: jwt(nowSeconds(clock) + 300), refresh: 'r1' }),
    'POST /api/auth/logout': () => jsonResponse(205),
  }, { clock });
  await api.login({ username: 'ann', password: 'pw' });

  await api.logout();

  assert.deepEqual(calls.at(-1).body, { refresh: 'r1' });
  assert.equal(storage.getItem(REFRESH_KEY), null);
  assert.equal(api.hasSession(), false);
});

test('a refresh token rotated by another tab is picked up instead of ending the session', async () => {
  const clock = fakeTimers();
  const storage = memoryStorage({ [REFRESH_KEY]: 'r1' });
  let ended = 0;
  const { fetch, calls } = fakeFetch({
    'POST /api/auth/refresh': ({ body }) => {
      if (body.refresh === 'r1') {
        storage.setItem(REFRESH_KEY, 'r2'); // the other tab won the race and stored its new token
        return jsonResponse(401, { detail: 'Token is blacklisted' });
      }
      return jsonResponse(200, { access: jwt(nowSeconds(clock) + 300), refresh: 'r3' });
    },
  });
  const api = createApi({ baseUrl: BASE, fetch, storage, now: clock.now, setTimer: clock.timers.setTimeout, clearTimer: clock.timers.clearTimeout, onSessionEnd: () => { ended += 1; } });

  await api.refresh();

  assert.deepEqual(calls.map((c) => c.body.refresh), ['r1', 'r2']);
  assert.equal(storage.getItem(REFRESH_KEY), 'r3');
  assert.equal(ended, 0);
});

test('every new access token is told to its listeners: the refresh ahead of expiry included', async () => {
  const clock = fakeTimers();
  const first = jwt(nowSeconds(clock) + 300);
  const second = jwt(nowSeconds(clock) + 900, { n: 2 });
  const { api } = setup({
    'POST /api/auth/login': () => jsonResponse(200, { user: me, access: first, refresh: 'r1' }),
    'POST /api/auth/refresh': () => jsonResponse(200, { access: second, refresh: 'r2' }),
  }, { clock });
  const heard = [];
  const unsubscribe = api.onAccessToken((token) => heard.push(token));
  await api.login({ username: 'ann', password: 'pw' });

  await clock.advance(250_000);

  assert.deepEqual(heard, [first, second]);
  assert.equal(api.currentAccessToken(), second);
  unsubscribe();
  await api.refresh();
  assert.equal(heard.length, 2, 'an unsubscribed listener hears nothing more');
});

test('a password change posts both passwords and goes on with the new pair', async () => {
  const clock = fakeTimers();
  const old = jwt(nowSeconds(clock) + 300);
  const renewed = jwt(nowSeconds(clock) + 300, { generation: 1 });
  const { api, calls, storage } = setup({
    'POST /api/auth/login': () => jsonResponse(200, { user: me, access: old, refresh: 'r1' }),
    'POST /api/auth/password': () => jsonResponse(200, { access: renewed, refresh: 'r2' }),
  }, { clock });
  await api.login({ username: 'ann', password: 'pw' });
  const heard = [];
  api.onAccessToken((token) => heard.push(token));

  await api.changePassword({ oldPassword: 'pw', newPassword: 'Another-Horse-43' });

  assert.deepEqual(calls.at(-1).body, { old_password: 'pw', new_password: 'Another-Horse-43' });
  assert.equal(calls.at(-1).headers.Authorization, `Bearer ${old}`);
  assert.equal(storage.getItem(REFRESH_KEY), 'r2');
  assert.deepEqual(heard, [renewed], 'open sockets renew with the new session');
});

test('a refresh asked for while the password change is in flight waits for its new pair', async () => {
  // The server closes the sockets (4401) as it answers: a socket may ask for a fresh token first.
  const clock = fakeTimers();
  const renewed = jwt(nowSeconds(clock) + 300, { generation: 1 });
  let answer = null;
  const { api, calls, storage } = setup({
    'POST /api/auth/login': () => jsonResponse(200, { user: me, access: jwt(nowSeconds(clock) + 300), refresh: 'r1' }),
    'POST /api/auth/password': () => new Promise((resolve) => { answer = resolve; }),
    'POST /api/auth/refresh': () => jsonResponse(401, { detail: 'Token is blacklisted' }),
  }, { clock });
  await api.login({ username: 'ann', password: 'pw' });

  const changing = api.changePassword({ oldPassword: 'pw', newPassword: 'Another-Horse-43' });
  while (!answer) await new Promise((resolve) => setImmediate(resolve));
  const refreshed = api.refresh();
  answer(jsonResponse(200, { access: renewed, refresh: 'r2' }));
  await changing;

  assert.equal(await refreshed, renewed);
  assert.equal(calls.filter((c) => c.url.endsWith('/api/auth/refresh')).length, 0, 'the old refresh token is never spent');
  assert.equal(storage.getItem(REFRESH_KEY), 'r2');
});

test('a wrong old password comes back as a field error and keeps the session', async () => {
  const clock = fakeTimers();
  const { api, storage } = setup({
    'POST /api/auth/login': () => jsonResponse(200, { user: me, access: jwt(nowSeconds(clock) + 300), refresh: 'r1' }),
    'POST /api/auth/password': () => jsonResponse(400, { old_password: ['The old password is not correct.'] }),
  }, { clock });
  await api.login({ username: 'ann', password: 'pw' });

  const error = await api.changePassword({ oldPassword: 'nope', newPassword: 'Another-Horse-43' }).catch((e) => e);

  assert.ok(error instanceof ApiError);
  assert.deepEqual(error.fields, { old_password: ['The old password is not correct.'] });
  assert.equal(storage.getItem(REFRESH_KEY), 'r1');
});

test('logging out everywhere tells the server, then forgets the session here too', async () => {
  const clock = fakeTimers();
  const { api, calls } = setup({
    'POST /api/auth/login': () => jsonResponse(200, { user: me, access: jwt(nowSeconds(clock) + 300), refresh: 'r1' }),
    'POST /api/auth/logout-all': () => jsonResponse(205),
  }, { clock });
  await api.login({ username: 'ann', password: 'pw' });

  await api.logoutAll();

  assert.equal(calls.at(-1).path, '/api/auth/logout-all');
  assert.equal(api.hasSession(), false);
  assert.equal(api.currentAccessToken(), null);
});

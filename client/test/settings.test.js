import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  readTheme, writeTheme, resolveTheme, readNotificationPrefs, writeNotificationPrefs, THEME_KEY, NOTIFICATIONS_KEY,
} from '../renderer/js/preferences.js';
import { cropSquare, dragCenter, AVATAR_OUTPUT_PX } from '../renderer/js/crop.js';
import { roleChange, canRemove, heirCandidates, removalText } from '../renderer/js/groups.js';

function memoryStorage(initial = {}) {
  const items = new Map(Object.entries(initial));
  return {
    getItem: (key) => (items.has(key) ? items.get(key) : null),
    setItem: (key, value) => items.set(key, String(value)),
    removeItem: (key) => items.delete(key),
    items,
  };
}

// ---- theme and notification preferences ----

test('the theme is the system one until the user picks light or dark', () => {
  const storage = memoryStorage();
  assert.equal(readTheme(storage), 'system');
  writeTheme(storage, 'dark');
  assert.equal(readTheme(storage), 'dark');
  writeTheme(storage, 'system');
  assert.equal(storage.getItem(THEME_KEY), null);
});

test('an unknown stored theme reads as system, and an unknown choice is refused', () => {
  assert.equal(readTheme(memoryStorage({ [THEME_KEY]: 'purple' })), 'system');
  assert.throws(() => writeTheme(memoryStorage(), 'purple'), RangeError);
});

test('a chosen theme overrides the system preference; system follows it', () => {
  assert.equal(resolveTheme('light', true), 'light');
  assert.equal(resolveTheme('dark', false), 'dark');
  assert.equal(resolveTheme('system', true), 'dark');
  assert.equal(resolveTheme('system', false), 'light');
});

test('notification preferences default to banners on and sound off', () => {
  assert.deepEqual(readNotificationPrefs(memoryStorage()), { desktop: true, sound: false });
});

test('notification preferences keep each choice and ignore what does not parse', () => {
  const storage = memoryStorage();
  writeNotificationPrefs(storage, { sound: true });
  writeNotificationPrefs(storage, { desktop: false, sound: 'loud' });
  assert.deepEqual(readNotificationPrefs(storage), { desktop: false, sound: true });
  assert.deepEqual(readNotificationPrefs(memoryStorage({ [NOTIFICATIONS_KEY]: '{not json' })), { desktop: true, sound: false });
  assert.deepEqual(readNotificationPrefs(memoryStorage({ [NOTIFICATIONS_KEY]: '{"desktop": "no"}' })), { desktop: true, sound: false });
});

// ---- the avatar crop ----

test('without zoom or moves the crop is the centred square of the short side', () => {
  assert.deepEqual(cropSquare({ width: 1200, height: 800 }), { sx: 200, sy: 0, side: 800, out: AVATAR_OUTPUT_PX });
  assert.deepEqual(cropSquare({ width: 300, height: 400 }), { sx: 0, sy: 50, side: 300, out: 300 });
});

test('zoom shrinks the square around its centre, and it never leaves the image', () => {
  assert.deepEqual(cropSquare({ width: 800, height: 800 }, { zoom: 2 }), { sx: 200, sy: 200, side: 400, out: 400 });
  const corner = cropSquare({ width: 800, height: 800 }, { zoom: 2, centerX: 10_000, centerY: -50 });
  assert.deepEqual(corner, { sx: 400, sy: 0, side: 400, out: 400 });
  assert.equal(cropSquare({ width: 800, height: 800 }, { zoom: 99 }).side, 200); // at most 4x
});

test('dragging the picture right moves the square left, in image pixels per screen pixel', () => {
  const image = { width: 2000, height: 1000 };
  const start = { zoom: 1, centerX: 1000, centerY: 500 };
  // a 250 px viewport shows a 1000 px square: 4 image pixels per screen pixel
  const moved = dragCenter(start, image, 50, 0, 250);
  assert.equal(moved.centerX, 800);
  assert.equal(moved.centerY, 500); // the square already fills the height: it cannot move up or down
  assert.equal(dragCenter(start, image, 10_000, 0, 250).centerX, 500); // stops at the left edge
});

test('a crop of an image without a size is refused', () => {
  assert.throws(() => cropSquare({ width: 0, height: 10 }), RangeError);
});

// ---- group roles, handover, removal ----

const member = (id, role) => ({ user: { id, username: `u${id}`, display_name: `User ${id}` }, role });
const nameOf = (user) => user.display_name;

test('only the owner promotes members and demotes admins, never themself or the owner', () => {
  assert.equal(roleChange('owner', member(2, 'member'), 1), 'admin');
  assert.equal(roleChange('owner', member(2, 'admin'), 1), 'member');
  assert.equal(roleChange('owner', member(1, 'owner'), 1), null);
  assert.equal(roleChange('admin', member(2, 'member'), 1), null);
});

test('the owner removes anyone else; an admin plain members only; nobody removes the owner', () => {
  assert.equal(canRemove('owner', member(2, 'admin'), 1), true);
  assert.equal(canRemove('admin', member(2, 'member'), 1), true);
  assert.equal(canRemove('admin', member(2, 'admin'), 1), false);
  assert.equal(canRemove('admin', member(3, 'owner'), 1), false);
  assert.equal(canRemove('member', member(2, 'member'), 1), false);
  assert.equal(canRemove('owner', member(1, 'owner'), 1), false);
});

test('an owner leaving may hand over to any other member, admins offered first', () => {
  const chat = { my_role: 'owner', members: [member(1, 'owner'), member(4, 'member'), member(3, 'admin'), member(2, 'member')] };
  assert.deepEqual(heirCandidates(chat, 1, nameOf).map((m) => m.user.id), [3, 2, 4]);
  assert.deepEqual(heirCandidates({ ...chat, my_role: 'admin' }, 1, nameOf), []);
});

test('the removal notice names who removed me when the chat last said so', () => {
  const chat = { title: 'Team', last_message: { system: { action: 'member.removed', actor_id: 7, user_id: 1 } } };
  assert.equal(removalText(chat, 1, () => 'Ada'), '\u2068Ada\u2069 removed you from “\u2068Team\u2069”.');
  assert.equal(removalText({ title: 'Team', last_message: null }, 1, () => 'Ada'), 'You are no longer a member of “\u2068Team\u2069”.');
});

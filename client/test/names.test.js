import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createStore, displayName, isolated, withoutBidiControls } from '../renderer/js/store.js';

const OVERRIDES = '\u202A\u202B\u202C\u202D\u202E\u2066\u2067\u2068\u2069';

test('a display name is shown without bidi embeddings, overrides or isolates', () => {
  assert.equal(displayName({ username: 'mallory', display_name: `\u202Enimda${OVERRIDES}` }), 'nimda');
});

test('a name made only of bidi controls falls back to nothing rather than reordering', () => {
  assert.equal(withoutBidiControls(OVERRIDES), '');
});

test('right-to-left letters themselves are kept', () => {
  assert.equal(displayName({ username: 'sara', display_name: 'سارا' }), 'سارا');
});

test('the username stands in for an empty display name', () => {
  assert.equal(displayName({ username: 'bob', display_name: '' }), 'bob');
});

test('a name in running text is isolated with FSI and PDI, its own controls removed', () => {
  assert.equal(isolated('\u202Eevil'), '\u2068evil\u2069');
  assert.equal(`${isolated('سارا')} is typing…`, '\u2068سارا\u2069 is typing…');
});

test('a group title is shown without bidi controls', () => {
  const store = createStore();
  assert.equal(store.chatTitle({ id: 1, is_group: true, title: '\u202Epuorg', members: [] }), 'puorg');
});

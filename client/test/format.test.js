import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dayLabel, lengthStatus, registrationProblems, preview } from '../renderer/js/format.js';

test('a draft under 90% of the limit shows no counter and can be sent', () => {
  assert.deepEqual(lengthStatus('x'.repeat(100), 4000), { length: 100, limit: 4000, over: false, near: false, left: 3900 });
});

test('a draft near the limit shows the counter', () => {
  const status = lengthStatus('x'.repeat(3600), 4000);
  assert.equal(status.near, true);
  assert.equal(status.over, false);
  assert.equal(status.left, 400);
});

test('a paste over the limit is kept whole and marked over, never cut', () => {
  const status = lengthStatus('x'.repeat(4001), 4000);
  assert.equal(status.over, true);
  assert.equal(status.length, 4001);
});

test('the length counts characters, not UTF-16 units, and ignores the trimmed ends', () => {
  assert.equal(lengthStatus('  😀😀  ', 10).length, 2);
});

test('registration reports every field it can judge at once', () => {
  const problems = registrationProblems({ username: 'a!', email: 'nope', password: '1234' });
  assert.deepEqual(Object.keys(problems).sort(), ['email', 'password', 'username']);
  assert.deepEqual(problems.password, ['Use at least 8 characters.', 'Use more than digits.']);
});

test('registration finds nothing to say about good values', () => {
  assert.deepEqual(registrationProblems({ username: 'ada.l', email: 'ada@example.com', password: 'Quiet-Harbor-2048' }), {});
});

test('day labels: today, yesterday, then the weekday and date', () => {
  const now = new Date(2026, 11, 2, 12);
  assert.equal(dayLabel(new Date(2026, 11, 2, 1), now), 'Today');
  assert.equal(dayLabel(new Date(2026, 11, 1, 23), now), 'Yesterday');
  assert.match(dayLabel(new Date(2026, 10, 23, 9), now), /23/);
});

test("the sidebar names a file by its name and an image as a photo", () => {
  assert.equal(preview({ content: '', attachment: { kind: 'file', name: 'q3.pdf' }, deleted: false }), 'File: q3.pdf');
  assert.equal(preview({ content: 'see', attachment: { kind: 'image' }, deleted: false }), 'Photo · see');
});

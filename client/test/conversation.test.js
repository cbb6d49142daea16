import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  systemText, reactionChips, toggleReaction, reactorsLabel, messageParts, mentionsMe, mentionAt,
  mentionCandidates, insertMention, highlightParts, hitExcerpt, quoteText, replyStep, lastEditable, canPin,
  shouldNotify, fold, replySummary,
} from '../renderer/js/conversation.js';

const ann = { id: 1, username: 'ann', display_name: 'Ann' };
const bob = { id: 2, username: 'bob', display_name: 'Bob' };
const chloe = { id: 3, username: 'chloe.b', display_name: 'Chloé' };
const members = [ann, bob, chloe].map((user) => ({ user, role: 'member' }));
const names = { 1: 'Ann', 2: 'Bob', 3: 'Chloé' };
const nameOf = (id) => names[id] || null;
const strip = (text) => text.replace(/[\u2068\u2069]/g, '');

// ---- system lines ---------------------------------------------------------------------------------

test('a rename reads as who renamed the group to what', () => {
  const line = systemText({ action: 'chat.renamed', actor_id: 2, title: 'Plans' }, { meId: 1, nameOf });
  assert.equal(strip(line), 'Bob renamed the group to “Plans”');
});

test('names in a system line are isolated, so a right-to-left name cannot reorder the sentence', () => {
  const line = systemText({ action: 'member.added', actor_id: 2, user_id: 3 }, { meId: 1, nameOf: () => 'سارا' });
  assert.equal(line, '\u2068سارا\u2069 added \u2068سارا\u2069');
});

test('each system action has its own sentence, with me as You / you', () => {
  const say = (system) => strip(systemText(system, { meId: 1, nameOf }));
  assert.equal(say({ action: 'chat.created', actor_id: 1, title: 'Trip' }), 'You created the group “Trip”');
  assert.equal(say({ action: 'member.added', actor_id: 2, user_id: 3 }), 'Bob added Chloé');
  assert.equal(say({ action: 'member.added', actor_id: 2, user_id: 1 }), 'Bob added you');
  assert.equal(say({ action: 'member.removed', actor_id: 1, user_id: 2 }), 'You removed Bob');
  assert.equal(say({ action: 'member.left', actor_id: 3, user_id: 3 }), 'Chloé left the group');
  assert.equal(say({ action: 'role.changed', actor_id: 2, user_id: 3 }), 'Bob changed the role of Chloé');
  assert.equal(say({ action: 'role.changed', actor_id: 2, user_id: 3, role: 'admin' }), 'Bob made Chloé an admin');
  assert.equal(say({ action: 'message.pinned', actor_id: 2, message_id: 9 }), 'Bob pinned a message');
  assert.equal(say({ action: 'something.new', actor_id: 2 }), 'Bob changed the chat');
});

test('a system line about someone no longer known says Someone', () => {
  assert.equal(strip(systemText({ action: 'member.left', actor_id: 99 }, { meId: 1, nameOf })), 'Someone left the group');
});

// ---- reactions ------------------------------------------------------------------------------------

test('chips keep the server order and put me first among the reactors of mine', () => {
  const chips = reactionChips([
    { emoji: '👍', count: 2, user_ids: [2, 1] },
    { emoji: '🎉', count: 1, user_ids: [3] },
  ], 1);
  assert.deepEqual(chips, [
    { emoji: '👍', count: 2, mine: true, user_ids: [1, 2] },
    { emoji: '🎉', count: 1, mine: false, user_ids: [3] },
  ]);
});

test('clicking an emoji I have not used adds it (PUT), one I have removes it (DELETE)', () => {
  const added = toggleReaction([{ emoji: '👍', count: 1, user_ids: [2] }], '👍', 1);
  assert.equal(added.method, 'PUT');
  assert.deepEqual(added.reactions, [{ emoji: '👍', count: 2, user_ids: [1, 2] }]);

  const removed = toggleReaction(added.reactions, '👍', 1);
  assert.equal(removed.method, 'DELETE');
  assert.deepEqual(removed.reactions, [{ emoji: '👍', count: 1, user_ids: [2] }]);
});

test('removing the last reaction of an emoji drops its chip; a new emoji goes last', () => {
  assert.deepEqual(toggleReaction([{ emoji: '❤️', count: 1, user_ids: [1] }], '❤️', 1).reactions, []);
  const next = toggleReaction([{ emoji: '❤️', count: 1, user_ids: [2] }], '😂', 1);
  assert.deepEqual(next.reactions.map((r) => r.emoji), ['❤️', '😂']);
});

test('toggling never changes the list it was given', () => {
  const reactions = [{ emoji: '👍', count: 1, user_ids: [2] }];
  toggleReaction(reactions, '👍', 1);
  assert.deepEqual(reactions, [{ emoji: '👍', count: 1, user_ids: [2] }]);
});

test('a chip names its reactors, counting the ones beyond the list', () => {
  const chip = { emoji: '👍', count: 60, mine: true, user_ids: [1, 2, 3] };
  assert.equal(reactorsLabel(chip, { meId: 1, nameOf }), 'You, Bob, Chloé and 57 others');
  assert.equal(reactorsLabel({ emoji: '👍', count: 2, user_ids: [2, 3] }, { meId: 1, nameOf }), 'Bob and Chloé');
});

// ---- mentions -------------------------------------------------------------------------------------

test('a message is cut into text, links and mentions of members, case-insensitively', () => {
  const parts = messageParts('hi @Bob see https://example.org/x, and @nobody', members);
  assert.deepEqual(parts.map((p) => [p.type, p.text]), [
    ['text', 'hi '], ['mention', '@Bob'], ['text', ' see '], ['link', 'https://example.org/x'],
    ['text', ', and @nobody'],
  ]);
  assert.equal(parts[1].user.id, 2);
});

test('an email address is not a mention; a mention ending a sentence loses the full stop', () => {
  assert.deepEqual(messageParts('mail bob@ann.org', members).map((p) => p.type), ['text']);
  const parts = messageParts('thanks @ann. and @chloe.b.', members);
  assert.deepEqual(parts.filter((p) => p.type === 'mention').map((p) => p.user.id), [1, 3]);
  assert.equal(parts.map((p) => p.text).join(''), 'thanks @ann. and @chloe.b.');
});

test('a mention inside a link stays part of the link', () => {
  const parts = messageParts('https://example.org/@bob', members);
  assert.deepEqual(parts.map((p) => p.type), ['link']);
});

test('mentionsMe reads the message mentions field', () => {
  assert.equal(mentionsMe({ mentions: [1, 3] }, 1), true);
  assert.equal(mentionsMe({ mentions: [3] }, 1), false);
  assert.equal(mentionsMe({}, 1), false);
});

test('the composer finds the @word at the caret, not one inside an address', () => {
  assert.deepEqual(mentionAt('hello @bo', 9), { start: 6, query: 'bo' });
  assert.deepEqual(mentionAt('@', 1), { start: 0, query: '' });
  assert.equal(mentionAt('mail ann@exa', 12), null);
  assert.equal(mentionAt('hello @bob there', 16), null);
});

test('candidates: username prefix first, then display names, never me', () => {
  assert.deepEqual(mentionCandidates(members, 'b', { meId: 1 }).map((u) => u.id), [2, 3]); // bob by prefix, then chloe.b
  assert.deepEqual(mentionCandidates(members, '', { meId: 1 }).map((u) => u.id), [2, 3]);
  assert.deepEqual(mentionCandidates(members, 'chloe', { meId: 1 }).map((u) => u.id), [3]);
  // accents folded: "chlo" finds Chloé by name as well as by username
  assert.deepEqual(mentionCandidates([{ user: { id: 4, username: 'zed', display_name: 'Éva' } }], 'eva').map((u) => u.id), [4]);
});

test('choosing a candidate replaces the typed @query and puts the caret after a space', () => {
  assert.deepEqual(insertMention('hi @bo there', { start: 3, caret: 6 }, 'bob'), { value: 'hi @bob there', caret: 8 });
  assert.deepEqual(insertMention('@', { start: 0, caret: 1 }, 'ann'), { value: '@ann ', caret: 5 });
});

// ---- search hits ----------------------------------------------------------------------------------

test('hits are found case- and accent-insensitively and keep the original text', () => {
  const parts = highlightParts('Café at the CAFE', 'cafe');
  assert.deepEqual(parts, [
    { text: 'Café', hit: true }, { text: ' at the ', hit: false }, { text: 'CAFE', hit: true },
  ]);
});

test('a CJK substring is highlighted where it stands', () => {
  assert.deepEqual(highlightParts('我们明天去北京吃饭', '北京吃'), [
    { text: '我们明天去', hit: false }, { text: '北京吃', hit: true }, { text: '饭', hit: false },
  ]);
});

test('Cyrillic folds case, and decomposed accents are matched whole', () => {
  assert.deepEqual(highlightParts('Привет, МИР', 'мир').at(-1), { text: 'МИР', hit: true });
  const decomposed = 'Cafe\u0301 noir';
  const parts = highlightParts(decomposed, 'café');
  assert.equal(parts[0].hit, true);
  assert.equal(parts.map((p) => p.text).join(''), decomposed);
});

test('no query or no match highlights nothing', () => {
  assert.deepEqual(highlightParts('hello', ''), [{ text: 'hello', hit: false }]);
  assert.deepEqual(highlightParts('hello', 'xyz'), [{ text: 'hello', hit: false }]);
  assert.equal(fold('ÉCOLE'), 'ecole');
});

test('a long hit line is cut around the first hit without breaking an emoji', () => {
  const text = `${'😀'.repeat(100)} needle ${'x'.repeat(300)}`;
  const excerpt = hitExcerpt(text, 'needle', 20);
  assert.ok(excerpt.startsWith('…'));
  assert.ok(excerpt.endsWith('…'));
  assert.ok(excerpt.includes('needle'));
  assert.doesNotMatch(excerpt, /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/);
});

// ---- replies, editing, pins, notifications --------------------------------------------------------

test('a quote says what the original was', () => {
  assert.equal(quoteText({ content: 'see\nyou', attachment: null, deleted: false }), 'see you');
  assert.equal(quoteText({ content: '', attachment: { kind: 'image' }, deleted: false }), 'Photo');
  assert.equal(quoteText({ content: 'x', attachment: { kind: 'file', name: 'a.pdf' }, deleted: false }), 'a.pdf · x');
  assert.equal(quoteText({ content: '', attachment: null, deleted: true }), 'Deleted message');
});

const history = [
  { id: 1, sender: ann, content: 'one' },
  { id: 2, sender: bob, content: 'two' },
  { id: 3, kind: 'system', sender: bob, content: '' },
  { id: 4, sender: ann, content: '', deleted: true },
  { id: 5, sender: bob, content: 'five' },
];

test('Ctrl+Up walks reply targets from the newest back, skipping system lines and deleted ones', () => {
  assert.equal(replyStep(history, null, 'older').id, 5);
  assert.equal(replyStep(history, 5, 'older').id, 2);
  assert.equal(replyStep(history, 1, 'older').id, 1);
  assert.equal(replyStep(history, 2, 'newer').id, 5);
  assert.equal(replyStep(history, 5, 'newer'), null);
});

test('Up in an empty composer edits my newest message that has text', () => {
  assert.equal(lastEditable(history, 1).id, 1);
  assert.equal(lastEditable(history, 2).id, 5);
  assert.equal(lastEditable([{ id: 7, sender: ann, content: 'fwd', forwarded_from: { sender: bob } }], 1), null);
});

test('anyone pins in a direct chat; in a group only the owner or an admin', () => {
  assert.equal(canPin({ is_group: false, my_role: 'member' }), true);
  assert.equal(canPin({ is_group: true, my_role: 'member' }), false);
  assert.equal(canPin({ is_group: true, my_role: 'admin' }), true);
  assert.equal(canPin(null), false);
});

test('a muted chat notifies only when I am mentioned; system lines and my own messages never', () => {
  const message = { id: 1, sender: bob, content: 'hi', mentions: [] };
  assert.equal(shouldNotify(message, { muted: false }, 1), true);
  assert.equal(shouldNotify(message, { muted: true }, 1), false);
  assert.equal(shouldNotify({ ...message, mentions: [1] }, { muted: true }, 1), true);
  assert.equal(shouldNotify({ ...message, kind: 'system' }, { muted: false }, 1), false);
  assert.equal(shouldNotify({ ...message, sender: ann }, { muted: false }, 1), false);
});

test('a pending reply quotes at most the first 200 characters, counting an emoji as one', () => {
  const long = { id: 4, sender: bob, content: '😀'.repeat(250), attachment: null, deleted: false, reactions: [] };
  const summary = replySummary(long);
  assert.deepEqual(Object.keys(summary).sort(), ['attachment', 'content', 'deleted', 'id', 'sender']);
  assert.equal([...summary.content].length, 200);
  assert.equal(summary.content, '😀'.repeat(200));
});

// The conversation features' logic, kept apart from the DOM so Node tests can drive it: system lines,
// reactions, mentions (parsing for highlight and the composer's autocomplete), search-hit highlighting,
// what a reply quote says, and when a message deserves a desktop notification.
// Shapes are API.md's "v1.1 additions" → "Messages".
import { displayName, isolated } from './store.js';

/** The reaction bar's emoji, in its order; the picker offers more. */
export const COMMON_REACTIONS = ['👍', '❤️', '😂', '😮', '😢', '🎉'];
export const MORE_REACTIONS = [
  '🔥', '👏', '🙏', '😍', '🤔', '😁', '🥳', '😎', '😅', '🤣', '😊', '😇', '🙂', '😉', '😘', '🤗',
  '😴', '😬', '🙄', '😡', '😱', '🤯', '💯', '✅', '❌', '👀', '🙌', '💪', '🤝', '👎', '💔', '⭐',
];

// ---- system messages ----------------------------------------------------------------------------

/**
 * The grey line a system message shows: "Alice renamed the group to “Plans”", "Bob added Chloé".
 * `nameOf(id)` gives a user's display name (or null when unknown); I am "You". Names are isolated
 * (FSI … PDI) so a right-to-left name keeps the words around it in order.
 */
export function systemText(system, { meId = null, nameOf = () => null } = {}) {
  if (!system) return '';
  const who = (id) => {
    if (id == null) return 'Someone';
    if (id === meId) return 'You';
    return isolated(nameOf(id) || 'Someone');
  };
  const whom = (id) => (id === meId ? 'you' : who(id));
  const actor = who(system.actor_id);
  const title = system.title != null ? `“${isolated(system.title)}”` : null;
  switch (system.action) {
    case 'chat.created':
      return title ? `${actor} created the group ${title}` : `${actor} created the group`;
    case 'chat.renamed':
      return title ? `${actor} renamed the group to ${title}` : `${actor} renamed the group`;
    case 'member.added':
      if (system.user_id == null || system.user_id === system.actor_id) return `${actor} joined the group`;
      return `${actor} added ${whom(system.user_id)}`;
    case 'member.removed':
      return `${actor} removed ${whom(system.user_id)}`;
    case 'member.left':
      return `${who(system.user_id ?? system.actor_id)} left the group`;
    case 'role.changed': {
      const role = system.role || system.title;
      const target = whom(system.user_id);
      if (role === 'owner') return `${actor} made ${target} the owner`;
      if (role === 'admin') return `${actor} made ${target} an admin`;
      if (role === 'member') return `${actor} made ${target} a member`;
      return `${actor} changed the role of ${target}`;
    }
    case 'message.pinned':
      return `${actor} pinned a message`;
    default:
      return `${actor} changed the chat`;
  }
}

export function isSystem(message) {
  return Boolean(message) && message.kind === 'system';
}

// ---- reactions ----------------------------------------------------------------------------------

/** Whether I am among a reaction's reactors. */
export function reactedBy(reaction, userId) {
  return Boolean(reaction) && (reaction.user_ids || []).includes(userId);
}

/**
 * The chips under a bubble: in the server's order (first use), each with `mine` and its reactors
 * with me first (the server lists up to 50 reactors; the list is rendered once for everyone, so the
 * caller-first order is settled here too).
 */
export function reactionChips(reactions, meId) {
  return (reactions || []).filter((r) => r && r.count > 0).map((r) => {
    const ids = r.user_ids || [];
    const mine = ids.includes(meId);
    return { emoji: r.emoji, count: r.count, mine, user_ids: mine ? [meId, ...ids.filter((id) => id !== meId)] : [...ids] };
  });
}

/**
 * What clicking an emoji does to a message: `{method: 'PUT' | 'DELETE', reactions}` where `reactions`
 * is the list as it will be once the server agrees (for showing it at once).
 */
export function toggleReaction(reactions, emoji, meId) {
  const list = (reactions || []).map((r) => ({ ...r, user_ids: [...(r.user_ids || [])] }));
  const index = list.findIndex((r) => r.emoji === emoji);
  const current = index === -1 ? null : list[index];
  if (current && current.user_ids.includes(meId)) {
    current.user_ids = current.user_ids.filter((id) => id !== meId);
    current.count -= 1;
    if (current.count <= 0) list.splice(index, 1);
    return { method: 'DELETE', reactions: list };
  }
  if (current) {
    current.user_ids = [meId, ...current.user_ids];
    current.count += 1;
  } else {
    list.push({ emoji, count: 1, user_ids: [meId] });
  }
  return { method: 'PUT', reactions: list };
}

/** "Ann, Bob and 3 others" for a chip's tooltip. */
export function reactorsLabel(chip, { meId = null, nameOf = () => null } = {}) {
  const names = chip.user_ids.map((id) => (id === meId ? 'You' : nameOf(id) || 'Someone'));
  const unnamed = Math.max(0, chip.count - names.length);
  const shown = names.slice(0, 3);
  const others = names.length - shown.length + unnamed;
  if (!others) return shown.length > 1 ? `${shown.slice(0, -1).join(', ')} and ${shown.at(-1)}` : shown[0] || '';
  return `${shown.join(', ')} and ${others} other${others === 1 ? '' : 's'}`;
}

// ---- links and mentions in a message's text -----------------------------------------------------

const LINK = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/g;
// `@username`: at the start or after a character that cannot be part of a username (not inside an
// address like ann@example.com); usernames are 3..32 of letters, digits, `_` and `.`.
const MENTION = /(^|[^\p{L}\p{N}_@])@([\p{L}\p{N}_.]{3,32})/gu;

function mentionParts(text, byUsername) {
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(MENTION)) {
    let name = match[2];
    // A sentence may end right after a mention: "thanks @ann." names ann.
    while (name.endsWith('.') && !byUsername.has(name.toLowerCase())) name = name.slice(0, -1);
    const user = byUsername.get(name.toLowerCase());
    if (!user) continue;
    const start = match.index + match[1].length;
    if (start > last) parts.push({ type: 'text', text: text.slice(last, start) });
    parts.push({ type: 'mention', text: `@${name}`, user });
    last = start + 1 + name.length;
  }
  if (last < text.length) parts.push({ type: 'text', text: text.slice(last) });
  return parts;
}

/**
 * A message's text cut into `{type: 'text' | 'link' | 'mention', text, user?}` parts: http(s) links,
 * and `@username` of a chat member (case-insensitive, as the server reads them). The view renders
 * each part as a text node or an element; nothing here produces markup.
 */
export function messageParts(text, members = []) {
  const byUsername = new Map();
  for (const member of members) {
    const user = member.user || member;
    if (user && user.username) byUsername.set(user.username.toLowerCase(), user);
  }
  const parts = [];
  let last = 0;
  const source = String(text || '');
  for (const match of source.matchAll(LINK)) {
    if (match.index > last) parts.push(...mentionParts(source.slice(last, match.index), byUsername));
    parts.push({ type: 'link', text: match[0] });
    last = match.index + match[0].length;
  }
  if (last < source.length) parts.push(...mentionParts(source.slice(last), byUsername));
  return parts;
}

export function mentionsMe(message, meId) {
  return Boolean(message) && meId != null && Array.isArray(message.mentions) && message.mentions.includes(meId);
}

/**
 * The `@word` being typed at the caret, for the composer's autocomplete: `{start, query}` where
 * `start` is the index of the `@`, or null when the caret is not in one.
 */
export function mentionAt(value, caret) {
  const before = String(value || '').slice(0, caret);
  const match = /(^|[\s([{"'«])@([\p{L}\p{N}_.]{0,32})$/u.exec(before);
  if (!match) return null;
  return { start: match.index + match[1].length, query: match[2] };
}

/** Members to offer for `@query`: username or display-name prefix first, then substring; never me. */
export function mentionCandidates(members, query, { meId = null, limit = 8 } = {}) {
  const q = fold(query);
  const scored = [];
  for (const member of members || []) {
    const user = member.user || member;
    if (!user || user.id === meId || !user.username) continue;
    const username = fold(user.username);
    const name = fold(displayName(user));
    let score;
    if (!q || username.startsWith(q)) score = 0;
    else if (name.startsWith(q) || name.split(/\s+/).some((word) => word.startsWith(q))) score = 1;
    else if (username.includes(q) || name.includes(q)) score = 2;
    else continue;
    scored.push({ user, score });
  }
  scored.sort((a, b) => a.score - b.score || a.user.username.localeCompare(b.user.username));
  return scored.slice(0, limit).map((s) => s.user);
}

/** Put `@username ` in place of the `@query` being typed; returns the new value and caret. */
export function insertMention(value, { start, caret }, username) {
  const text = String(value || '');
  const insert = `@${username} `;
  const after = text.slice(caret).replace(/^[\p{L}\p{N}_.]*/u, '').replace(/^ /, '');
  return { value: text.slice(0, start) + insert + after, caret: start + insert.length };
}

// ---- search hits --------------------------------------------------------------------------------

/** One code point's comparable form: accents removed, lower case (as the server's search folds). */
function foldPoint(point) {
  return point.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase().normalize('NFD').replace(/\p{M}/gu, '');
}

export function fold(text) {
  return [...String(text || '')].map(foldPoint).join('');
}

/**
 * `text` cut into `{text, hit}` parts where every case- and accent-insensitive occurrence of `query`
 * is a hit (CJK and every other script as they are). The parts join back to `text` exactly.
 */
export function highlightParts(text, query) {
  const source = String(text || '');
  const needle = fold(String(query || '').trim());
  if (!needle || !source) return source ? [{ text: source, hit: false }] : [];
  // folded[i] comes from the code point starting at original[owner[i]]
  const points = [...source];
  let folded = '';
  const owner = [];
  const starts = [];
  let offset = 0;
  points.forEach((point, index) => {
    starts.push(offset);
    const f = foldPoint(point);
    for (let k = 0; k < f.length; k += 1) owner.push(index);
    folded += f;
    offset += point.length;
  });
  starts.push(offset);
  const ranges = [];
  let from = 0;
  while (from <= folded.length - needle.length) {
    const at = folded.indexOf(needle, from);
    if (at === -1) break;
    const first = owner[at];
    const last = owner[at + needle.length - 1];
    const range = [starts[first], starts[last + 1]];
    if (ranges.length && range[0] < ranges.at(-1)[1]) ranges.at(-1)[1] = Math.max(ranges.at(-1)[1], range[1]);
    else ranges.push(range);
    from = at + needle.length;
  }
  const parts = [];
  let last = 0;
  for (const [start, end] of ranges) {
    if (start > last) parts.push({ text: source.slice(last, start), hit: false });
    parts.push({ text: source.slice(start, end), hit: true });
    last = end;
  }
  if (last < source.length) parts.push({ text: source.slice(last), hit: false });
  return parts;
}

/** A search result's line: whitespace collapsed and, when long, cut around the first hit. */
export function hitExcerpt(text, query, radius = 60) {
  const flat = String(text || '').replace(/\s+/g, ' ').trim();
  const parts = highlightParts(flat, query);
  const firstHit = parts.findIndex((p) => p.hit);
  const hitStart = firstHit === -1 ? 0 : parts.slice(0, firstHit).reduce((n, p) => n + p.text.length, 0);
  const start = Math.max(0, hitStart - radius);
  const end = Math.min(flat.length, hitStart + radius * 2);
  let cut = flat.slice(start, end);
  // never split a surrogate pair at the cut
  if (/^[\uDC00-\uDFFF]/.test(cut)) cut = cut.slice(1);
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
  return `${start > 0 ? '…' : ''}${cut}${end < flat.length ? '…' : ''}`;
}

// ---- replies, forwards, notifications -----------------------------------------------------------

/** What a reply quote says of its original (a Message or the `reply_to` summary of one). */
export function quoteText(original) {
  if (!original) return '';
  if (original.deleted) return 'Deleted message';
  const text = String(original.content || '').replace(/\s+/g, ' ').trim();
  const attachment = original.attachment;
  if (attachment) {
    const label = attachment.kind === 'file' ? (attachment.name || 'File') : 'Photo';
    return text ? `${label} · ${text}` : label;
  }
  return text;
}

const REPLY_PREVIEW_CHARS = 200;

/**
 * The `reply_to` of a message answering `message`, as the server renders it (at most the first 200
 * characters): what a pending reply shows until the server's copy arrives.
 */
export function replySummary(message) {
  return {
    id: message.id,
    sender: message.sender || null,
    content: [...(message.content || '')].slice(0, REPLY_PREVIEW_CHARS).join(''),
    attachment: message.attachment || null,
    deleted: Boolean(message.deleted),
  };
}

/** The reply target the keyboard moves to: from `current` (a message id or null) one step older or newer. */
export function replyStep(messages, current, direction) {
  const candidates = (messages || []).filter((m) => m && !m.deleted && !isSystem(m) && m.id > 0);
  if (!candidates.length) return null;
  if (current == null) return direction === 'older' ? candidates.at(-1) : null;
  const index = candidates.findIndex((m) => m.id === current);
  if (index === -1) return direction === 'older' ? candidates.at(-1) : null;
  const next = candidates[index + (direction === 'older' ? -1 : 1)];
  return next || (direction === 'older' ? candidates[index] : null);
}

/** My newest message that can still be edited (Up arrow in an empty composer). */
export function lastEditable(messages, meId) {
  for (let i = (messages || []).length - 1; i >= 0; i -= 1) {
    const m = messages[i];
    if (m && m.sender && m.sender.id === meId && !m.deleted && !isSystem(m) && m.content && !m.forwarded_from) return m;
  }
  return null;
}

/** Pin and unpin: any member of a direct chat; the owner or an admin of a group. */
export function canPin(chat) {
  if (!chat) return false;
  return !chat.is_group || chat.my_role === 'owner' || chat.my_role === 'admin';
}

/**
 * Whether a new message is worth a desktop notification: someone else's text message, and in a muted
 * chat only when it mentions me.
 */
export function shouldNotify(message, chat, meId) {
  if (!message || message.deleted || isSystem(message)) return false;
  if (!message.sender || message.sender.id === meId) return false;
  if (chat && chat.muted) return mentionsMe(message, meId);
  return true;
}

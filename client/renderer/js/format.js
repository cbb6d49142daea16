// Dates and short texts as the views show them. Pure functions, usable in Node.

function toDate(value) {
  return value instanceof Date ? value : new Date(value);
}

export function sameDay(a, b) {
  const x = toDate(a);
  const y = toDate(b);
  return x.getFullYear() === y.getFullYear() && x.getMonth() === y.getMonth() && x.getDate() === y.getDate();
}

export function timeOfDay(value) {
  return toDate(value).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/** The sidebar's time: 14:05 today, "Mon" this week, "12 Mar" this year, else "12/03/2023". */
export function shortStamp(value, now = new Date()) {
  if (!value) return '';
  const date = toDate(value);
  if (sameDay(date, now)) return timeOfDay(date);
  const days = (now - date) / 86_400_000;
  if (days < 6) return date.toLocaleDateString([], { weekday: 'short' });
  if (date.getFullYear() === now.getFullYear()) return date.toLocaleDateString([], { day: 'numeric', month: 'short' });
  return date.toLocaleDateString();
}

/** The label of a day separator in the history. */
export function dayLabel(value, now = new Date()) {
  const date = toDate(value);
  if (sameDay(date, now)) return 'Today';
  const yesterday = new Date(now);
  yesterday.setDate(now.getDate() - 1);
  if (sameDay(date, yesterday)) return 'Yesterday';
  const options = { weekday: 'long', day: 'numeric', month: 'long' };
  if (date.getFullYear() !== now.getFullYear()) options.year = 'numeric';
  return date.toLocaleDateString([], options);
}

export function lastSeen(user, now = new Date()) {
  if (!user) return '';
  if (user.is_online) return 'online';
  if (!user.last_seen) return 'offline';
  const date = toDate(user.last_seen);
  const minutes = Math.round((now - date) / 60_000);
  if (minutes < 1) return 'last seen just now';
  if (minutes < 60) return `last seen ${minutes} min ago`;
  if (sameDay(date, now)) return `last seen at ${timeOfDay(date)}`;
  return `last seen ${shortStamp(date, now)}`;
}

/** One line describing a message in the sidebar. */
export function preview(message) {
  if (!message) return 'No messages yet';
  if (message.deleted) return 'Message deleted';
  const text = (message.content || '').replace(/\s+/g, ' ').trim();
  if (message.attachment || message.attachment_url) {
    const label = message.attachment?.kind === 'file' ? `File: ${message.attachment.name || 'unnamed'}` : 'Photo';
    return text ? `${label} · ${text}` : label;
  }
  return text;
}

/**
 * Where a draft stands against the message limit: the counter shows from 90% of it on, and a
 * draft over it cannot be sent (the text is never cut: a paste arrives whole).
 */
export function lengthStatus(text, limit) {
  const length = [...String(text || '').trim()].length;
  return { length, limit, over: length > limit, near: length >= Math.floor(limit * 0.9), left: limit - length };
}

/**
 * What the sign-up form can tell before asking the server, field by field (empty fields are the
 * form's own check). The server's validators still decide: a common password is only known there.
 */
export function registrationProblems({ username = '', email = '', password = '' }) {
  const problems = {};
  if (username && !/^[A-Za-z0-9_.]{3,32}$/.test(username)) problems.username = ['Use 3–32 letters, digits, _ or .'];
  if (email && !/^[^\s@]+@[^\s@]+$/.test(email)) problems.email = ['Enter an email address like name@example.com.'];
  const passwordProblems = [];
  if (password && password.length < 8) passwordProblems.push('Use at least 8 characters.');
  if (password && /^\d+$/.test(password)) passwordProblems.push('Use more than digits.');
  if (passwordProblems.length) problems.password = passwordProblems;
  return problems;
}

export function fileSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

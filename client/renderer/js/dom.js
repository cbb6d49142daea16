// Small DOM helpers shared by the views. Text always goes in through text nodes, never innerHTML,
// so nothing a user types can become markup.
import { icon } from './icons.js';
import { displayName } from './store.js';
import { messageParts, highlightParts } from './conversation.js';

/** h('div', {class: 'x', onclick: fn, 'aria-label': 'y'}, child, [children], 'text') */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'style' && typeof value === 'object') Object.assign(el.style, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key in el && typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

/** Replace an element's children, keeping keyboard focus on an equivalent element if it had it. */
export function replaceChildren(el, children, focusKey = 'focusKey') {
  const active = document.activeElement;
  const key = active && el.contains(active) ? active.dataset[focusKey] : null;
  clear(el);
  append(el, [children]);
  if (key) el.querySelector(`[data-${focusKey.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}="${CSS.escape(key)}"]`)?.focus();
}

/**
 * Keyed reconciliation for long lists (the message history): an item whose signature is unchanged
 * keeps its DOM node, so loaded images and scroll anchors survive re-renders.
 */
export function renderKeyed(container, items, { key, signature, build }) {
  const cache = container.__keyed || (container.__keyed = new Map());
  const fresh = new Map();
  const nodes = items.map((item) => {
    const k = key(item);
    const sig = signature(item);
    let entry = cache.get(k);
    if (!entry || entry.sig !== sig) entry = { node: build(item), sig };
    fresh.set(k, entry);
    return entry.node;
  });
  container.__keyed = fresh;
  const keep = new Set(nodes);
  for (const child of [...container.childNodes]) if (!keep.has(child)) child.remove();
  let reference = container.firstChild;
  for (const node of nodes) {
    if (node === reference) reference = reference.nextSibling;
    else container.insertBefore(node, reference);
  }
}

const AVATAR_COLORS = ['#e17076', '#7bc862', '#65aadd', '#a695e7', '#ee7aae', '#6ec9cb', '#faa774', '#5a9bd4'];

export function initials(name) {
  const parts = String(name || '?').trim().split(/\s+/).filter(Boolean);
  const letters = parts.length > 1 ? parts[0][0] + parts[1][0] : (parts[0] || '?').slice(0, 2);
  return letters.toUpperCase();
}

/**
 * A round avatar: the initials on a colour, and over them the profile picture once `picture` (a
 * promise of an image src, see avatar.js) resolves; the initials stay when there is none or it fails.
 */
export function avatar(name, id, { online = null, size = 'md', picture = null } = {}) {
  const color = AVATAR_COLORS[Math.abs(Number(id) || 0) % AVATAR_COLORS.length];
  const element = h('span', { class: `avatar avatar--${size}`, style: { background: color }, 'aria-hidden': 'true' },
    initials(name),
    online === null ? null : h('span', { class: `presence ${online ? 'presence--on' : ''}` }));
  picture?.then((src) => {
    const img = h('img', { class: 'avatar__picture', src, alt: '', onerror: () => img.remove() });
    element.prepend(img);
  }, () => {});
  return element;
}

/** Text with http(s) links made clickable (opened outside the app). */
export function linkified(text) {
  const parts = [];
  const pattern = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/g;
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    if (match.index > last) parts.push(text.slice(last, match.index));
    parts.push(h('a', { href: match[0], target: '_blank', rel: 'noopener noreferrer' }, match[0]));
    last = match.index + match[0].length;
  }
  if (last < text.length) parts.push(text.slice(last));
  return parts;
}

/**
 * A message's text as nodes: links clickable (opened outside the app), `@username` of a member marked
 * (`mention--me` when it names me); every piece enters as text.
 */
export function richText(text, members, meId) {
  return messageParts(text, members).map((part) => {
    if (part.type === 'link') return h('a', { href: part.text, target: '_blank', rel: 'noopener noreferrer' }, part.text);
    if (part.type === 'mention') {
      return h('span', { class: `mention${part.user.id === meId ? ' mention--me' : ''}`, title: displayName(part.user), text: part.text });
    }
    return part.text;
  });
}

/** Text with the parts matching a search in <mark>. */
export function highlighted(text, query) {
  return highlightParts(text, query).map((part) => (part.hit ? h('mark', { class: 'hit', text: part.text }) : part.text));
}

/** A modal dialog: Escape and the backdrop close it, focus moves in and returns when it closes. */
export function openModal(title, body, { onClose = () => {}, className = '' } = {}) {
  const previous = document.activeElement;
  const close = () => {
    backdrop.remove();
    document.removeEventListener('keydown', onKey, true);
    previous?.focus?.();
    onClose();
  };
  const onKey = (event) => {
    if (event.key === 'Escape') {
      event.stopPropagation();
      close();
    }
  };
  const dialog = h('div', { class: `modal ${className}`, role: 'dialog', 'aria-modal': 'true', 'aria-label': title },
    h('header', { class: 'modal__header' },
      h('h2', { text: title }),
      h('button', { class: 'icon-button', type: 'button', 'aria-label': 'Close', onclick: close }, icon('close'))),
    body);
  const backdrop = h('div', { class: 'backdrop', onclick: (e) => e.target === backdrop && close() }, dialog);
  document.body.append(backdrop);
  document.addEventListener('keydown', onKey, true);
  (dialog.querySelector('input, textarea, button:not(.icon-button)') || dialog.querySelector('button'))?.focus();
  return { close, dialog };
}

/** Show an image full size over everything. */
export function openLightbox(src, alt = 'Image') {
  const { dialog } = openModal(alt, h('img', { class: 'lightbox__image', src, alt }), { className: 'modal--lightbox' });
  return dialog;
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/**
 * A user's name as an element: the display name in a <bdi> (isolated: a right-to-left name cannot
 * reorder what follows it), and with `handle` their `@username` beside it, which no one else has
 * (display names are not unique: in a group, two "Alice"s are told apart by it).
 */
export function userName(user, { handle = false, suffix = '' } = {}) {
  return [
    h('bdi', { class: 'name', text: displayName(user) }),
    suffix || null,
    handle && user?.username ? h('span', { class: 'handle', text: ` @${user.username}` }) : null,
  ];
}

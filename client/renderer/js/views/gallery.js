// The media gallery, in two tabs: Images (a grid of thumbnails that open full size) and Files (name,
// size, sender, date and a download). The chat's panel shows one chat's (GET /api/chats/{id}/media);
// the "Media" dialog shows every chat's (GET /api/media), each row naming its chat.
import { h, openLightbox, openModal, replaceChildren } from '../dom.js';
import { displayName } from '../store.js';
import { shortStamp } from '../format.js';
import { fileCard } from './files.js';

const TABS = [{ kind: 'image', label: 'Images' }, { kind: 'file', label: 'Files' }];
let mounted = 0; // gives each gallery's tabs ids of their own (the panel's and the dialog's may both be open)

/**
 * @param {object} app
 * @param {object} options
 * @param {Function} options.load     (next, kind) => Promise<{results, next}>
 * @param {boolean} [options.perChat] rows name their chat (the account-wide feed)
 */
export function mountGallery(app, { load, perChat = false }) {
  const { api, store } = app;
  let kind = 'image';
  let state = { items: [], next: null, loading: false, error: null };
  let request = 0;
  const idPrefix = `gallery-${++mounted}`;

  const tabs = TABS.map((tab) => h('button', {
    type: 'button', role: 'tab', class: 'gallery-tabs__tab', id: `${idPrefix}-${tab.kind}`, dataset: { kind: tab.kind },
    onclick: () => select(tab.kind),
    onkeydown: (event) => {
      if (event.key !== 'ArrowLeft' && event.key !== 'ArrowRight') return;
      const other = TABS.find((t) => t.kind !== tab.kind).kind;
      select(other);
      tabs.find((b) => b.dataset.kind === other).focus();
    },
  }, tab.label));
  const body = h('div', { class: 'gallery-tabs__panel', role: 'tabpanel' });
  const element = h('div', { class: 'gallery-tabs' },
    h('div', { class: 'gallery-tabs__list', role: 'tablist', 'aria-label': 'Media kind' }, tabs), body);

  function select(next) {
    if (next === kind && state.items.length) return;
    kind = next;
    reload();
  }

  async function more(reset = false) {
    if (reset) state = { items: [], next: null, loading: false, error: null };
    if (state.loading && !reset) return;
    const mine = ++request;
    const forKind = kind;
    state.loading = true;
    render();
    try {
      const page = await load(reset ? null : state.next, forKind);
      if (mine !== request) return;
      state.items.push(...(page.results || []));
      state.next = page.next || null;
    } catch (error) {
      if (mine !== request) return;
      state.error = error.message;
    }
    state.loading = false;
    render();
  }

  function reload() {
    return more(true);
  }

  function where(item) {
    const chat = perChat ? store.getChat(item.chat_id) : null;
    const parts = [displayName(item.sender), shortStamp(item.attachment.created_at)];
    if (chat) parts.push(`in ${store.chatTitle(chat)}`);
    return parts.join(' · ');
  }

  function image(item) {
    const label = `Photo from ${displayName(item.sender)}`;
    const img = h('img', { alt: label, loading: 'lazy' });
    const button = h('button', { type: 'button', class: 'gallery__item', title: where(item), 'aria-label': label }, img);
    api.attachmentUrl(item.attachment.url).then((src) => {
      img.src = src;
      button.addEventListener('click', () => openLightbox(src, img.alt));
    }, () => {
      img.alt = 'Image unavailable';
    });
    return button;
  }

  function render() {
    for (const tab of tabs) {
      const selected = tab.dataset.kind === kind;
      tab.setAttribute('aria-selected', String(selected));
      tab.tabIndex = selected ? 0 : -1;
    }
    body.setAttribute('aria-labelledby', `${idPrefix}-${kind}`);
    const { items } = state;
    let content;
    if (state.error) content = h('p', { class: 'form-error', text: state.error });
    else if (!items.length) {
      content = h('p', { class: 'muted panel__empty', text: state.loading ? 'Loading…' : (kind === 'image' ? 'No photos shared yet.' : 'No files shared yet.') });
    } else if (kind === 'image') content = h('div', { class: 'gallery' }, items.map(image));
    else {
      content = h('ul', { class: 'file-list', 'aria-label': 'Files' },
        items.map((item) => h('li', {}, fileCard(item.attachment, { api, details: where(item) }))));
    }
    replaceChildren(body, [content,
      state.next && !state.loading ? h('button', { class: 'button button--wide', type: 'button', onclick: () => more() }, 'Load more') : null]);
  }

  return {
    element,
    reload,
    /** Whether a newly loaded message should appear here (it has an attachment of the shown kind not listed yet). */
    lacks(message) {
      const attachment = message?.attachment;
      if (!attachment && !message?.attachment_url) return false;
      if ((attachment?.kind || 'image') !== kind) return false;
      return !state.items.some((item) => item.message_id === message.id);
    },
  };
}

/** Every chat's images and files, in a dialog (the sidebar's "Media"). */
export function openMediaFeed(app) {
  const gallery = mountGallery(app, { load: (next, kind) => app.api.mediaFeed(next, kind), perChat: true });
  openModal('Media', gallery.element, { className: 'modal--media' });
  gallery.reload();
}

// The card of a message's link preview, under its text: the site, the page's title and description as
// the server fetched them (`message.link_preview`, which a `message.updated` brings after the send).
// The page's image is left out: loading it from the page's server would tell that server the address
// of everyone who opens the chat (the Content-Security-Policy allows images from this server only).
import { h } from '../dom.js';

export function previewCard(preview) {
  if (!preview || !(preview.title || preview.description)) return null;
  let url;
  try {
    url = new URL(preview.url);
  } catch {
    return null;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  const site = preview.site_name || url.hostname;
  return h('a', {
    class: 'link-preview', href: url.href, target: '_blank', rel: 'noopener noreferrer',
    'aria-label': `${site}: ${preview.title || preview.description}`,
  },
  h('span', { class: 'link-preview__site', text: site }),
  preview.title ? h('span', { class: 'link-preview__title', text: preview.title }) : null,
  preview.description ? h('span', { class: 'link-preview__description', text: preview.description }) : null);
}

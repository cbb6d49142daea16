// Forward a message: a dialog listing my chats (filtered as I type); choosing one sends the copy
// there and opens that chat.
import { h, avatar, openModal, replaceChildren } from '../dom.js';
import { fold, quoteText } from '../conversation.js';

export function openForwardPicker(app, message) {
  const { store, actions } = app;
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const results = h('div', { class: 'picker__results', role: 'list' });
  const filter = h('input', {
    type: 'search', placeholder: 'Search chats', 'aria-label': 'Search chats', oninput: () => render(),
    onkeydown: (event) => {
      if (event.key === 'ArrowDown') {
        event.preventDefault();
        results.querySelector('button')?.focus();
      }
    },
  });
  const body = h('div', { class: 'forward' },
    h('p', { class: 'forward__quote muted', text: quoteText(message) }),
    filter, error, results);
  const { close } = openModal('Forward to…', body);
  filter.focus();

  async function send(chat, button) {
    button.disabled = true;
    error.hidden = true;
    try {
      await actions.forward(message, chat.id);
      close();
      app.openChat(chat.id);
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
      button.disabled = false;
    }
  }

  function render() {
    const needle = fold(filter.value.trim());
    const chats = store.chatList().filter((chat) => !needle || fold(store.chatTitle(chat)).includes(needle));
    replaceChildren(results, chats.length ? chats.map((chat) => {
      const peer = store.peerOf(chat);
      const button = h('button', {
        type: 'button', class: 'picker__item', role: 'listitem', dataset: { chatId: chat.id },
        onclick: () => send(chat, button),
      },
      avatar(store.chatTitle(chat), chat.is_group ? -chat.id : peer?.id, { size: 'sm', picture: app.picture(peer) }),
      h('bdi', { text: store.chatTitle(chat) }));
      return button;
    }) : h('p', { class: 'muted', text: 'No matching chats' }));
  }
  render();
}

// When the chat on screen goes away because I was removed from the group (member.removed, or a 404
// for it), say so instead of letting it vanish: who removed me, from which group. Leaving on my own
// (the group info panel's Leave) says nothing: the panel notes it with app.noteLeaving(chatId).
import { h, openModal } from '../dom.js';
import { displayName } from '../store.js';
import { removalText } from '../groups.js';

export function watchRemovals(app) {
  const { store } = app;
  const leaving = new Set();
  let seen = null; // the active chat, as of the last change

  /** Say that I am leaving `chatId` (or, with `false`, that leaving failed). */
  app.noteLeaving = (chatId, yes = true) => (yes ? leaving.add(chatId) : leaving.delete(chatId));

  const nameOf = (id) => {
    const user = store.userById(id);
    return user ? displayName(user) : null;
  };

  const unsubscribe = store.subscribe(() => {
    const active = store.state.activeChatId;
    if (seen && active !== seen.id && !store.getChat(seen.id) && store.state.user) {
      if (!leaving.delete(seen.id) && seen.is_group) show(seen);
    }
    seen = active ? store.getChat(active) || null : null;
  });

  function show(chat) {
    const text = removalText(chat, store.state.user.id, nameOf);
    const { close } = openModal('Removed from the group', h('div', { class: 'removed-notice', role: 'alert' },
      h('p', { text: `${text} Its messages are no longer available here.` }),
      h('div', { class: 'modal__actions' }, h('button', { class: 'button button--primary', type: 'button', onclick: () => close() }, 'OK'))));
  }

  return { destroy: unsubscribe };
}

// The "new group" dialog: a title and members picked by search.
import { h, avatar, openModal, debounce, replaceChildren, userName } from '../dom.js';
import { displayName } from '../store.js';
import { icon } from '../icons.js';

export function openNewGroup(app) {
  const { api, store } = app;
  const picked = new Map();
  const title = h('input', { id: 'group-title', maxlength: 128, required: true, autocomplete: 'off' });
  const titleError = h('p', { class: 'field__error', role: 'alert' });
  const search = h('input', { id: 'group-search', type: 'search', autocomplete: 'off', placeholder: 'Search people' });
  const results = h('div', { class: 'picker__results' });
  const chips = h('div', { class: 'chips', 'aria-live': 'polite' });
  const formError = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const submit = h('button', { class: 'button button--primary', type: 'submit' }, 'Create group');

  function renderChips() {
    replaceChildren(chips, [...picked.values()].map((user) =>
      h('span', { class: 'chip' }, userName(user),
        h('button', {
          type: 'button', class: 'chip__remove', 'aria-label': `Remove ${displayName(user)}`,
          onclick: () => {
            picked.delete(user.id);
            renderChips();
          },
        }, icon('close', { size: 14 })))));
  }

  const find = debounce(async () => {
    const q = search.value.trim();
    if (!q) return replaceChildren(results, []);
    const users = (await api.searchUsers(q).catch(() => [])).filter((u) => u.id !== store.state.user.id);
    replaceChildren(results, users.length ? users.map((user) =>
      h('button', {
        type: 'button', class: 'picker__item', onclick: () => {
          picked.set(user.id, user);
          renderChips();
          search.value = '';
          replaceChildren(results, []);
          search.focus();
        },
      }, avatar(displayName(user), user.id, { size: 'sm', picture: app.picture(user) }), h('span', {}, userName(user, { handle: true }))))
      : [h('p', { class: 'muted', text: 'Nobody found' })]);
  }, 250);
  search.addEventListener('input', find);

  const form = h('form', {
    class: 'stack', onsubmit: async (event) => {
      event.preventDefault();
      titleError.textContent = '';
      formError.hidden = true;
      if (!title.value.trim()) {
        titleError.textContent = 'Give the group a name.';
        title.focus();
        return;
      }
      submit.disabled = true;
      try {
        const chat = await api.createGroup({ title: title.value.trim(), memberIds: [...picked.keys()] });
        store.upsertChat(chat);
        modal.close();
        app.openChat(chat.id);
      } catch (error) {
        submit.disabled = false;
        const fields = error.fields || {};
        if (fields.title) titleError.textContent = fields.title.join(' ');
        else {
          formError.textContent = fields.member_ids ? fields.member_ids.join(' ') : error.message;
          formError.hidden = false;
        }
      }
    },
  },
  h('div', { class: 'field' }, h('label', { for: 'group-title', text: 'Group name' }), title, titleError),
  h('div', { class: 'field' }, h('label', { for: 'group-search', text: 'Members' }), chips, search, results),
  formError,
  h('div', { class: 'modal__actions' }, submit));

  const modal = openModal('New group', form);
}

// Leaving a group I own: whom to hand it to. Resolves to the chosen member's id, or null when the
// owner thinks better of it (Cancel, Escape, the backdrop). The server makes that member the owner
// as I leave (DELETE …/members/{me}?heir_id=), in one transaction: never a group without an owner.
import { h, avatar, openModal, userName } from '../dom.js';
import { displayName, isolated } from '../store.js';
import { heirCandidates } from '../groups.js';

const ROLE_LABEL = { admin: 'Admin', member: 'Member' };

export function openHandover(app, chat) {
  const me = app.store.state.user;
  const candidates = heirCandidates(chat, me.id, displayName);
  return new Promise((resolve) => {
    let answer = null;
    const list = h('div', { class: 'handover__list', role: 'radiogroup', 'aria-label': 'New owner' },
      candidates.map((member, index) => {
        const user = app.store.userById(member.user.id) || member.user;
        return h('label', { class: 'handover__item' },
          h('input', { type: 'radio', name: 'handover-heir', value: String(user.id), checked: index === 0 }),
          avatar(displayName(user), user.id, { size: 'sm', picture: app.picture(user) }),
          h('span', { class: 'member__text' }, h('strong', {}, userName(user)), h('span', { class: 'muted', text: `@${user.username}` })),
          h('span', { class: `role role--${member.role}`, text: ROLE_LABEL[member.role] || member.role }));
      }));
    const form = h('form', {
      class: 'handover', onsubmit: (event) => {
        event.preventDefault();
        const picked = form.querySelector('input[name="handover-heir"]:checked');
        if (!picked) return;
        answer = Number(picked.value);
        modal.close();
      },
    },
    h('p', { text: `You own “${isolated(app.store.chatTitle(chat))}”. Choose who owns it after you leave.` }),
    list,
    h('div', { class: 'modal__actions' },
      h('button', { class: 'button', type: 'button', onclick: () => modal.close() }, 'Cancel'),
      h('button', { class: 'button button--danger', type: 'submit' }, 'Hand over and leave')));
    const modal = openModal('Leave the group', form, { onClose: () => resolve(answer) });
  });
}

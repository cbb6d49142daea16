// The right-hand panel: group info (members, roles, add/remove, rename, leave) or a direct chat's
// profile, and the chat's media gallery (views/gallery.js: Images and Files).
import { h, avatar, replaceChildren, debounce, userName } from '../dom.js';
import { displayName, isolated } from '../store.js';
import { lastSeen } from '../format.js';
import { icon } from '../icons.js';
import { mountGallery } from './gallery.js';
import { roleChange, canRemove, sortMembers } from '../groups.js';
import { openHandover } from './handover.js';

const ROLE_LABEL = { owner: 'Owner', admin: 'Admin', member: 'Member' };

export function mountPanel(layout, app) {
  const { store, api } = app;
  let kind = null; // 'info' | 'media' | null
  let chatId = null;
  let gallery = null; // the media gallery of chatId while it shows

  const title = h('h2', { class: 'panel__title' });
  const content = h('div', { class: 'panel__content' });
  const element = h('aside', { class: 'panel', hidden: true, 'aria-label': 'Details', onkeydown: (e) => e.key === 'Escape' && close() },
    h('header', { class: 'panel__header' },
      title,
      h('button', { class: 'icon-button', type: 'button', 'aria-label': 'Close panel', onclick: () => close() }, icon('close'))),
    content);
  layout.append(element);

  function open(which) {
    kind = which;
    chatId = store.state.activeChatId;
    element.hidden = !chatId;
    layout.classList.toggle('layout--panel-open', Boolean(chatId));
    if (which === 'media') {
      const forChat = chatId;
      gallery = mountGallery(app, { load: (next, mediaKind) => api.media(forChat, next, mediaKind) });
      gallery.reload();
    } else gallery = null;
    render();
    element.querySelector('.panel__header button')?.focus();
  }

  function close() {
    kind = null;
    element.hidden = true;
    layout.classList.remove('layout--panel-open');
  }

  function render() {
    if (!kind || !chatId) return;
    const chat = store.getChat(chatId);
    if (!chat) return close();
    if (kind === 'media') {
      title.textContent = 'Shared media';
      replaceChildren(content, [gallery.element]);
    } else if (chat.is_group) {
      title.textContent = 'Group info';
      replaceChildren(content, renderGroup(chat));
    } else {
      title.textContent = 'Profile';
      replaceChildren(content, renderProfile(chat));
    }
  }

  // ---- profile of a direct chat -------------------------------------------------------------

  function renderProfile(chat) {
    const peer = store.peerOf(chat);
    if (!peer) return [];
    return [h('div', { class: 'profile' },
      avatar(displayName(peer), peer.id, { size: 'xl', online: Boolean(peer.is_online), picture: app.picture(peer) }),
      h('h3', {}, userName(peer)),
      h('p', { class: 'muted', text: `@${peer.username}` }),
      h('p', { class: peer.is_online ? 'online-text' : 'muted', text: lastSeen(peer) })),
    h('button', { class: 'button button--wide', type: 'button', onclick: () => open('media') }, 'Shared media')];
  }

  // ---- group info ---------------------------------------------------------------------------

  function renderGroup(chat) {
    const me = store.state.user;
    const canManage = chat.my_role === 'owner' || chat.my_role === 'admin';
    const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const fail = (e) => {
      error.textContent = e.message;
      error.hidden = false;
    };

    const titleInput = h('input', { id: 'group-title-edit', value: chat.title || '', maxlength: 128, disabled: !canManage });
    const titleForm = h('form', {
      class: 'field', onsubmit: async (event) => {
        event.preventDefault();
        try {
          store.upsertChat(await api.renameChat(chat.id, titleInput.value.trim()));
        } catch (e) {
          fail(e);
        }
      },
    },
    h('label', { for: 'group-title-edit', text: 'Group name' }),
    canManage ? h('div', { class: 'inline-form' }, titleInput, h('button', { class: 'button', type: 'submit' }, 'Rename')) : titleInput);

    const members = sortMembers(chat.members, displayName);
    const memberList = h('ul', { class: 'members', 'aria-label': 'Members' }, members.map((member) => {
      const user = store.userById(member.user.id) || member.user;
      const isMe = user.id === me.id;
      const removable = canRemove(chat.my_role, member, me.id);
      const newRole = roleChange(chat.my_role, member, me.id);
      return h('li', { class: 'member', dataset: { userId: user.id } },
        avatar(displayName(user), user.id, { size: 'sm', online: Boolean(user.is_online), picture: app.picture(user) }),
        h('span', { class: 'member__text' },
          h('strong', {}, userName(user, { suffix: isMe ? ' (you)' : '' })),
          // The @username on its own line, where a long display name cannot push it out of sight.
          h('span', { class: 'muted' }, h('span', { class: 'handle', text: `@${user.username}` }), ` · ${lastSeen(user)}`)),
        h('span', { class: `role role--${member.role}`, text: ROLE_LABEL[member.role] || member.role }),
        newRole ? h('button', {
          class: 'icon-button', type: 'button', title: newRole === 'admin' ? 'Make admin' : 'Remove admin',
          'aria-label': `${newRole === 'admin' ? 'Make admin' : 'Remove admin'}: ${displayName(user)}`,
          onclick: async () => {
            try {
              store.upsertChat(await api.setRole(chat.id, user.id, newRole));
            } catch (e) {
              fail(e);
            }
          },
        }, icon(newRole === 'admin' ? 'promote' : 'demote', { size: 18 })) : null,
        removable ? h('button', {
          class: 'icon-button', type: 'button', 'aria-label': `Remove ${displayName(user)}`, title: 'Remove from group',
          onclick: async () => {
            if (!window.confirm(`Remove ${isolated(displayName(user))} from the group?`)) return;
            try {
              await api.removeMember(chat.id, user.id);
              store.upsertChat(await api.chat(chat.id));
            } catch (e) {
              fail(e);
            }
          },
        }, icon('close', { size: 18 })) : null);
    }));

    const addSection = canManage ? addMemberForm(chat, fail) : null;
    const leave = h('button', {
      class: 'button button--danger button--wide', type: 'button', onclick: async () => {
        // An owner hands the group to someone of their choosing; anyone else just confirms.
        const heirId = chat.my_role === 'owner' && chat.members.length > 1 ? await openHandover(app, chat) : undefined;
        if (heirId === null) return;
        if (heirId === undefined && !window.confirm(`Leave “${store.chatTitle(chat)}”?`)) return;
        // Noted first: the socket's member.removed may come before this answer, and leaving is no removal.
        app.noteLeaving?.(chat.id);
        try {
          await api.removeMember(chat.id, me.id, { heirId });
          close();
          store.removeChat(chat.id);
          app.openChat(null);
        } catch (e) {
          app.noteLeaving?.(chat.id, false);
          fail(e);
        }
      },
    }, 'Leave group');

    return [titleForm,
      h('h3', { class: 'panel__subheading', text: `${chat.members.length} member${chat.members.length === 1 ? '' : 's'}` }),
      addSection, memberList, error,
      h('button', { class: 'button button--wide', type: 'button', onclick: () => open('media') }, 'Shared media'),
      leave];
  }

  function addMemberForm(chat, fail) {
    const input = h('input', { id: 'add-member', type: 'search', placeholder: 'Add people…', autocomplete: 'off', 'aria-label': 'Add a member' });
    const results = h('div', { class: 'picker__results' });
    const find = debounce(async () => {
      const q = input.value.trim();
      if (!q) return replaceChildren(results, []);
      const inChat = new Set(chat.members.map((m) => m.user.id));
      const users = (await api.searchUsers(q).catch(() => [])).filter((u) => !inChat.has(u.id));
      replaceChildren(results, users.length ? users.map((user) => h('button', {
        type: 'button', class: 'picker__item', onclick: async () => {
          try {
            store.upsertChat(await api.addMember(chat.id, user.id));
          } catch (e) {
            fail(e);
          }
        },
      }, avatar(displayName(user), user.id, { size: 'sm', picture: app.picture(user) }), h('span', {}, userName(user, { handle: true }))))
        : [h('p', { class: 'muted', text: 'Nobody to add' })]);
    }, 250);
    input.addEventListener('input', find);
    return h('div', { class: 'field' }, input, results);
  }

  const unsubscribe = store.subscribe((topics) => {
    if (!kind) return;
    if (topics.has('active')) {
      if (store.state.activeChatId === null) return close();
      open(kind);
      return;
    }
    if (kind === 'info' && (topics.has('chats') || topics.has('presence'))) {
      // Do not re-render under the user's fingers while they type in the panel.
      if (!element.contains(document.activeElement) || document.activeElement.tagName !== 'INPUT') render();
    }
    if (kind === 'media' && gallery && topics.has(`messages:${chatId}`) && gallery.lacks(store.messagesOf(chatId).at(-1))) {
      gallery.reload();
    }
  });

  return {
    element,
    open,
    close,
    destroy: unsubscribe,
  };
}

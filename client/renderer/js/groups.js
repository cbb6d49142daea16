// Who may do what in a group, as the server decides it (chats/services.py), so the group info panel
// offers only the controls that will work: the owner promotes and demotes; the owner removes anyone,
// an admin plain members; an owner who leaves names the heir.

import { isolated } from './store.js';

const ROLE_ORDER = { owner: 0, admin: 1, member: 2 };

/** The role change the owner can make to `member`: 'admin' (promote), 'member' (demote) or null. */
export function roleChange(myRole, member, meId) {
  if (myRole !== 'owner' || member.user.id === meId) return null;
  if (member.role === 'member') return 'admin';
  if (member.role === 'admin') return 'member';
  return null;
}

export function canRemove(myRole, member, meId) {
  if (member.user.id === meId || member.role === 'owner') return false;
  if (myRole === 'owner') return true;
  return myRole === 'admin' && member.role === 'member';
}

/** Members in the panel's order: owner, admins, members; by name within a role. */
export function sortMembers(members, nameOf) {
  return [...members].sort((a, b) => (ROLE_ORDER[a.role] ?? 3) - (ROLE_ORDER[b.role] ?? 3) || nameOf(a.user).localeCompare(nameOf(b.user)));
}

/**
 * Who an owner leaving may hand the group to: every other member, admins first. The first is the
 * one offered by default (an admin when there is one, as the server itself would pick).
 * Empty when I am not the owner or nobody else is left (the group then simply loses me).
 */
export function heirCandidates(chat, meId, nameOf) {
  if (!chat || chat.my_role !== 'owner') return [];
  return sortMembers((chat.members || []).filter((m) => m.user.id !== meId), nameOf);
}

/** The sentence for a removal, from the chat as it was last seen (its last message may say who). */
export function removalText(chat, meId, nameOf) {
  const title = isolated(chat.title || 'this group');
  const system = chat.last_message?.system;
  const by = system && system.action === 'member.removed' && system.user_id === meId ? nameOf(system.actor_id) : null;
  return by ? `${isolated(by)} removed you from “${title}”.` : `You are no longer a member of “${title}”.`;
}

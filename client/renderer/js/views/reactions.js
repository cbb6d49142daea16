// Reactions on a bubble: the chips under it (count, highlighted when mine, click toggles) and the
// reaction bar (the common six and a small picker for more) that the hover action opens.
import { h } from '../dom.js';
import { COMMON_REACTIONS, MORE_REACTIONS, reactionChips, reactorsLabel } from '../conversation.js';
import { displayName } from '../store.js';

export function reactionRow(message, { store, onToggle }) {
  const meId = store.state.user?.id;
  const chips = reactionChips(message.reactions, meId);
  if (!chips.length) return null;
  const nameOf = (id) => {
    const user = store.userById(id);
    return user ? displayName(user) : null;
  };
  return h('div', { class: 'reactions', role: 'group', 'aria-label': 'Reactions' }, chips.map((chip) => h('button', {
    type: 'button',
    class: `reaction${chip.mine ? ' reaction--mine' : ''}`,
    'aria-pressed': chip.mine ? 'true' : 'false',
    title: reactorsLabel(chip, { meId, nameOf }),
    'aria-label': `${chip.emoji} ${chip.count}: ${reactorsLabel(chip, { meId, nameOf })}`,
    dataset: { emoji: chip.emoji },
    onclick: () => onToggle(chip.emoji),
  }, h('span', { class: 'reaction__emoji', text: chip.emoji }), h('span', { class: 'reaction__count', text: String(chip.count) }))));
}

let openBar = null;

export function closeReactionBar() {
  if (openBar) openBar();
}

/**
 * Open the reaction bar inside `host` (the message's row); `below` puts it under the bubble (for a
 * message at the top of the view). Escape or a click elsewhere closes it; a pick closes it too.
 */
export function openReactionBar(host, { onPick, below = false }) {
  closeReactionBar();
  const pick = (emoji) => {
    close();
    onPick(emoji);
  };
  const button = (emoji) => h('button', {
    type: 'button', class: 'reaction-bar__emoji', role: 'menuitem', 'aria-label': `React with ${emoji}`, title: emoji,
    onclick: () => pick(emoji),
  }, emoji);
  const more = h('div', { class: 'reaction-bar__more', hidden: true }, MORE_REACTIONS.map(button));
  const moreButton = h('button', {
    type: 'button', class: 'reaction-bar__emoji reaction-bar__toggle', role: 'menuitem', 'aria-label': 'More reactions',
    'aria-expanded': 'false', title: 'More',
    onclick: () => {
      more.hidden = !more.hidden;
      moreButton.setAttribute('aria-expanded', String(!more.hidden));
      if (!more.hidden) more.querySelector('button')?.focus();
    },
  }, '+');
  const bar = h('div', {
    class: `reaction-bar${below ? ' reaction-bar--below' : ''}`, role: 'menu', 'aria-label': 'Reactions',
    onkeydown: (event) => {
      if (event.key === 'Escape') {
        event.preventDefault();
        event.stopPropagation();
        close();
        return;
      }
      if (event.key !== 'ArrowRight' && event.key !== 'ArrowLeft') return;
      const buttons = [...bar.querySelectorAll('button')].filter((b) => b.offsetParent !== null);
      const index = buttons.indexOf(document.activeElement);
      const next = buttons[index + (event.key === 'ArrowRight' ? 1 : -1)];
      if (next) {
        event.preventDefault();
        next.focus();
      }
    },
  }, h('div', { class: 'reaction-bar__common' }, COMMON_REACTIONS.map(button), moreButton), more);
  const previous = document.activeElement;
  const outside = (event) => {
    if (!bar.contains(event.target)) close();
  };
  function close() {
    if (openBar !== close) return;
    openBar = null;
    bar.remove();
    document.removeEventListener('pointerdown', outside, true);
    if (bar.contains(document.activeElement) || document.activeElement === document.body) previous?.focus?.({ preventScroll: true });
  }
  openBar = close;
  host.append(bar);
  document.addEventListener('pointerdown', outside, true);
  bar.querySelector('button').focus({ preventScroll: true });
  return close;
}

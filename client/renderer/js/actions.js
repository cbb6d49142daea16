// What the conversation views ask of the server: each action calls the API, then puts the answer in
// the store (a reaction, a pin and a forward answer with the Message itself, so the change shows at
// once, before its `message.updated` / `message.created` event; the store keeps whichever is newer).
// Errors reach the caller, which says what went wrong.
import { toggleReaction } from './conversation.js';
import { newClientId } from './store.js';

const JUMP_PAGE_SIZE = 100;
const JUMP_MAX_PAGES = 50;

export function createActions({ api, store }) {
  /** Add my reaction with this emoji, or take it back if it is there. */
  async function toggleReactionOn(message, emoji) {
    const me = store.state.user.id;
    const { method } = toggleReaction(message.reactions, emoji, me);
    const updated = method === 'PUT'
      ? await api.react(message.chat_id, message.id, emoji)
      : await api.unreact(message.chat_id, message.id, emoji);
    if (updated) store.applyMessage(updated);
    return updated;
  }

  async function pin(message) {
    const updated = await api.pin(message.chat_id, message.id);
    if (updated) store.applyMessage(updated);
    return updated;
  }

  /** Unpin; the server answers 204, so the store learns the new state from `message.updated`. */
  async function unpin(chatId, messageId) {
    await api.unpin(chatId, messageId);
  }

  /** Forward a message to another chat (the server copies its content and attachment). */
  async function forward(message, toChatId) {
    const created = await api.sendMessage(toChatId, { forward_of_id: message.id, client_id: newClientId() });
    if (created) store.applyMessage(created);
    return created;
  }

  async function setMuted(chatId, muted) {
    const chat = await api.setMuted(chatId, muted);
    // An answer without the field (an older server) still shows what was asked.
    store.upsertChat({ ...chat, muted: chat && 'muted' in chat ? chat.muted : muted });
  }

  /**
   * Load older history of a chat until `messageId` is in the store (a quote, a pin, a mention or a
   * search hit opened it). Pages follow one another from the oldest loaded message, so the history
   * stays one unbroken run. Resolves to true when the message is there.
   */
  async function loadUntil(chatId, messageId) {
    for (let page = 0; page < JUMP_MAX_PAGES; page += 1) {
      if (store.messageById(chatId, messageId)) return true;
      const state = store.historyState(chatId);
      const oldest = store.oldestMessageId(chatId);
      if (state.loaded && (!state.hasMoreBefore || (oldest !== null && oldest < messageId))) return false;
      const before = state.loaded ? oldest : undefined;
      const answer = await api.history(chatId, { before: before ?? undefined, limit: JUMP_PAGE_SIZE });
      store.addHistory(chatId, answer.results || [], Boolean(answer.has_more));
      if (!(answer.results || []).length) return Boolean(store.messageById(chatId, messageId));
    }
    return Boolean(store.messageById(chatId, messageId));
  }

  return { toggleReaction: toggleReactionOn, pin, unpin, forward, setMuted, loadUntil };
}

// What the user chooses for this device only (never sent to the server): the theme and how new
// messages announce themselves. Kept in localStorage; a value that does not parse is the default,
// so a hand-edited or older entry can never break start-up.

export const THEME_KEY = 'messenger.theme';
export const NOTIFICATIONS_KEY = 'messenger.notifications';
export const THEMES = ['system', 'light', 'dark'];
export const NOTIFICATION_DEFAULTS = Object.freeze({ desktop: true, sound: false });

/** The stored theme choice: 'system' (follow prefers-color-scheme), 'light' or 'dark'. */
export function readTheme(storage) {
  const value = safeGet(storage, THEME_KEY);
  return THEMES.includes(value) ? value : 'system';
}

export function writeTheme(storage, choice) {
  if (!THEMES.includes(choice)) throw new RangeError(`unknown theme ${choice}`);
  if (choice === 'system') storage.removeItem(THEME_KEY);
  else storage.setItem(THEME_KEY, choice);
}

/** The theme to draw: the choice, or for 'system' what the operating system prefers. */
export function resolveTheme(choice, systemPrefersDark) {
  if (choice === 'light' || choice === 'dark') return choice;
  return systemPrefersDark ? 'dark' : 'light';
}

/** `{desktop, sound}`: each a boolean, the default where the stored value lacks it or is not one. */
export function readNotificationPrefs(storage) {
  let stored = null;
  try {
    stored = JSON.parse(safeGet(storage, NOTIFICATIONS_KEY) || 'null');
  } catch {
    stored = null;
  }
  const prefs = { ...NOTIFICATION_DEFAULTS };
  if (stored && typeof stored === 'object') {
    for (const key of Object.keys(NOTIFICATION_DEFAULTS)) {
      if (typeof stored[key] === 'boolean') prefs[key] = stored[key];
    }
  }
  return prefs;
}

export function writeNotificationPrefs(storage, changes) {
  const prefs = { ...readNotificationPrefs(storage) };
  for (const key of Object.keys(NOTIFICATION_DEFAULTS)) {
    if (typeof changes[key] === 'boolean') prefs[key] = changes[key];
  }
  storage.setItem(NOTIFICATIONS_KEY, JSON.stringify(prefs));
  return prefs;
}

function safeGet(storage, key) {
  try {
    return storage.getItem(key);
  } catch {
    return null; // storage refused (a private window, a full quota): the defaults hold
  }
}

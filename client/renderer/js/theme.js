// Light, dark or the system's choice: the resolved theme goes on <html data-theme="…"> (the
// stylesheet keys its dark colours on it), applied at once, followed when the system's preference
// changes while on 'system', and when another window of this origin changes the choice.
import { readTheme, writeTheme, resolveTheme, THEME_KEY } from './preferences.js';

const systemDark = window.matchMedia ? window.matchMedia('(prefers-color-scheme: dark)') : null;

export function applyTheme(choice = readTheme(localStorage)) {
  const theme = resolveTheme(choice, Boolean(systemDark?.matches));
  document.documentElement.dataset.theme = theme;
  document.documentElement.style.colorScheme = theme;
  return theme;
}

export function setTheme(choice) {
  writeTheme(localStorage, choice);
  return applyTheme(choice);
}

export const currentTheme = () => readTheme(localStorage);

/** Apply the stored theme now and keep it applied; call once at start-up. */
export function startTheme() {
  applyTheme();
  systemDark?.addEventListener('change', () => applyTheme());
  window.addEventListener('storage', (event) => {
    if (event.key === THEME_KEY || event.key === null) applyTheme();
  });
}

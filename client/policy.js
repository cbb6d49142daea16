// The desktop shell's decisions, kept apart from Electron so `npm test` can check them without a
// runtime: which server addresses are accepted, where the window may navigate, which web permissions
// the page gets. main.js only wires them to Electron's hooks.
const { fileURLToPath } = require('node:url');

/** Accept only an http(s) origin; anything else is refused (the caller keeps the previous address). */
function normaliseServerUrl(value) {
  const url = new URL(String(value).trim());
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('http or https only');
  if (url.username || url.password) throw new Error('no credentials in the address');
  return url.origin;
}

/**
 * What to do with a navigation of the app's window to `target`: 'allow' only for the app's own page
 * (`pagePath`, the absolute path of renderer/index.html; its query and fragment may change),
 * 'external' for a web link (opened in the system browser), 'deny' for everything else — any other
 * file:// URL above all, since a page there would get the preload bridge.
 */
function navigationDecision(target, pagePath) {
  let url;
  try {
    url = new URL(String(target));
  } catch {
    return 'deny';
  }
  if (url.protocol === 'http:' || url.protocol === 'https:') return 'external';
  if (url.protocol !== 'file:' || url.host !== '') return 'deny';
  let path;
  try {
    path = fileURLToPath(url);
  } catch {
    return 'deny';
  }
  return path === pagePath ? 'allow' : 'deny';
}

/** The one web permission the page gets: notifications (the browser build asks for them; the desktop
 * build shows native ones through the bridge). Camera, microphone, geolocation, ... are refused. */
const GRANTED_PERMISSIONS = new Set(['notifications']);

function permissionAllowed(permission) {
  return GRANTED_PERMISSIONS.has(String(permission));
}

module.exports = { normaliseServerUrl, navigationDecision, permissionAllowed };

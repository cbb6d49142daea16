// Settings: the profile (picture, display name, email), the password, "sign out everywhere", and
// what this device remembers on its own (theme, notifications). The server's answers go into the
// store (store.setUser), so the sidebar and every avatar follow at once.
import { h, avatar, openModal, replaceChildren } from '../dom.js';
import { displayName } from '../store.js';
import { registrationProblems } from '../format.js';
import { cropSquare, dragCenter, MAX_ZOOM } from '../crop.js';
import { readNotificationPrefs, writeNotificationPrefs } from '../preferences.js';
import { currentTheme, setTheme } from '../theme.js';

const THEME_LABELS = { system: 'System', light: 'Light', dark: 'Dark' };
// The rules the server's validators apply (AUTH_PASSWORD_VALIDATORS), shown before the first try.
const PASSWORD_RULES = [
  'At least 8 characters.',
  'Not only digits.',
  'Not a common password, and not like your username or email.',
];

export function openSettings(app) {
  const sections = h('div', { class: 'settings' });
  const modal = openModal('Settings', sections, { className: 'modal--settings' });
  const unsubscribe = app.store.subscribe((topics) => {
    if (topics.has('user') && app.store.state.user) renderPicture();
  });
  const closeObserver = new MutationObserver(() => {
    if (!modal.dialog.isConnected) {
      unsubscribe();
      closeObserver.disconnect();
    }
  });
  closeObserver.observe(document.body, { childList: true });

  const pictureBox = h('div', { class: 'settings__picture' });
  function renderPicture() {
    const me = app.store.state.user;
    replaceChildren(pictureBox, [
      avatar(displayName(me), me.id, { size: 'xl', picture: app.picture(me) }),
      h('div', { class: 'settings__picture-actions' },
        h('label', { class: 'button', for: 'settings-avatar-file', tabindex: '0', onkeydown: (e) => e.key === 'Enter' && fileInput.click() }, 'Upload picture'),
        me.avatar_url ? h('button', { class: 'button button--danger', type: 'button', onclick: removePicture }, 'Remove picture') : null),
    ]);
  }
  const pictureStatus = status();
  const fileInput = h('input', {
    id: 'settings-avatar-file', type: 'file', accept: 'image/png,image/jpeg,image/gif,image/webp', hidden: true,
    onchange: () => {
      const file = fileInput.files?.[0];
      fileInput.value = '';
      if (file) openCropper(app, file, pictureStatus);
    },
  });
  async function removePicture() {
    await run(pictureStatus, async () => {
      app.store.setUser(await app.api.removeAvatar());
      return 'Picture removed.';
    });
  }
  renderPicture();

  replaceChildren(sections, [
    section('Profile picture', pictureStatus.element, pictureBox, fileInput),
    section('Display name', nameForm(app)),
    section('Email', emailForm(app)),
    section('Password', passwordForm(app)),
    section('Sessions', sessionsPart(app, modal)),
    section('Appearance', themeChoice()),
    section('Notifications', notificationToggles(app)),
  ]);
  return modal;
}

function section(title, ...children) {
  return h('section', { class: 'settings__section', 'aria-label': title }, h('h3', { text: title }), children);
}

/** A line that says how the last action went: `{element, done(text), fail(text), clear()}`. */
function status() {
  const element = h('p', { role: 'status', hidden: true });
  const show = (className, text) => {
    element.className = className;
    element.textContent = text;
    element.hidden = false;
  };
  return {
    element,
    done: (text) => show('settings__done', text),
    fail: (text) => show('form-error', text),
    clear: () => { element.hidden = true; },
  };
}

/** Run an action, saying what came of it; a field error of the server goes beside its input. */
async function run(line, action, fieldErrors = {}) {
  line.clear();
  for (const el of Object.values(fieldErrors)) {
    el.textContent = '';
    el.previousElementSibling?.removeAttribute('aria-invalid');
  }
  try {
    const text = await action();
    if (text) line.done(text);
    return true;
  } catch (error) {
    const fields = error.fields || {};
    let placed = false;
    for (const [name, messages] of Object.entries(fields)) {
      if (!fieldErrors[name]) continue;
      fieldErrors[name].textContent = messages.join(' ');
      fieldErrors[name].previousElementSibling?.setAttribute('aria-invalid', 'true');
      placed = true;
    }
    if (!placed) line.fail(error.message);
    return false;
  }
}

function field(id, label, input, hint = null) {
  const error = h('p', { class: 'field__error', id: `${id}-error`, role: 'alert' });
  input.id = id;
  input.setAttribute('aria-describedby', `${id}-error`);
  return { error, element: h('div', { class: 'field' }, h('label', { for: id, text: label }), hint, input, error) };
}

function nameForm(app) {
  const me = app.store.state.user;
  const line = status();
  const input = h('input', { value: me.display_name || '', maxlength: 64, autocomplete: 'name', placeholder: me.username });
  const name = field('settings-display-name', 'Shown to others instead of your username', input);
  return h('form', {
    onsubmit: (event) => {
      event.preventDefault();
      run(line, async () => {
        app.store.setUser(await app.api.updateMe({ display_name: input.value.trim() }));
        return 'Display name saved.';
      }, { display_name: name.error });
    },
  }, line.element, name.element, h('button', { class: 'button button--primary', type: 'submit' }, 'Save name'));
}

function emailForm(app) {
  const me = app.store.state.user;
  const line = status();
  const email = field('settings-email', `Now ${me.email || 'none'}; a new address is confirmed with a mailed code`,
    h('input', { type: 'email', autocomplete: 'email', required: true, placeholder: 'new@example.com' }));
  const password = field('settings-email-password', 'Your password', h('input', { type: 'password', autocomplete: 'current-password', required: true }));
  const emailInput = email.element.querySelector('input');
  const passwordInput = password.element.querySelector('input');
  return h('form', {
    onsubmit: (event) => {
      event.preventDefault();
      run(line, async () => {
        const updated = await app.api.updateMe({ email: emailInput.value.trim(), password: passwordInput.value });
        app.store.setUser(updated);
        passwordInput.value = '';
        return updated.pending_email ? `A code is on its way to ${updated.pending_email}: enter it in the sidebar.` : 'Email unchanged.';
      }, { email: email.error, password: password.error });
    },
  }, line.element, email.element, password.element, h('button', { class: 'button button--primary', type: 'submit' }, 'Change email'));
}

function passwordForm(app) {
  const line = status();
  const oldField = field('settings-old-password', 'Current password', h('input', { type: 'password', autocomplete: 'current-password', required: true }));
  const newInput = h('input', { type: 'password', autocomplete: 'new-password', required: true, minlength: 8 });
  const rules = h('ul', { class: 'settings__rules', id: 'settings-password-rules' }, PASSWORD_RULES.map((rule) => h('li', { text: rule })));
  const newField = field('settings-new-password', 'New password', newInput, rules);
  const oldInput = oldField.element.querySelector('input');
  // The rules the client can judge (length, digits only) turn red while typing; the server judges the rest.
  newInput.addEventListener('input', () => {
    const problems = registrationProblems({ password: newInput.value }).password || [];
    const items = rules.querySelectorAll('li');
    items[0].dataset.ok = String(!problems.some((p) => /8 characters/.test(p)));
    items[1].dataset.ok = String(!problems.some((p) => /digits/.test(p)));
  });
  return h('form', {
    onsubmit: (event) => {
      event.preventDefault();
      run(line, async () => {
        await app.api.changePassword({ oldPassword: oldInput.value, newPassword: newInput.value });
        oldInput.value = '';
        newInput.value = '';
        return 'Password changed. Your other sessions have been signed out.';
      }, { old_password: oldField.error, new_password: newField.error });
    },
  }, line.element, oldField.element, newField.element, h('button', { class: 'button button--primary', type: 'submit' }, 'Change password'));
}

function sessionsPart(app, modal) {
  const line = status();
  return [line.element,
    h('p', { class: 'field__hint', text: 'Signs out this device and every other one where you are signed in.' }),
    h('button', {
      class: 'button button--danger button--wide', type: 'button', onclick: async () => {
        if (!window.confirm('Sign out on every device, this one too?')) return;
        const ok = await run(line, () => app.api.logoutAll());
        if (!ok) return;
        modal.close();
        app.logout('You signed out everywhere.');
      },
    }, 'Sign out everywhere')];
}

function themeChoice() {
  const chosen = currentTheme();
  return h('fieldset', { class: 'settings__choices', 'aria-label': 'Theme' },
    Object.entries(THEME_LABELS).map(([value, label]) => h('label', { class: 'settings__choice' },
      h('input', { type: 'radio', name: 'settings-theme', value, checked: value === chosen, onchange: () => setTheme(value) }),
      label)));
}

function notificationToggles(app) {
  const prefs = readNotificationPrefs(localStorage);
  const line = status();
  const toggle = (key, label) => h('label', { class: 'settings__toggle' },
    h('span', { text: label }),
    h('input', {
      type: 'checkbox', role: 'switch', checked: prefs[key], name: `settings-${key}`,
      onchange: async (event) => {
        writeNotificationPrefs(localStorage, { [key]: event.target.checked });
        line.clear();
        // A browser shows notifications only with the user's permission, asked for on this click.
        if (key === 'desktop' && event.target.checked && !app.desktop && 'Notification' in window && Notification.permission === 'default') {
          await Notification.requestPermission();
        }
        if (key === 'desktop' && event.target.checked && !app.desktop && 'Notification' in window && Notification.permission === 'denied') {
          line.fail('This browser blocks notifications from this site; allow them in its site settings.');
        }
      },
    }));
  return [line.element, toggle('desktop', 'Desktop notifications for new messages'), toggle('sound', 'Play a sound for new messages')];
}

// ---- the cropper ------------------------------------------------------------------------------

/** Show the picture in a round viewport: drag to move the square, the slider to zoom; Save uploads the square. */
function openCropper(app, file, line) {
  const objectUrl = URL.createObjectURL(file);
  const image = new Image();
  const canvas = h('canvas', { class: 'cropper__canvas', width: 520, height: 520, 'aria-label': 'Drag to move the picture' });
  const zoom = h('input', { class: 'cropper__zoom', type: 'range', min: 1, max: MAX_ZOOM, step: 0.01, value: 1, 'aria-label': 'Zoom' });
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const save = h('button', { class: 'button button--primary', type: 'submit', disabled: true }, 'Save picture');
  let state = null;
  const body = h('form', {
    class: 'cropper', onsubmit: async (event) => {
      event.preventDefault();
      save.disabled = true;
      const ok = await run(line, async () => {
        const blob = await croppedBlob(image, state);
        app.store.setUser(await app.api.setAvatar(blob, 'avatar.png'));
        return 'Picture saved.';
      });
      if (ok) modal.close();
      else {
        error.textContent = line.element.textContent;
        error.hidden = false;
        save.disabled = false;
      }
    },
  }, canvas, zoom, error, h('div', { class: 'modal__actions' },
    h('button', { class: 'button', type: 'button', onclick: () => modal.close() }, 'Cancel'), save));
  const modal = openModal('Crop your picture', body, { onClose: () => URL.revokeObjectURL(objectUrl) });

  const size = () => ({ width: image.naturalWidth, height: image.naturalHeight });
  function draw() {
    const { sx, sy, side } = cropSquare(size(), state);
    const context = canvas.getContext('2d');
    context.clearRect(0, 0, canvas.width, canvas.height);
    context.drawImage(image, sx, sy, side, side, 0, 0, canvas.width, canvas.height);
  }
  image.onload = () => {
    state = { zoom: 1, centerX: image.naturalWidth / 2, centerY: image.naturalHeight / 2 };
    save.disabled = false;
    draw();
  };
  image.onerror = () => {
    error.textContent = 'This file is not an image the browser can show.';
    error.hidden = false;
  };
  image.src = objectUrl;

  zoom.addEventListener('input', () => {
    if (!state) return;
    state = { ...state, zoom: Number(zoom.value) };
    const { sx, sy, side } = cropSquare(size(), state);
    state = { ...state, centerX: sx + side / 2, centerY: sy + side / 2 };
    draw();
  });
  let drag = null;
  canvas.addEventListener('pointerdown', (event) => {
    if (!state) return;
    drag = { x: event.clientX, y: event.clientY };
    canvas.setPointerCapture(event.pointerId);
  });
  canvas.addEventListener('pointermove', (event) => {
    if (!drag) return;
    state = dragCenter(state, size(), event.clientX - drag.x, event.clientY - drag.y, canvas.getBoundingClientRect().width);
    drag = { x: event.clientX, y: event.clientY };
    draw();
  });
  const stop = () => { drag = null; };
  canvas.addEventListener('pointerup', stop);
  canvas.addEventListener('pointercancel', stop);
  canvas.addEventListener('wheel', (event) => {
    if (!state) return;
    event.preventDefault();
    zoom.value = String(Math.min(MAX_ZOOM, Math.max(1, state.zoom * (event.deltaY < 0 ? 1.1 : 1 / 1.1))));
    zoom.dispatchEvent(new Event('input'));
  }, { passive: false });
  // The keyboard moves the square too (arrows), a tenth of its side per press.
  canvas.tabIndex = 0;
  canvas.addEventListener('keydown', (event) => {
    const steps = { ArrowLeft: [1, 0], ArrowRight: [-1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] }[event.key];
    if (!steps || !state) return;
    event.preventDefault();
    const step = canvas.getBoundingClientRect().width / 10;
    state = dragCenter(state, size(), steps[0] * step, steps[1] * step, canvas.getBoundingClientRect().width);
    draw();
  });
  return modal;
}

/** The chosen square as a PNG of at most AVATAR_OUTPUT_PX on a side (the server re-encodes it). */
function croppedBlob(image, state) {
  const { sx, sy, side, out } = cropSquare({ width: image.naturalWidth, height: image.naturalHeight }, state);
  const canvas = document.createElement('canvas');
  canvas.width = out;
  canvas.height = out;
  canvas.getContext('2d').drawImage(image, sx, sy, side, side, 0, 0, out, out);
  return new Promise((resolve, reject) => {
    canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error('The picture could not be prepared.'))), 'image/png');
  });
}

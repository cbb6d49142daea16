// Sign in and registration. Server validation errors are shown next to the field they belong to.
import { h } from '../dom.js';
import { ApiError } from '../api.js';
import { registrationProblems } from '../format.js';

const FIELDS = {
  login: [
    { name: 'username', label: 'Username or email', autocomplete: 'username', required: true },
    { name: 'password', label: 'Password', type: 'password', autocomplete: 'current-password', required: true },
  ],
  register: [
    { name: 'username', label: 'Username', autocomplete: 'username', required: true, hint: '3–32 letters, digits, _ or .' },
    { name: 'display_name', label: 'Display name', autocomplete: 'name', hint: 'Optional: how others see you' },
    { name: 'email', label: 'Email', type: 'email', autocomplete: 'email', required: true },
    {
      name: 'password', label: 'Password', type: 'password', autocomplete: 'new-password', required: true,
      hint: 'At least 8 characters, not only digits, not a common password, and not like your username or email.',
    },
  ],
};

export function renderLogin({ api, desktop, serverUrl, notice = '', onSignedIn }) {
  let mode = 'login';
  const container = h('div', { class: 'auth' });

  function render() {
    const fields = FIELDS[mode];
    const formError = h('p', { class: 'form-error', role: 'alert', id: 'form-error', hidden: !notice }, notice);
    notice = '';
    const inputs = {};
    const errors = {};
    const rows = fields.map((field) => {
      const id = `auth-${field.name}`;
      errors[field.name] = h('p', { class: 'field__error', id: `${id}-error`, role: 'alert' });
      inputs[field.name] = h('input', {
        id, name: field.name, type: field.type || 'text', autocomplete: field.autocomplete,
        required: field.required || false, 'aria-describedby': `${id}-error`, spellcheck: 'false',
      });
      return h('div', { class: 'field' },
        h('label', { for: id, text: field.label }),
        inputs[field.name],
        field.hint ? h('p', { class: 'field__hint', text: field.hint }) : null,
        errors[field.name]);
    });
    const submit = h('button', { class: 'button button--primary button--wide', type: 'submit' },
      mode === 'login' ? 'Sign in' : 'Create account');

    const form = h('form', { class: 'auth__form', novalidate: true, onsubmit: onSubmit }, rows, formError, submit);

    async function onSubmit(event) {
      event.preventDefault();
      for (const name of Object.keys(errors)) {
        errors[name].textContent = '';
        inputs[name].removeAttribute('aria-invalid');
      }
      formError.hidden = true;
      const values = Object.fromEntries(Object.entries(inputs).map(([k, input]) => [k, input.value.trim()]));
      values.password = inputs.password.value; // passwords are taken exactly as typed
      // Every field's problem at once, not one per attempt; the server has the last word.
      const problems = mode === 'register' ? registrationProblems(values) : {};
      for (const f of fields) if (f.required && !values[f.name]) problems[f.name] = ['This field is required.'];
      const wrong = fields.filter((f) => problems[f.name]);
      if (wrong.length) {
        for (const f of wrong) showFieldError(f.name, problems[f.name]);
        inputs[wrong[0].name].focus();
        return;
      }
      submit.disabled = true;
      submit.textContent = mode === 'login' ? 'Signing in…' : 'Creating account…';
      try {
        const user = mode === 'login' ? await api.login(values) : await api.register(values);
        onSignedIn(user);
      } catch (error) {
        submit.disabled = false;
        submit.textContent = mode === 'login' ? 'Sign in' : 'Create account';
        const fieldErrors = error instanceof ApiError ? error.fields : {};
        let first = null;
        for (const [name, messages] of Object.entries(fieldErrors)) {
          if (inputs[name]) {
            showFieldError(name, messages);
            first ||= name;
          }
        }
        const unplaced = Object.keys(fieldErrors).filter((name) => !inputs[name]);
        if (!first || unplaced.length) {
          formError.textContent = unplaced.length ? fieldErrors[unplaced[0]].join(' ') : error.message;
          formError.hidden = false;
        }
        if (first) inputs[first].focus();
      }
    }

    function showFieldError(name, messages) {
      errors[name].textContent = messages.join(' ');
      inputs[name].setAttribute('aria-invalid', 'true');
    }

    const switcher = h('p', { class: 'auth__switch' },
      mode === 'login' ? 'New here? ' : 'Already have an account? ',
      h('button', {
        class: 'link-button', type: 'button', onclick: () => {
          mode = mode === 'login' ? 'register' : 'login';
          render();
        },
      }, mode === 'login' ? 'Create an account' : 'Sign in'));

    container.replaceChildren(h('div', { class: 'auth__card' },
      h('div', { class: 'auth__brand' },
        h('img', { src: './assets/icon.png', alt: '', width: 56, height: 56 }),
        h('h1', { text: mode === 'login' ? 'Sign in to Messenger' : 'Create your account' })),
      form,
      switcher,
      desktop ? serverSetting(desktop, serverUrl) : null));
    inputs.username.focus();
  }

  render();
  return container;
}

/** Electron only: the address of the server this app talks to. */
function serverSetting(desktop, serverUrl) {
  const input = h('input', { id: 'server-url', type: 'url', value: serverUrl, spellcheck: 'false' });
  const error = h('p', { class: 'field__error', role: 'alert' });
  return h('details', { class: 'auth__server' },
    h('summary', {}, `Server: ${serverUrl}`),
    h('form', {
      class: 'field', onsubmit: async (event) => {
        event.preventDefault();
        try {
          await desktop.setServerUrl(input.value);
        } catch {
          error.textContent = 'Enter an address like http://127.0.0.1:8000';
        }
      },
    },
    h('label', { for: 'server-url', text: 'Server address' }),
    h('div', { class: 'inline-form' }, input, h('button', { class: 'button', type: 'submit' }, 'Save')),
    error));
}

// The demo page's wiring: connect with ?token=, show the connection and the bell, and
// run the documentation's examples through APP.notifications. A file of its own because the
// page's Content-Security-Policy allows no inline script.
(() => {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const token = params.get('token');

  const LABELS = {
    idle: 'Not connected',
    connecting: 'Connecting…',
    open: 'Connected',
    reconnecting: 'Reconnecting…',
    expired: 'Token expired: open the page with a new one',
    closed: 'Disconnected',
  };

  function showStatus({ status, account, user, delay }) {
    $('status').dataset.status = status;
    let label = LABELS[status] || status;
    if (status === 'reconnecting' && delay >= 1000) label = `Reconnecting in ${Math.round(delay / 1000)} s…`;
    $('status-text').textContent = label;
    if (status === 'open') {
      const who = $('who');
      who.textContent = `${account} · user ${user}`;
      who.hidden = false;
    }
  }

  if (!token) {
    $('no-token').hidden = false;
    return;
  }
  if (!window.KommoNotify) {
    showStatus({ status: 'client.js did not load' });
    return;
  }
  $('try').hidden = false;

  const dismiss = params.get('dismiss'); // seconds; 0 keeps pop-ups until closed
  window.KommoNotify.connect({
    token,
    dismissAfter: dismiss === null || dismiss === '' ? undefined : Number(dismiss) * 1000,
    onStatus: showStatus,
    bell: $('bell'),
  });

  // The examples of Kommo's documentation. They leave out its fixed 2024 dates (the
  // server stamps the time it accepts an event), and show_message uses an icon served
  // here instead of example.com's, which does not exist.
  const telephone = new URL('/demo/telephone.svg', location.href).href;
  const EXAMPLES = {
    show_message: ['show_message', { header: 'Warning', text: 'Connection established', icon: telephone }],
    show_message_error: ['show_message_error', { header: 'Warning', text: 'Connection to the server is lost' }],
    show_notification_call: ['show_notification', {
      text: { header: 'Outgoing call', text: 'Dialing the number +19872345678' }, type: 'call' }],
    show_notification_error: ['show_notification', {
      text: { header: 'Error', text: 'Error working with the widget' }, type: 'error' }],
    add_error: ['add_error', {
      header: 'Error', text: 'Failed to set the task! Contact not found!', link: '/contacts/list/?term=4951234567' }],
    add_call: ['add_call', {
      text: 'Call from +1 (415) 523-7743', from: 'Jeremy Watts', to: 'Jason Nash',
      element: { id: 18221265, type: 'contact' }, duration: 250, link: 'https://example.com/dialog.mp3' }],
  };

  const result = $('result');
  function showResult(state, message) {
    result.dataset.state = state;
    result.textContent = message;
  }

  for (const button of document.querySelectorAll('[data-example]')) {
    button.addEventListener('click', async () => {
      const [type, example] = EXAMPLES[button.dataset.example];
      $('call').firstElementChild.textContent = `APP.notifications.${type}(${literal(example, '')});`;
      showResult('pending', 'Sending…');
      try {
        const res = await window.APP.notifications[type](example);
        const warnings = res.warnings && res.warnings.length ? ` · ${res.warnings.join('; ')}` : '';
        showResult('ok', `Accepted as ${res.id}${warnings}`);
      } catch (err) {
        showResult('error', `${err.status ? err.status + ' ' : ''}${err.code}: ${err.message}`);
      }
    });
  }

  /** value as a JavaScript literal, the way the documentation writes it. */
  function literal(value, indent) {
    if (Array.isArray(value)) return `[${value.map((v) => literal(v, indent)).join(', ')}]`;
    if (value === null || typeof value !== 'object') return JSON.stringify(value);
    const inner = indent + '  ';
    const lines = Object.entries(value).map(([k, v]) =>
      `${inner}${/^[A-Za-z_$][\w$]*$/.test(k) ? k : JSON.stringify(k)}: ${literal(v, inner)}`);
    return `{\n${lines.join(',\n')}\n${indent}}`;
  }
})();

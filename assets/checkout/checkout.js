(() => {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const data = JSON.parse($('invoice-data').textContent);
  const main = document.querySelector('main');
  const statusEl = $('status'), countdownEl = $('countdown'), noteEl = $('note'), liveEl = $('live');
  const FROM_EVENT = {
    payment_received: 'paid', payment_confirmed: 'confirmed', payment_unconfirmed: 'paid',
    invoice_expired: 'expired', invoice_cancelled: 'cancelled', payment_invalidated: 'invalid',
    invoice_paid_partial: 'paid_partial', invoice_paid_late: 'paid_late'
  };
  const FROM_STATUS = {
    paid: 'paid', confirmed: 'confirmed', expired: 'expired', cancelled: 'cancelled', invalid: 'invalid',
    paid_partial: 'paid_partial', paid_late: 'paid_late'
  };
  // The last word: no socket after these. A paid (or invalid) invoice still hears the chain.
  const FINAL = { confirmed: true, expired: true, cancelled: true, paid_late: true };
  const MONEY = { paid: true, confirmed: true, invalid: true, paid_late: true };
  // Still waiting for (the rest of) the money: the countdown runs.
  const WAITING = { open: true, paid_partial: true };
  const expiresAt = Date.parse(data.expires);
  // Server clock minus ours, so a phone whose clock is off still counts down right.
  const skew = Date.parse(data.now) - Date.now() || 0;
  let state = data.state, txid = data.txid;
  // True once the server has said the last word (a terminal event or state): no socket then.
  let settled = FINAL[state] === true;
  let socket = null, lastEvent = null, delay = 1000, retry = null, timer = null;

  function localTimes() {
    document.querySelectorAll('time[datetime]').forEach((t) => {
      const d = new Date(t.dateTime);
      if (t.dateTime && !isNaN(d)) t.textContent = d.toLocaleString();
    });
  }

  function show(next, id, paidAt) {
    if (id) txid = id;
    state = next;
    main.dataset.state = next;
    statusEl.className = next;
    statusEl.textContent = (next === 'paid' || next === 'confirmed') && txid
      ? data.labels[next] + ': ' + txid : data.labels[next];
    noteEl.textContent = data.notes[next] || '';
    if (MONEY[next] && next !== 'invalid' && paidAt) {
      const t = $('paid-at');
      t.dateTime = paidAt;
      t.textContent = paidAt;
      $('paid-row').hidden = false;
      localTimes();
    }
  }

  function live(cls, text) {
    liveEl.className = cls;
    liveEl.textContent = text;
  }

  function clock(s) {
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    const two = (n) => (n < 10 ? '0' : '') + n;
    return h > 0 ? h + ':' + two(m) + ':' + two(r) : m + ':' + two(r);
  }

  function tick() {
    clearTimeout(timer);
    if (!WAITING[state] || isNaN(expiresAt)) return;
    const left = expiresAt - (Date.now() + skew);
    if (left <= 0) {
      // Expired by the clock. The socket stays open for the server's word: a payment that
      // made it in time still turns the page to Paid.
      show('expired');
      return;
    }
    const s = Math.ceil(left / 1000);
    countdownEl.textContent = 'Expires in ' + clock(s);
    timer = setTimeout(tick, left - (s - 1) * 1000);
  }

  function finish() {
    settled = true;
    clearTimeout(retry);
    clearTimeout(timer);
    live('done', '');
    if (socket) {
      const s = socket;
      socket = null;
      s.close(1000);
    }
  }

  function handle(text) {
    let m;
    try { m = JSON.parse(text); } catch (e) { return; }
    if (!m || typeof m !== 'object') return;
    if (Number.isInteger(m.event_id)) {
      if (lastEvent !== null && m.event_id <= lastEvent) return; // seen before a reconnect
      lastEvent = m.event_id;
    }
    const invoice = m.invoice && typeof m.invoice === 'object' ? m.invoice : {};
    const payment = invoice.payment || {};
    // An 'open' snapshot changes nothing: it must not undo an expiry seen by the clock.
    const next = m.type === 'invoice_state' ? FROM_STATUS[invoice.status] : FROM_EVENT[m.type];
    if (!next) return;
    // Once money arrived only the chain's word about it counts (never an expiry).
    if (!MONEY[state] || MONEY[next]) {
      show(next, m.txid || payment.txid, m.paid_at || payment.paid_at);
    }
    if (FINAL[state]) finish();
  }

  function socketUrl() {
    let q = '?snapshot=1';
    if (lastEvent !== null) q += '&since=' + lastEvent;
    return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host +
      '/ws/jpp/invoice/' + encodeURIComponent(data.payment_id) + '/' + q;
  }

  function later() {
    if (settled) return;
    const wait = delay + Math.floor(Math.random() * delay / 4);
    delay = Math.min(delay * 2, 30000);
    live('off', 'Connection lost; trying again in ' + Math.ceil(wait / 1000) + ' s');
    clearTimeout(retry);
    retry = setTimeout(connect, wait);
  }

  function connect() {
    clearTimeout(retry);
    if (settled || (socket && socket.readyState <= 1)) return;
    let s;
    try { s = new WebSocket(socketUrl()); } catch (e) { later(); return; }
    socket = s;
    s.onmessage = (e) => {
      if (socket !== s || typeof e.data !== 'string') return;
      if (liveEl.className !== 'on') {
        delay = 1000; // the server answered: the next loss starts the back-off afresh
        live('on', 'Live: this page updates by itself');
      }
      handle(e.data);
    };
    s.onclose = () => {
      if (socket !== s) return;
      socket = null;
      later();
    };
  }

  function resume() {
    tick();
    if (!settled && !socket) connect();
  }

  $('copy').addEventListener('click', () => {
    const input = $('uri'), button = $('copy');
    const copied = () => {
      button.textContent = 'Copied';
      setTimeout(() => { button.textContent = 'Copy'; }, 2000);
    };
    const fallback = () => {
      input.focus();
      input.select();
      try { if (document.execCommand('copy')) copied(); } catch (e) { /* selected: copy by hand */ }
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(copied, fallback);
    } else {
      fallback();
    }
  });
  $('uri').addEventListener('focus', (e) => e.target.select());

  // Phones freeze background pages and drop their sockets: catch up when shown again.
  document.addEventListener('visibilitychange', () => { if (!document.hidden) resume(); });
  window.addEventListener('pageshow', resume);
  window.addEventListener('online', () => { delay = 1000; resume(); });

  localTimes();
  if (settled) {
    live('done', '');
  } else {
    tick();
    connect();
  }
})();

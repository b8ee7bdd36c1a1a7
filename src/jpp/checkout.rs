//! The checkout page a payer's browser gets from the payment URL (`Accept: text/html`).
//!
//! One self-contained document: the amount in BCH, the memo, every output, a QR code of the
//! `bitcoincash:?r=` URI drawn here as inline SVG, a countdown to expiry, and the status kept
//! live over `/ws/jpp/invoice/<id>/` (reconnecting with back-off, resuming with `?since=`).
//! No external scripts, styles, fonts or images: it works on a LAN with no internet. A
//! `Content-Security-Policy` in the page itself allows only its own script (by hash) and style.

use std::sync::OnceLock;

use qrcode::{render::svg, EcLevel, QrCode};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{InvoiceView, OutputView};
use crate::units::bch;

/// Where the invoice is, as the page shows it. `paying` (a broadcast in flight) still reads as
/// waiting; `confirmed` is paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    Paid,
    Expired,
    Cancelled,
    Invalid,
}

impl State {
    fn of(status: &str) -> State {
        match status {
            "paid" | "confirmed" => State::Paid,
            "expired" => State::Expired,
            "cancelled" => State::Cancelled,
            "invalid" => State::Invalid,
            _ => State::Open,
        }
    }

    /// The class of `#status`, and the state name the script uses.
    fn class(self) -> &'static str {
        match self {
            State::Open => "open",
            State::Paid => "paid",
            State::Expired => "expired",
            State::Cancelled => "cancelled",
            State::Invalid => "invalid",
        }
    }

    /// The text of `#status` (the paid one is followed by `: <txid>`).
    fn label(self) -> &'static str {
        match self {
            State::Open => "Waiting for payment",
            State::Paid => "Paid",
            State::Expired => "Expired",
            State::Cancelled => "Cancelled",
            State::Invalid => "Payment invalid",
        }
    }

    /// A sentence under the status telling the payer what to do next.
    fn note(self) -> &'static str {
        match self {
            State::Open => "",
            State::Paid => "The payment was received. You can close this page.",
            State::Expired => "This invoice can no longer be paid. Ask the merchant for a new one.",
            State::Cancelled => "The merchant cancelled this invoice. Do not pay it.",
            State::Invalid => {
                "The payment was double-spent or dropped by the network. Contact the merchant."
            }
        }
    }

    const ALL: [State; 5] = [
        State::Open,
        State::Paid,
        State::Expired,
        State::Cancelled,
        State::Invalid,
    ];
}

fn status_text(state: State, txid: Option<&str>) -> String {
    match (state, txid) {
        (State::Paid, Some(txid)) => format!("Paid: {txid}"),
        _ => state.label().to_owned(),
    }
}

/// The whole page, self-contained: no external scripts, styles or fonts.
pub fn page(view: &InvoiceView<'_>) -> String {
    let state = State::of(view.status);
    let txid = view.payment.as_ref().map(|p| p.txid.as_str());
    let paid_at = view.payment.as_ref().map(|p| p.paid_at.as_str());
    let total: u128 = view.outputs.iter().map(|o| u128::from(o.amount)).sum();
    let amount = bch(total);
    let memo = view.memo.map(str::trim).filter(|m| !m.is_empty());

    let labels: serde_json::Map<String, serde_json::Value> = State::ALL
        .iter()
        .map(|s| (s.class().to_owned(), json!(s.label())))
        .collect();
    let notes: serde_json::Map<String, serde_json::Value> = State::ALL
        .iter()
        .map(|s| (s.class().to_owned(), json!(s.note())))
        .collect();
    let data = json!({
        "payment_id": view.payment_id,
        "state": state.class(),
        "txid": txid,
        "expires": view.expires,
        // The server's clock at rendering: the countdown follows it, not the phone's clock.
        "now": crate::units::iso_millis(crate::units::now_ms()),
        "labels": labels,
        "notes": notes,
    });

    let qr = match qr_svg(&view.payment_uri) {
        Some(svg) => svg,
        None => "<p>The payment link is too long for a QR code: use the link below.</p>".into(),
    };
    let outputs: String = view.outputs.iter().map(output_item).collect();
    let memo_html = match memo {
        Some(m) => format!("<p class=\"memo\">{}</p>", esc(m)),
        None => "<p class=\"memo muted\">Payment request</p>".to_owned(),
    };
    let title = match memo {
        Some(m) => format!("Pay {amount} BCH \u{b7} {}", esc(m)),
        None => format!("Pay {amount} BCH"),
    };
    let paid_row_hidden = if paid_at.is_some() { "" } else { " hidden" };

    format!(
        r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<meta name="referrer" content="no-referrer">
<meta name="color-scheme" content="light dark">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<link rel="icon" href="data:,">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<main data-state="{class}">
<section class="card">
{memo_html}
<p class="amount"><span id="amount">{amount}</span> <span class="unit">BCH</span></p>
<div role="status" aria-live="polite"><div id="status" class="{class}">{status}</div></div>
<p id="countdown">Expires at <time datetime="{expires}">{expires}</time></p>
<p id="note">{note}</p>
</section>
<section id="pay" class="card">
<div id="qr">{qr}</div>
<a id="open-wallet" class="button" href="{uri}">Open in wallet</a>
<label for="uri">Payment link</label>
<div class="copy"><input id="uri" readonly value="{uri}" spellcheck="false"><button id="copy" type="button">Copy</button></div>
</section>
<section class="card">
<h2>Outputs</h2>
<ul class="outputs">{outputs}</ul>
</section>
<section class="card">
<dl class="meta">
<dt>Invoice</dt><dd class="mono">{id}</dd>
<dt>Network</dt><dd>{network}</dd>
<dt>Created</dt><dd><time datetime="{time}">{time}</time></dd>
<dt>Expires</dt><dd><time datetime="{expires}">{expires}</time></dd>
<div id="paid-row"{paid_row_hidden}><dt>Paid at</dt><dd><time id="paid-at" datetime="{paid_at}">{paid_at}</time></dd></div>
</dl>
</section>
<p id="live" class="{live_class}">{live_text}</p>
</main>
<script type="application/json" id="invoice-data">{data}</script>
<script>{script}</script>
</body>
</html>
"##,
        csp = esc(csp()),
        css = CSS,
        class = state.class(),
        status = esc(&status_text(state, txid)),
        note = esc(state.note()),
        expires = esc(&view.expires),
        time = esc(&view.time),
        paid_at = esc(paid_at.unwrap_or("")),
        uri = esc(&view.payment_uri),
        id = esc(&view.payment_id),
        network = esc(view.network),
        live_class = if state == State::Open { "off" } else { "done" },
        live_text = if state == State::Open {
            "Connecting\u{2026}"
        } else {
            ""
        },
        data = script_json(&data),
        script = SCRIPT,
    )
}

/// One output: address and amount, then what describes it (description, token, NFT).
fn output_item(o: &OutputView<'_>) -> String {
    let mut item = format!(
        "<li><div class=\"row\"><span class=\"mono addr\">{}</span><span class=\"amt\">{} BCH</span></div>",
        esc(&o.address),
        bch(u128::from(o.amount)),
    );
    if let Some(d) = o.description.map(str::trim).filter(|d| !d.is_empty()) {
        item.push_str(&format!("<div class=\"desc\">{}</div>", esc(d)));
    }
    if let Some(t) = &o.token {
        item.push_str(&format!(
            "<div class=\"token\">Token <span class=\"mono\">{}</span>",
            esc(&t.category)
        ));
        if t.amount > 0 {
            item.push_str(&format!(", amount {}", t.amount));
        }
        item.push_str("</div>");
        if let Some(n) = &t.nft {
            let commitment = if n.commitment.is_empty() {
                "(empty)".to_owned()
            } else {
                esc(&n.commitment)
            };
            item.push_str(&format!(
                "<div class=\"token\">NFT, {} capability, commitment <span class=\"mono\">{commitment}</span></div>",
                esc(n.capability)
            ));
        }
    }
    item.push_str("</li>");
    item
}

/// The QR code of `data` as an inline `<svg>` scaling to its container (one unit per module,
/// quiet zone included); `None` if the data cannot fit in a QR code.
fn qr_svg(data: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M).ok()?;
    let image = code
        .render::<svg::Color<'_>>()
        .module_dimensions(1, 1)
        .quiet_zone(true)
        .dark_color(svg::Color("#000"))
        .light_color(svg::Color("#fff"))
        .build();
    // Drop the XML declaration: the element goes inside HTML.
    let start = image.find("<svg")?;
    let body = &image[start + "<svg".len()..];
    Some(format!(
        "<svg role=\"img\" aria-label=\"QR code of the payment link\"{body}"
    ))
}

/// Text for HTML element content and quoted attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON that is safe inside `<script>`: nothing in it can close the element or open a
/// comment, and the line separators old parsers choke on are escaped. All of these can only
/// occur inside JSON strings, where the `\u` forms mean the same characters.
fn script_json(value: &serde_json::Value) -> String {
    let mut out = String::new();
    for c in value.to_string().chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// The page's policy: its one inline script (by hash) and its inline style, sockets to its
/// own host, nothing else fetched, no `<base>`, no form submissions. Sent as a header too,
/// where `frame-ancestors` (which a `<meta>` policy cannot carry) is added.
pub fn csp() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| {
        let hash = base64(&Sha256::digest(SCRIPT.as_bytes()));
        format!(
            "default-src 'none'; script-src 'sha256-{hash}'; style-src 'unsafe-inline'; \
             connect-src 'self' ws: wss:; img-src data:; base-uri 'none'; form-action 'none'"
        )
    })
}

/// Standard base64 with padding (for the CSP hash; not worth a dependency).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

const CSS: &str = r#"
*{box-sizing:border-box}
:root{--fg:#1b1f24;--muted:#5b6470;--bg:#f2f4f7;--card:#fff;--line:#dde2e8;--accent:#0b7a3b;--accent-fg:#fff;
--open-bg:#e8f0fe;--open-fg:#1a4c9c;--paid-bg:#e3f4e8;--paid-fg:#0a6630;--end-bg:#fdecea;--end-fg:#a1261a}
@media (prefers-color-scheme:dark){:root{--fg:#e8eaed;--muted:#9aa3ad;--bg:#101317;--card:#1a1e23;--line:#2d333a;
--accent:#3fb870;--accent-fg:#06210f;--open-bg:#17263d;--open-fg:#9cc2ff;--paid-bg:#123222;--paid-fg:#8be0a9;
--end-bg:#3a1714;--end-fg:#f6a39a}}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--fg);font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:30rem;margin:0 auto;padding:.75rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:1.1rem;margin:0 0 .75rem}
.memo{margin:0 0 .2rem;font-size:1.05rem;white-space:pre-wrap;overflow-wrap:anywhere}
.muted{color:var(--muted)}
.amount{margin:0;font-size:2rem;font-weight:700;font-variant-numeric:tabular-nums;overflow-wrap:anywhere}
.amount .unit{font-size:1.1rem;font-weight:600;color:var(--muted)}
#status{margin:.9rem 0 0;padding:.7rem .9rem;border-radius:8px;font-weight:600;overflow-wrap:anywhere}
#status.open{background:var(--open-bg);color:var(--open-fg)}
#status.paid{background:var(--paid-bg);color:var(--paid-fg);font-size:1.05rem}
#status.paid::before{content:"\2713\00a0"}
#status.expired,#status.cancelled,#status.invalid{background:var(--end-bg);color:var(--end-fg);font-size:1.05rem}
#countdown{margin:.5rem 0 0;color:var(--muted);font-variant-numeric:tabular-nums}
#note{margin:.5rem 0 0}
#note:empty{display:none}
main:not([data-state=open]) #pay,main:not([data-state=open]) #countdown{display:none}
#qr{background:#fff;border-radius:8px;padding:.25rem;width:100%;max-width:18rem;margin:0 auto}
#qr svg{display:block;width:100%;height:auto}
.button{display:block;text-align:center;background:var(--accent);color:var(--accent-fg);text-decoration:none;
font-weight:600;padding:.85rem;border-radius:8px;margin:1rem 0 .9rem}
label{display:block;font-size:.85rem;color:var(--muted);margin:0 0 .3rem}
.copy{display:flex;gap:.5rem}
.copy input{flex:1;min-width:0;font:.85rem ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;padding:.6rem;
border:1px solid var(--line);border-radius:6px;background:var(--bg);color:var(--fg)}
.copy button{font:inherit;padding:.55rem .9rem;border:1px solid var(--line);border-radius:6px;background:var(--card);
color:var(--fg);cursor:pointer}
h2{font-size:.8rem;text-transform:uppercase;letter-spacing:.06em;color:var(--muted);margin:0 0 .5rem}
.outputs{list-style:none;margin:0;padding:0}
.outputs li{padding:.6rem 0;border-top:1px solid var(--line)}
.outputs li:first-child{border-top:0;padding-top:0}
.outputs li:last-child{padding-bottom:0}
.row{display:flex;flex-wrap:wrap;justify-content:space-between;gap:.2rem 1rem}
.addr{flex:1 1 14rem}
.amt{font-weight:600;font-variant-numeric:tabular-nums;white-space:nowrap}
.desc,.token{font-size:.9rem;color:var(--muted);overflow-wrap:anywhere;margin-top:.2rem}
.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.85rem;overflow-wrap:anywhere}
dl.meta{display:grid;grid-template-columns:auto 1fr;gap:.3rem .9rem;margin:0;font-size:.85rem}
dl.meta div{display:contents}
dl.meta dt{color:var(--muted)}
dl.meta dd{margin:0;overflow-wrap:anywhere}
[hidden]{display:none!important}
#live{font-size:.8rem;color:var(--muted);text-align:center;margin:.25rem 0 1rem}
#live.done{display:none}
"#;

/// The page's behaviour: countdown, live status over the socket, copy button. Reads its data
/// from the `invoice-data` JSON block; writes only through `textContent`.
const SCRIPT: &str = r#"
(() => {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const data = JSON.parse($('invoice-data').textContent);
  const main = document.querySelector('main');
  const statusEl = $('status'), countdownEl = $('countdown'), noteEl = $('note'), liveEl = $('live');
  const FROM_EVENT = {
    payment_received: 'paid', payment_confirmed: 'paid', invoice_expired: 'expired',
    invoice_cancelled: 'cancelled', payment_invalidated: 'invalid'
  };
  const FROM_STATUS = { paid: 'paid', confirmed: 'paid', expired: 'expired', cancelled: 'cancelled', invalid: 'invalid' };
  const expiresAt = Date.parse(data.expires);
  // Server clock minus ours, so a phone whose clock is off still counts down right.
  const skew = Date.parse(data.now) - Date.now() || 0;
  let state = data.state, txid = data.txid;
  // True once the server has said the last word (a terminal event or state): no socket then.
  let settled = state !== 'open';
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
    statusEl.textContent = next === 'paid' && txid ? data.labels.paid + ': ' + txid : data.labels[next];
    noteEl.textContent = data.notes[next] || '';
    if (next === 'paid' && paidAt) {
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
    if (state !== 'open' || isNaN(expiresAt)) return;
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
    // Money received is the last word, unless the network later rejects the payment.
    if (state !== 'paid' || next === 'paid' || next === 'invalid') {
      show(next, m.txid || payment.txid, m.paid_at || payment.paid_at);
    }
    finish();
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
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::Network;
    use crate::jpp::{Invoice, InvoiceId, InvoiceOutput, InvoiceStatus, Payment};

    const ADDR: &str = "bchreg:qr6m7j9njldwwzlg9v7v53unlr4jkmx6eyphnpcjvs";

    fn invoice(memo: Option<&str>, amounts: &[u64]) -> Invoice {
        let now = crate::units::now_ms();
        Invoice {
            id: InvoiceId::random(),
            status: InvoiceStatus::Open,
            outputs: amounts
                .iter()
                .map(|&amount| InvoiceOutput {
                    address: crate::chain::Address::parse(ADDR, Network::Regtest).expect("address"),
                    amount,
                    description: None,
                    token: None,
                })
                .collect(),
            memo: memo.map(str::to_owned),
            merchant_data: None,
            created_ms: now,
            expires_ms: now + 900_000,
            fee_per_kb: 1000,
            store_id: 1,
            payment: None,
        }
    }

    fn render(invoice: &Invoice) -> String {
        let view = InvoiceView::new(
            invoice,
            Network::Regtest,
            "https://pay.example",
            crate::units::now_ms(),
        );
        page(&view)
    }

    /// The `#status` element as written.
    fn status_div(html: &str) -> &str {
        let start = html.find("<div id=\"status\"").expect("status element");
        let end = start + html[start..].find("</div>").expect("closed") + "</div>".len();
        &html[start..end]
    }

    #[test]
    fn the_amount_is_the_sum_of_the_outputs() {
        let html = render(&invoice(Some("two things"), &[150_000_000, 2_500]));
        assert!(
            html.contains("<span id=\"amount\">1.50002500</span>"),
            "{html}"
        );
        assert!(html.contains("1.50000000 BCH"));
        assert!(html.contains("0.00002500 BCH"));
        assert_eq!(html.matches(ADDR).count(), 2);
    }

    #[test]
    fn invoice_strings_are_escaped() {
        let memo = "<script>alert('x')</script> & \"quoted\"";
        let mut inv = invoice(Some(memo), &[1000]);
        inv.outputs[0].description = Some("</li><img src=x onerror=alert(1)>".into());
        let html = render(&inv);
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html
            .contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quoted&quot;"));
        assert!(html.contains("&lt;/li&gt;&lt;img src=x onerror=alert(1)&gt;"));
        // Only the page's own two script elements.
        assert_eq!(html.matches("<script").count(), 2);
        assert_eq!(html.matches("</script>").count(), 2);
    }

    #[test]
    fn script_json_cannot_close_the_script_element() {
        let v = json!({"memo": "</script><!-- \u{2028} & >"});
        let s = script_json(&v);
        assert!(
            !s.contains('<') && !s.contains('>') && !s.contains('&'),
            "{s}"
        );
        assert!(s.contains("\\u003c/script\\u003e"));
        // Still the same JSON.
        assert_eq!(serde_json::from_str::<serde_json::Value>(&s).ok(), Some(v));
    }

    #[test]
    fn the_data_block_holds_what_the_script_needs() {
        let inv = invoice(Some("</script>"), &[1000]);
        let html = render(&inv);
        let start = html
            .find("<script type=\"application/json\" id=\"invoice-data\">")
            .expect("data")
            + "<script type=\"application/json\" id=\"invoice-data\">".len();
        let end = start + html[start..].find("</script>").expect("end");
        let data: serde_json::Value = serde_json::from_str(&html[start..end]).expect("JSON");
        assert_eq!(data["payment_id"], inv.id.to_string());
        assert_eq!(data["state"], "open");
        assert_eq!(data["expires"], crate::units::iso_millis(inv.expires_ms));
        assert_eq!(data["labels"]["open"], "Waiting for payment");
        assert!(data["now"].as_str().is_some_and(|s| s.ends_with('Z')));
    }

    #[test]
    fn an_open_invoice_shows_the_qr_link_and_waiting() {
        let inv = invoice(None, &[4000]);
        let html = render(&inv);
        let uri = crate::jpp::payment_uri(
            Network::Regtest,
            &format!("https://pay.example/api/jpp/invoices/{}/", inv.id),
        );
        assert!(html.contains("<div id=\"qr\"><svg "), "{html}");
        assert!(!html.contains("<?xml"));
        assert!(html.contains(&format!("href=\"{uri}\">Open in wallet</a>")));
        assert!(html.contains(&format!("value=\"{uri}\"")));
        assert_eq!(
            status_div(&html),
            "<div id=\"status\" class=\"open\">Waiting for payment</div>"
        );
        assert!(html.contains("<main data-state=\"open\">"));
        assert!(html.contains("<meta name=\"viewport\""));
    }

    #[test]
    fn the_qr_code_is_an_svg_of_whole_modules() {
        let svg = qr_svg("bchreg:?r=https%3A%2F%2Fpay.example%2Fi%2Fab").expect("fits");
        assert!(svg.starts_with("<svg role=\"img\""));
        assert!(svg.ends_with("</svg>"));
        assert!(svg.contains("viewBox=\"0 0 "));
        assert!(qr_svg(&"x".repeat(5000)).is_none());
    }

    #[test]
    fn terminal_states_are_rendered_directly() {
        let mut paid = invoice(Some("coffee"), &[4000]);
        paid.status = InvoiceStatus::Paid;
        let txid = crate::chain::Txid::from_hex(&"ab".repeat(32)).expect("txid");
        paid.payment = Some(Payment {
            txid,
            memo: None,
            refund_to: None,
            paid_ms: Some(paid.created_ms + 5_000),
        });
        let html = render(&paid);
        assert_eq!(
            status_div(&html),
            format!(
                "<div id=\"status\" class=\"paid\">Paid: {}</div>",
                txid.to_hex()
            )
        );
        assert!(html.contains("<main data-state=\"paid\">"));
        assert!(html.contains("<div id=\"paid-row\">"));

        paid.status = InvoiceStatus::Confirmed;
        assert!(status_div(&render(&paid)).starts_with("<div id=\"status\" class=\"paid\">Paid: "));

        let mut expired = invoice(None, &[4000]);
        expired.expires_ms = expired.created_ms - 1; // still `open` in the store
        assert_eq!(
            status_div(&render(&expired)),
            "<div id=\"status\" class=\"expired\">Expired</div>"
        );

        let mut cancelled = invoice(None, &[4000]);
        cancelled.status = InvoiceStatus::Cancelled;
        assert_eq!(
            status_div(&render(&cancelled)),
            "<div id=\"status\" class=\"cancelled\">Cancelled</div>"
        );

        let mut paying = invoice(None, &[4000]);
        paying.status = InvoiceStatus::Paying;
        assert!(status_div(&render(&paying)).contains("class=\"open\">Waiting for payment"));
    }

    #[test]
    fn tokens_are_listed_with_their_output() {
        let mut inv = invoice(None, &[1000]);
        let nft = crate::chain::Nft {
            capability: crate::chain::NftCapability::Mutable,
            commitment: vec![0xca, 0xfe],
        };
        inv.outputs[0].token =
            Some(crate::chain::TokenData::new([7u8; 32], 500, Some(nft)).expect("token"));
        let html = render(&inv);
        assert!(html.contains(&format!(
            "Token <span class=\"mono\">{}</span>, amount 500",
            "07".repeat(32)
        )));
        assert!(
            html.contains("NFT, mutable capability, commitment <span class=\"mono\">cafe</span>")
        );
    }

    #[test]
    fn nothing_is_fetched_from_elsewhere() {
        let inv = invoice(Some("x"), &[1]);
        let html = render(&inv);
        for bad in [
            "src=",
            "<link rel=\"stylesheet\"",
            "@import",
            "url(",
            "<img",
            "<iframe",
        ] {
            assert!(!html.contains(bad), "{bad} in the page");
        }
        // Every link is the payment URI, or the empty icon that stops a favicon request.
        let uri = esc(&crate::jpp::payment_uri(
            Network::Regtest,
            &format!("https://pay.example/api/jpp/invoices/{}/", inv.id),
        ));
        for (i, _) in html.match_indices("href=\"") {
            let value = &html[i + 6..];
            let value = &value[..value.find('"').expect("closed")];
            assert!(value == "data:," || value == uri, "{value}");
        }
    }

    #[test]
    fn the_policy_allows_exactly_the_page_script() {
        let html = render(&invoice(None, &[1]));
        let hash = base64(&Sha256::digest(SCRIPT.as_bytes()));
        assert!(html.contains(&format!("script-src &#39;sha256-{hash}&#39;")));
        assert!(html.contains(&format!("<script>{SCRIPT}</script>")));
    }

    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}

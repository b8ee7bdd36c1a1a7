//! The checkout page a payer's browser gets from the payment URL (`Accept: text/html`).
//!
//! One self-contained document: the amount in BCH, the memo, every output, a QR code of the
//! `bitcoincash:?r=` URI drawn here as inline SVG, a countdown to expiry, and the status kept
//! live over `/ws/jpp/invoice/<id>/` (reconnecting with back-off, resuming with `?since=`).
//! No external scripts, styles, fonts or images: it works on a LAN with no internet. A
//! `Content-Security-Policy` in the page itself allows only its own script (by hash) and style.
//!
//! The page is `assets/checkout/checkout.html` (with `{name}` where a value goes), its style
//! `checkout.css` and its script `checkout.js`, all embedded in the binary at build time; the
//! values are computed and escaped here, and the style and script inlined in the page.

use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use qrcode::{render::svg, EcLevel, QrCode};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::jpp::{InvoiceView, OutputView};
use crate::units::bch;

/// Where the invoice is, as the page shows it. `paying` (a broadcast in flight) still reads as
/// waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    PaidPartial,
    Paid,
    PaidLate,
    Confirmed,
    Expired,
    Cancelled,
    Invalid,
}

impl State {
    fn of(status: &str) -> State {
        match status {
            "paid" => State::Paid,
            "paid_partial" => State::PaidPartial,
            "paid_late" => State::PaidLate,
            "confirmed" => State::Confirmed,
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
            State::PaidPartial => "paid_partial",
            State::PaidLate => "paid_late",
            State::Confirmed => "confirmed",
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
            State::PaidPartial => "Partly paid",
            State::PaidLate => "Paid after expiry",
            State::Confirmed => "Confirmed",
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
            State::Confirmed => "The payment is confirmed on the chain. You can close this page.",
            State::PaidPartial => {
                "Part of the amount arrived. Send the rest before the invoice expires."
            }
            State::PaidLate => "The money arrived after the invoice expired. Contact the merchant.",
            State::Expired => "This invoice can no longer be paid. Ask the merchant for a new one.",
            State::Cancelled => "The merchant cancelled this invoice. Do not pay it.",
            State::Invalid => {
                "The payment was double-spent or dropped by the network. Contact the merchant."
            }
        }
    }

    /// Nothing more can happen that the page would show: no socket.
    fn is_final(self) -> bool {
        matches!(
            self,
            State::Confirmed | State::Expired | State::Cancelled | State::PaidLate
        )
    }

    const ALL: [State; 8] = [
        State::Open,
        State::PaidPartial,
        State::Paid,
        State::PaidLate,
        State::Confirmed,
        State::Expired,
        State::Cancelled,
        State::Invalid,
    ];
}

fn status_text(state: State, txid: Option<&str>) -> String {
    match (state, txid) {
        (State::Paid | State::Confirmed, Some(txid)) => format!("{}: {txid}", state.label()),
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
    // Wallets without the payment protocol pay the address (BIP21), where one output can say
    // it all.
    let address_html = match &view.address_uri {
        Some(uri) => format!(
            "<p class=\"alt\">Wallet without payment requests? <a id=\"address-uri\" href=\"{0}\">Pay the address</a></p>",
            esc(uri)
        ),
        None => String::new(),
    };

    let csp = esc(csp());
    let class = state.class();
    let status = esc(&status_text(state, txid));
    let note = esc(state.note());
    let expires = esc(&view.expires);
    let time = esc(&view.time);
    let paid_at = esc(paid_at.unwrap_or(""));
    let uri = esc(&view.payment_uri);
    let id = esc(&view.payment_id);
    let network = esc(view.network);
    // The script keeps a socket until the state is final; until it connects, it says so.
    let live_class = if state.is_final() { "done" } else { "off" };
    let live_text = if !state.is_final() {
        "Connecting\u{2026}"
    } else {
        ""
    };
    let data = script_json(&data);
    let values: [(&str, &str); 22] = [
        ("address_html", &address_html),
        ("csp", &csp),
        ("css", CSS),
        ("class", class),
        ("status", &status),
        ("note", &note),
        ("expires", &expires),
        ("time", &time),
        ("paid_at", &paid_at),
        ("uri", &uri),
        ("id", &id),
        ("network", &network),
        ("live_class", live_class),
        ("live_text", live_text),
        ("data", &data),
        ("script", SCRIPT),
        ("amount", &amount),
        ("memo_html", &memo_html),
        ("outputs", &outputs),
        ("paid_row_hidden", paid_row_hidden),
        ("qr", &qr),
        ("title", &title),
    ];
    fill(TEMPLATE, &values)
}

/// One output: address and amount, then what describes it (description, token, NFT).
/// The page's HTML with `{name}` where a value goes (`assets/checkout/checkout.html`).
const TEMPLATE: &str = include_str!("../../assets/checkout/checkout.html");

/// `template` with each `{name}` replaced by its value, in one pass: a value (already escaped
/// by the caller) is never read as template, and braces that name no value stay as they are.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let extra: usize = values.iter().map(|(_, v)| v.len()).sum();
    let mut out = String::with_capacity(template.len() + extra);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let named = after.find('}').and_then(|close| {
            let name = &after[..close];
            values
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, value)| (*value, close))
        });
        match named {
            Some((value, close)) => {
                out.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

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

/// Standard base64 with padding: the alphabet and form CSP hash sources are written in (the
/// URL-safe or unpadded forms would not match, and the browser would block the script).
fn base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// The page's style (`assets/checkout/checkout.css`). The file starts at its first rule; the
/// newline in front keeps the `<style>` element exactly as it has always been served.
const CSS: &str = concat!("\n", include_str!("../../assets/checkout/checkout.css"));

/// The page's behaviour (`assets/checkout/checkout.js`): countdown, live status over the
/// socket, copy button. Reads its data from the `invoice-data` JSON block; writes only through
/// `textContent`. The CSP hash is taken over this whole constant, leading newline included,
/// which is exactly the text between `<script>` and `</script>`.
const SCRIPT: &str = concat!("\n", include_str!("../../assets/checkout/checkout.js"));

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::Network;
    use crate::jpp::{Invoice, InvoiceOutput, InvoiceStatus, Payment};

    const ADDR: &str = "bchreg:qr6m7j9njldwwzlg9v7v53unlr4jkmx6eyphnpcjvs";

    fn invoice(memo: Option<&str>, amounts: &[u64]) -> Invoice {
        let now = crate::units::now_ms();
        Invoice {
            memo: memo.map(str::to_owned),
            ..Invoice::open(
                amounts
                    .iter()
                    .map(|&amount| InvoiceOutput {
                        address: crate::chain::Address::parse(ADDR, Network::Regtest)
                            .expect("address"),
                        amount,
                        description: None,
                        token: None,
                    })
                    .collect(),
                now,
                now + 900_000,
            )
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
            chain: None,
            via: crate::jpp::Via::Jpp,
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
        assert_eq!(
            status_div(&render(&paid)),
            format!(
                "<div id=\"status\" class=\"confirmed\">Confirmed: {}</div>",
                txid.to_hex()
            )
        );

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
        // Every link is the payment URI, the address URI (a wallet's scheme, never a fetch),
        // or the empty icon that stops a favicon request.
        let uri = esc(&crate::jpp::payment_uri(
            Network::Regtest,
            &format!("https://pay.example/api/jpp/invoices/{}/", inv.id),
        ));
        let address_uri = format!("{ADDR}?amount=0.00000001");
        let mut links = Vec::new();
        for (i, _) in html.match_indices("href=\"") {
            let value = &html[i + 6..];
            let value = &value[..value.find('"').expect("closed")];
            assert!(
                value == "data:," || value == uri || value == address_uri,
                "{value}"
            );
            links.push(value);
        }
        assert!(links.contains(&address_uri.as_str()), "{links:?}");
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

    #[test]
    fn every_placeholder_of_the_template_is_filled() {
        let html = render(&invoice(Some("two things"), &[150_000_000, 2_500]));
        let placeholders: Vec<&str> = TEMPLATE
            .split('{')
            .skip(1)
            .filter_map(|s| s.split_once('}').map(|(name, _)| name))
            .collect();
        assert!(placeholders.len() >= 20, "{placeholders:?}");
        for name in placeholders {
            assert!(
                !html.contains(&format!("{{{name}}}")),
                "{{{name}}} left in the page"
            );
        }
        assert_eq!(
            fill("a{x}b{y}{z}", &[("x", "{y}"), ("y", "2")]),
            "a{y}b2{z}"
        );
    }
}

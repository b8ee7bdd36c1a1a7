//! The checkout page in a real browser: headless Chromium opens `/i/<id>` (it asks for
//! text/html), and the page shows the QR code, then the outcome as the socket tells it. Live
//! changes are watched over the DevTools protocol, waiting on DOM changes, never on sleeps.
//! Screenshots go to test-artifacts/ for a reviewer.

use std::process::Stdio;

use cashier::chain::txid_of;

use crate::browser::{artifact, chromium_or_skip, dump_dom, headless, screenshot, Page, Viewport};
use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(
    an_open_invoice_shows_its_qr_code_and_waits,
    the_page_turns_paid_while_open,
    the_page_turns_expired_at_expiry,
    the_page_turns_cancelled_while_open,
    finished_invoices_are_rendered_finished,
    the_page_reconnects_and_learns_what_it_missed,
);

const SKIP: &str = "the checkout page tests need";

fn page_url(app: &TestApp, id: &str) -> String {
    format!("{}/i/{id}", app.base)
}

/// The page as the server sends it to a browser.
async fn html(app: &TestApp, id: &str) -> String {
    let r = app
        .client
        .get(page_url(app, id))
        .header("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "text/html; charset=utf-8"
    );
    r.text().await.unwrap()
}

async fn an_open_invoice_shows_its_qr_code_and_waits(app: TestApp) {
    let Some(chromium) = chromium_or_skip(SKIP) else {
        return;
    };
    let id = app.create_simple(4000).await["payment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = page_url(&app, &id);
    let profile = tempfile::tempdir().unwrap();
    let run = |extra: Vec<String>| {
        // Runs the page's timers ahead (the countdown), but waits for its socket.
        let mut cmd = headless(chromium, profile.path(), 5000);
        cmd.args(extra).arg(&url);
        cmd
    };
    let dom = dump_dom(run(vec!["--dump-dom".into()])).await;
    assert!(
        dom.contains("<div id=\"qr\"><svg"),
        "no QR code on the page:\n{dom}"
    );
    assert!(
        dom.contains("<div id=\"status\" class=\"open\">Waiting for payment</div>"),
        "the page does not wait for the payment:\n{dom}"
    );
    assert!(dom.contains("0.00004000"), "{dom}");
    // The script ran (it replaces the static expiry line with a countdown).
    assert!(
        dom.contains("Expires in "),
        "the page's script did not run:\n{dom}"
    );

    let shot = artifact(&format!("checkout-open-{}.png", &id[..8]));
    let mut cmd = run(vec![
        format!("--screenshot={shot}"),
        "--window-size=390,900".into(),
        "--hide-scrollbars".into(),
    ]);
    cmd.stderr(Stdio::null());
    screenshot(cmd, &shot).await;
}

async fn the_page_turns_paid_while_open(app: TestApp) {
    let Some(chromium) = chromium_or_skip(SKIP) else {
        return;
    };
    let (id, raw) = app.invoice_and_payment().await;
    let mut page = Page::open(chromium, &page_url(&app, &id), Viewport::PHONE).await;
    // The socket is up and has answered: what follows arrives live.
    page.wait_for("#live.on").await;
    assert_eq!(page.text("#status").await, "Waiting for payment");

    app.pay(&id, &raw).await;
    let txid = txid_of(&raw).to_hex();
    assert_eq!(page.wait_for("#status.paid").await, format!("Paid: {txid}"));
    // The payment part is gone; the socket stays, for what the chain says of the payment.
    assert_eq!(
        page.eval("getComputedStyle(document.getElementById('pay')).display")
            .await,
        "none"
    );
    assert_eq!(
        page.text("#live").await,
        "Live: this page updates by itself"
    );
    page.screenshot(&artifact(&format!("checkout-paid-{}.png", &id[..8])))
        .await;

    // Opened afresh, the page is paid from the start.
    assert!(html(&app, &id).await.contains(&format!(
        "<div id=\"status\" class=\"paid\">Paid: {txid}</div>"
    )));

    // A double spend turns it invalid; our transaction mined after all, confirmed, and then
    // there is nothing left to hear.
    let (status, _) = app
        .dev("/dev/double-spend", serde_json::json!({"txid": txid}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(page.wait_for("#status.invalid").await, "Payment invalid");
    app.mine(1).await;
    assert_eq!(
        page.wait_for("#status.confirmed").await,
        format!("Confirmed: {txid}")
    );
    page.wait_for("#live.done").await;
    page.screenshot(&artifact(&format!("checkout-confirmed-{}.png", &id[..8])))
        .await;
}

async fn the_page_turns_expired_at_expiry(app: TestApp) {
    let Some(chromium) = chromium_or_skip(SKIP) else {
        return;
    };
    // Open for a few seconds: the page counts down, then says Expired (by its clock or by
    // the server's event, whichever comes first), then hears the server's word and stops.
    let id = app.insert_invoice_expiring_in(1000, 4_000).await;
    let mut page = Page::open(chromium, &page_url(&app, &id), Viewport::PHONE).await;
    assert_eq!(page.wait_for("#status.expired").await, "Expired");
    page.wait_for("#live.done").await;
    assert_eq!(
        page.eval("getComputedStyle(document.getElementById('pay')).display")
            .await,
        "none"
    );
    page.screenshot(&artifact(&format!("checkout-expired-{}.png", &id[..8])))
        .await;
}

async fn the_page_turns_cancelled_while_open(app: TestApp) {
    let Some(chromium) = chromium_or_skip(SKIP) else {
        return;
    };
    let id = app.create_simple(1000).await["payment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut page = Page::open(chromium, &page_url(&app, &id), Viewport::PHONE).await;
    page.wait_for("#live.on").await;
    assert_eq!(app.cancel(&id).await, 200);
    assert_eq!(page.wait_for("#status.cancelled").await, "Cancelled");
    page.wait_for("#live.done").await;
}

async fn finished_invoices_are_rendered_finished(app: TestApp) {
    // No browser needed: the server writes the final state into the page.
    let expired = app.insert_expired_invoice(1000).await;
    let page = html(&app, &expired).await;
    assert!(
        page.contains("<div id=\"status\" class=\"expired\">Expired</div>"),
        "{page}"
    );
    assert!(page.contains("<main data-state=\"expired\">"));

    let cancelled = app.cancelled_invoice(1000).await;
    assert!(html(&app, &cancelled)
        .await
        .contains("<div id=\"status\" class=\"cancelled\">Cancelled</div>"));

    // Every invoice path serves the page to a browser.
    let open = app.create_simple(1000).await["payment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .client
        .get(app.url(&format!("/api/jpp/invoices/{open}/")))
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(body.contains("<div id=\"status\" class=\"open\">Waiting for payment</div>"));
}

async fn the_page_reconnects_and_learns_what_it_missed(app: TestApp) {
    let Some(chromium) = chromium_or_skip(SKIP) else {
        return;
    };
    // The page reaches the server through a proxy the test can take down, as a phone loses
    // its network.
    let proxy = Proxy::start(app.base.trim_start_matches("http://")).await;
    let (id, raw) = app.invoice_and_payment().await;
    let mut page = Page::open(
        chromium,
        &format!("http://{}/i/{id}", proxy.authority),
        Viewport::PHONE,
    )
    .await;
    page.wait_for("#live.on").await;

    proxy.down();
    let lost = page.wait_for("#live.off").await;
    assert!(lost.starts_with("Connection lost"), "{lost}");
    // Paid while the page cannot hear it.
    app.pay(&id, &raw).await;
    assert_eq!(page.text("#status").await, "Waiting for payment");

    proxy.up();
    let txid = txid_of(&raw).to_hex();
    assert_eq!(page.wait_for("#status.paid").await, format!("Paid: {txid}"));
    page.wait_for("#live.on").await;
    // It came back on its own, asking for the state it missed.
    let sockets = proxy.socket_requests();
    assert!(sockets.len() >= 2, "{sockets:?}");
    assert!(
        sockets
            .iter()
            .all(|r| r.starts_with(&format!("GET /ws/jpp/invoice/{id}/?snapshot=1"))),
        "{sockets:?}"
    );
}

/// A TCP proxy on loopback in front of the server, which the test can take down (every
/// connection cut, new ones refused) and bring back. It notes the socket requests through it.
struct Proxy {
    authority: String,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    connections: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: &str) -> Proxy {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority = listener.local_addr().unwrap().to_string();
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let connections = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let upstream = upstream.to_owned();
        let accept = tokio::spawn({
            let (up, connections, requests) = (up.clone(), connections.clone(), requests.clone());
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if !up.load(Ordering::SeqCst) {
                        continue; // dropped: the connection is refused
                    }
                    let (upstream, requests) = (upstream.clone(), requests.clone());
                    let task = tokio::spawn(async move {
                        let mut head = [0u8; 256];
                        if let Ok(n) = inbound.peek(&mut head).await {
                            let head = String::from_utf8_lossy(&head[..n]);
                            let line = head.lines().next().unwrap_or_default();
                            if line.starts_with("GET /ws/") {
                                requests.lock().unwrap().push(line.to_owned());
                            }
                        }
                        if let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    connections.lock().unwrap().push(task.abort_handle());
                }
            }
        });
        Proxy {
            authority,
            up,
            connections,
            requests,
            accept,
        }
    }

    /// Cuts every connection through the proxy and refuses new ones.
    fn down(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }

    fn up(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// The request lines of the socket connections made through the proxy.
    fn socket_requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.down();
    }
}

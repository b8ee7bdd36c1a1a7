//! A man in the middle between Cashier and its `lnbits` funding source: a TLS server on the
//! funding source's https:// address, relaying to the real remote, with a certificate Cashier
//! has no reason to trust. Cashier must not talk through it: no invoice made there, no socket
//! opened, nothing credited here, and the funding source's status says why.
//!
//! The remote behind the impostor is another Cashier (it speaks LNbits' API): the handshake
//! fails before a byte is relayed, so what stands behind does not change the outcome, and a
//! real LNbits (tens of seconds of CPU to start) is kept for the test that pays through one,
//! `lnbits_funding.rs`.

use serde_json::{json, Value};

use crate::helpers::{Backend, TestApp};
use crate::tls::{Ca, Crossed, TlsProxy};

/// Handshakes every Cashier below makes: the status the test asks for, the source's own
/// check at start, the socket's first attempt, the invoice the test asks for. More may come
/// (the socket retries), never fewer.
const HANDSHAKES: usize = 4;

async fn an_impostor_in_front_of_the_funding_source_is_never_talked_to(backend: Backend) {
    let remote = TestApp::spawn(Backend::Sqlite).await;
    let x = remote.ln_account("funding").await;
    let remote_addr = remote
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("the remote's address");
    // The operator's private CA; the impostor's own, and one named like the operator's.
    let operators = Ca::named("Shop private CA");
    let impostors = Ca::new();
    let look_alike = Ca::named("Shop private CA");
    let operators_file = operators.pem_file().display().to_string();

    for (what, leaf, ca_file, says) in [
        (
            "a certificate from a CA Cashier was not given",
            impostors.leaf(&["127.0.0.1"]),
            Some(operators_file.as_str()),
            "not signed by a CA trusted here",
        ),
        (
            "a certificate from a CA named like the trusted one",
            look_alike.leaf(&["127.0.0.1"]),
            Some(operators_file.as_str()),
            "names a CA trusted here but is not signed by it",
        ),
        (
            "a private CA's certificate without --extra-ca-file",
            operators.leaf(&["127.0.0.1"]),
            None,
            "not signed by a CA trusted here",
        ),
        (
            "the trusted CA's certificate for another name",
            operators.leaf(&["lnbits.example"]),
            Some(operators_file.as_str()),
            "for another name",
        ),
    ] {
        let mut proxy = TlsProxy::start(&leaf, remote_addr).await;
        let url = proxy.url(None);
        let mut flags = vec![
            "--funding-source",
            "lnbits",
            "--lnbits-url",
            &url,
            "--lnbits-key",
            &x.adminkey,
        ];
        if let Some(file) = ca_file {
            flags.extend(["--extra-ca-file", file]);
        }
        let app = TestApp::spawn_with(backend, &flags).await;

        let status = app.lightning.funding_status().await;
        let error = status.error.unwrap_or_default();
        assert!(error.contains(says), "{what}: {error}");
        assert!(error.contains(&url), "{what}: {error}");
        assert_eq!(status.balance_msat, 0);

        let shop = app.ln_account("shop").await;
        let (code, refused) = app
            .ln_payments_post(&shop.inkey, json!({"out": false, "amount": 100}))
            .await;
        assert_eq!(code, 520, "{what}: {refused}");
        assert_eq!(refused["code"], "funding_source_failed", "{what}");
        let detail = refused["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(says), "{what}: {detail}");
        assert!(!detail.contains(&x.adminkey), "{what}: {detail}");

        // Every attempt, the socket's too, ended in the handshake: nothing was relayed.
        for _ in 0..HANDSHAKES {
            let crossed = proxy.until(|_| true).await;
            assert!(
                matches!(crossed, Crossed::Refused(_)),
                "{what}: {crossed:?}"
            );
        }
        let crossed = proxy.drain();
        assert!(
            crossed.iter().all(|c| matches!(c, Crossed::Refused(_))),
            "{what}: {crossed:?}"
        );

        // Nothing credited here, nothing made there.
        let wallet = get(&app, "/api/v1/wallet", &shop.inkey).await;
        assert_eq!(wallet["balance"], 0, "{what}");
        assert_eq!(get(&app, "/api/v1/payments", &shop.inkey).await, json!([]));
        assert_eq!(
            get(&remote, "/api/v1/payments", &x.inkey).await,
            json!([]),
            "{what}"
        );
    }
}

async fn get(app: &TestApp, path: &str, key: &str) -> Value {
    app.client
        .get(app.url(path))
        .header("X-Api-Key", key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

mod an_impostor_in_front_of_the_funding_source_is_never_talked_to {
    use crate::helpers::Backend;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::an_impostor_in_front_of_the_funding_source_is_never_talked_to(Backend::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::an_impostor_in_front_of_the_funding_source_is_never_talked_to(Backend::Postgres)
            .await
    }
}

//! Bad create requests: each gets its status, its stable code and a message that names the
//! problem, and none writes a row.

use serde_json::{json, Value};

use crate::helpers::{TestApp, ADDR, ADDR_TOKEN};
use crate::on_both_backends;

on_both_backends!(
    bad_create_requests_are_refused_and_write_nothing,
    a_chunked_body_over_the_limit_is_cut_off,
);

/// How the request is sent.
enum Send {
    Json(Value),
    Raw {
        content_type: Option<&'static str>,
        body: Vec<u8>,
    },
    Key(Option<&'static str>, Value),
    Authorization(&'static str, Value),
}

struct Case {
    name: &'static str,
    send: Send,
    status: u16,
    code: &'static str,
    /// Must appear in `detail`.
    says: &'static str,
}

fn out(address: &str, amount: Value) -> Value {
    json!({"outputs": [{"address": address, "amount": amount}]})
}

fn token_out(amount: u64, token: Value) -> Value {
    json!({"outputs": [{"address": ADDR_TOKEN, "amount": amount, "token": token}]})
}

fn cases() -> Vec<Case> {
    let cat = "ab".repeat(32);
    let case = |name, send, status, code, says| Case {
        name,
        send,
        status,
        code,
        says,
    };
    let invalid =
        |name, body: Value, says| case(name, Send::Json(body), 400, "invalid_invoice", says);
    vec![
        invalid(
            "garbage address",
            out("hello", json!(1000)),
            "outputs[0].address \"hello\" is not a valid",
        ),
        invalid(
            "empty address",
            out("", json!(1000)),
            "outputs[0].address \"\" is empty",
        ),
        invalid(
            "address not a string",
            json!({"outputs": [{"address": 5, "amount": 1000}]}),
            "address must be a string",
        ),
        invalid(
            "mainnet CashAddr on regtest",
            out(
                "bitcoincash:qr6m7j9njldwwzlg9v7v53unlr4jkmx6eylep8ekg2",
                json!(1000),
            ),
            "is a main address, but this server runs on regtest",
        ),
        invalid(
            "mainnet legacy on regtest",
            out("1AGNa15ZQXAZUgFiqJ2i7Z2DPU2J6hW62i", json!(1000)),
            "is a main address",
        ),
        invalid(
            "bad checksum",
            out(
                "bchreg:qr6m7j9njldwwzlg9v7v53unlr4jkmx6eyphnpcjvt",
                json!(1000),
            ),
            "checksum",
        ),
        invalid(
            "mixed case",
            out(
                "bchreg:qr6m7j9njldwwzlg9v7v53unlr4jkmx6eyphnpcjvS",
                json!(1000),
            ),
            "mix lower and upper case",
        ),
        invalid(
            "unknown prefix",
            out(
                "bchfoo:qr6m7j9njldwwzlg9v7v53unlr4jkmx6eyphnpcjvs",
                json!(1000),
            ),
            "is not a valid",
        ),
        invalid(
            "CashAddr type 15",
            out(
                "bchreg:0r6m7j9njldwwzlg9v7v53unlr4jkmx6eyrdvxurc0",
                json!(1000),
            ),
            "type 15",
        ),
        invalid(
            "P2PKH with a 32-byte hash",
            out(
                "bchreg:qvqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqzfz5p809",
                json!(1000),
            ),
            "32-byte hash; a P2PKH address needs 20",
        ),
        invalid(
            "dust",
            out(ADDR, json!(545)),
            "545 sats is below the dust limit of this output (546 sats)",
        ),
        invalid(
            "P2SH32 dust",
            out(
                "bchreg:pw46h2at4w46h2at4w46h2at4w46h2at4w46h2at4w46h2at4w46knct4ntry",
                json!(575),
            ),
            "(576 sats)",
        ),
        invalid(
            "token dust",
            token_out(650, json!({"category": cat, "amount": 5})),
            "dust limit of this token output (651 sats)",
        ),
        invalid(
            "zero amount",
            out(ADDR, json!(0)),
            "must be between 1 and 2100000000000000 satoshis",
        ),
        invalid(
            "negative amount",
            out(ADDR, json!(-5)),
            "must be between 1 and",
        ),
        invalid(
            "fractional amount",
            out(ADDR, json!(1000.5)),
            "must be a whole number of satoshis",
        ),
        invalid(
            "amount as a string",
            out(ADDR, json!("1000")),
            "must be a whole number of satoshis, got a string",
        ),
        invalid(
            "missing amount",
            json!({"outputs": [{"address": ADDR}]}),
            "outputs[0].amount is required",
        ),
        invalid(
            "amount above all BCH",
            out(ADDR, json!(2_100_000_000_000_001u64)),
            "must be between 1 and",
        ),
        invalid(
            "total above all BCH",
            json!({"outputs": [{"address": ADDR, "amount": 2_000_000_000_000_000u64}, {"address": ADDR, "amount": 200_000_000_000_000u64}]}),
            "total amount must be at most",
        ),
        invalid(
            "no outputs field",
            json!({"memo": "x"}),
            "outputs is required",
        ),
        invalid(
            "empty outputs",
            json!({"outputs": []}),
            "must have at least 1 output",
        ),
        invalid(
            "101 outputs",
            json!({"outputs": vec![json!({"address": ADDR, "amount": 1000}); 101]}),
            "must have at most 100 outputs",
        ),
        invalid(
            "outputs not a list",
            json!({"outputs": {"address": ADDR}}),
            "outputs must be a list",
        ),
        invalid(
            "output not an object",
            json!({"outputs": ["x"]}),
            "outputs[0] must be a JSON object",
        ),
        invalid(
            "short category",
            token_out(
                1000,
                json!({"category": "ab".repeat(31) + "a", "amount": 5}),
            ),
            "64 hex digits",
        ),
        invalid(
            "non-hex category",
            token_out(1000, json!({"category": "zz".repeat(32), "amount": 5})),
            "64 hex digits",
        ),
        invalid(
            "missing category",
            token_out(1000, json!({"amount": 5})),
            "category is required",
        ),
        invalid(
            "empty token",
            token_out(1000, json!({"category": cat})),
            "must carry an NFT or a fungible amount",
        ),
        invalid(
            "token amount above 2^63-1",
            token_out(
                1000,
                json!({"category": cat, "amount": "9223372036854775808"}),
            ),
            "must be at most 9223372036854775807",
        ),
        invalid(
            "unknown NFT capability",
            token_out(
                1000,
                json!({"category": cat, "nft": {"capability": "burn"}}),
            ),
            "\"burn\" is not one of none, mutable, minting",
        ),
        invalid(
            "41-byte commitment",
            token_out(
                1000,
                json!({"category": cat, "nft": {"capability": "none", "commitment": "00".repeat(41)}}),
            ),
            "must be at most 40 bytes",
        ),
        invalid(
            "odd-length commitment",
            token_out(
                1000,
                json!({"category": cat, "nft": {"capability": "none", "commitment": "abc"}}),
            ),
            "must be hex",
        ),
        invalid(
            "memo too long",
            json!({"outputs": [{"address": ADDR, "amount": 1000}], "memo": "m".repeat(4097)}),
            "memo must be at most 4096 bytes",
        ),
        invalid(
            "memo not a string",
            json!({"outputs": [{"address": ADDR, "amount": 1000}], "memo": 42}),
            "memo must be a string",
        ),
        invalid(
            "unknown field",
            json!({"outputs": [{"address": ADDR, "amount": 1000}], "expire_in": 60}),
            "expire_in is not a known field",
        ),
        invalid(
            "expiry too short",
            json!({"outputs": [{"address": ADDR, "amount": 1000}], "expires_in": 10}),
            "expires_in must be between 60 and",
        ),
        invalid(
            "fee rate below relay floor",
            json!({"outputs": [{"address": ADDR, "amount": 1000}], "required_fee_per_byte": 0.5}),
            "required_fee_per_byte must be between 1 and 1000",
        ),
        invalid(
            "fee rate as a string",
            json!({"outputs": [{"address": ADDR, "amount": 1000}], "required_fee_per_byte": "1"}),
            "must be a number of sats per byte",
        ),
        invalid(
            "wrong network field",
            json!({"outputs": [{"address": ADDR, "amount": 1000}], "network": "main"}),
            "on `regtest` only",
        ),
        invalid(
            "body is a list",
            json!([{"address": ADDR, "amount": 1000}]),
            "body must be a JSON object",
        ),
        case(
            "not JSON",
            Send::Raw {
                content_type: Some("application/json"),
                body: b"{\"outputs\": [".to_vec(),
            },
            400,
            "invalid_json",
            "The body is not valid JSON",
        ),
        case(
            "wrong content type",
            Send::Raw {
                content_type: Some("text/plain"),
                body: b"{}".to_vec(),
            },
            415,
            "unsupported_media_type",
            "Content-Type: application/json",
        ),
        case(
            "no content type",
            Send::Raw {
                content_type: None,
                body: b"{}".to_vec(),
            },
            415,
            "unsupported_media_type",
            "has no Content-Type",
        ),
        case(
            "huge body",
            Send::Raw {
                content_type: Some("application/json"),
                body: vec![b' '; 100 * 1024],
            },
            413,
            "body_too_large",
            "larger than the 65536 bytes",
        ),
        case(
            "missing key",
            Send::Key(None, out(ADDR, json!(1000))),
            401,
            "api_key_required",
            "cashier key create",
        ),
        case(
            "unknown key",
            Send::Key(Some("ck_0000"), out(ADDR, json!(1000))),
            403,
            "api_key_invalid",
            "not valid",
        ),
        case(
            "basic auth",
            Send::Authorization("Basic dXNlcjpwYXNz", out(ADDR, json!(1000))),
            401,
            "api_key_required",
            "X-Api-Key",
        ),
    ]
}

async fn bad_create_requests_are_refused_and_write_nothing(app: TestApp) {
    let cases = cases();
    assert!(cases.len() >= 25);
    for case in cases {
        let req = app.client.post(app.url("/jpp/invoices/"));
        let req = match case.send {
            Send::Json(body) => req.header("X-Api-Key", &app.key).json(&body),
            Send::Raw { content_type, body } => {
                let req = req.header("X-Api-Key", &app.key).body(body);
                match content_type {
                    Some(t) => req.header("Content-Type", t),
                    None => req,
                }
            }
            Send::Key(key, body) => match key {
                Some(k) => req.header("X-Api-Key", k).json(&body),
                None => req.json(&body),
            },
            Send::Authorization(value, body) => req.header("Authorization", value).json(&body),
        };
        let r = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let status = r.status().as_u16();
        let body: Value = r
            .json()
            .await
            .unwrap_or_else(|e| panic!("{}: body is not JSON: {e}", case.name));
        assert_eq!(status, case.status, "{}: {body}", case.name);
        assert_eq!(body["code"], case.code, "{}: {body}", case.name);
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(case.says),
            "{}: {detail:?} should say {:?}",
            case.name,
            case.says
        );
    }
    assert_eq!(
        app.count_invoices().await,
        0,
        "a refused request wrote an invoice"
    );

    // The control: a good request through the same path is stored.
    let (status, body) = app
        .create(&out("mo9ncXisMeAoXwqcV5EWuyncbmCcQN4rVs", json!(1000)))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(app.count_invoices().await, 1);
}

/// Without a Content-Length the limit is enforced while reading: 64 KiB + 1 byte sent in
/// chunks is refused with 413, and nothing is written.
async fn a_chunked_body_over_the_limit_is_cut_off(app: TestApp) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut stream = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let mut request = format!(
        "POST /jpp/invoices/ HTTP/1.1\r\nHost: test\r\nX-Api-Key: {}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n",
        app.key
    );
    for size in [32 * 1024, 32 * 1024, 1] {
        request.push_str(&format!("{size:x}\r\n{}\r\n", " ".repeat(size)));
    }
    request.push_str("0\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&response).contains("}") {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(
            n > 0,
            "connection closed before a response: {}",
            String::from_utf8_lossy(&response)
        );
        response.extend_from_slice(&chunk[..n]);
    }
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.contains("body_too_large"), "{response}");
    assert_eq!(app.count_invoices().await, 0);
}

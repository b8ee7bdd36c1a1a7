//! B8: cost as the data grows. For each size, a fresh database is seeded straight with SQL
//! (`seed_sqlite.sql`: recursive CTEs in one transaction; `seed_postgres.sql`:
//! `generate_series`) with that many rows in each table the operations read: invoices (half of
//! them open, with their scripts, payments and one event each), api keys, Lightning wallets and
//! their payments (half of them in the one wallet the harness uses, whose history is what
//! grows). The server then starts on it, and each operation is timed over a few hundred
//! sequential requests on one keep-alive connection, after a short warm-up. The expiry
//! sweeper's query (`store::invoices::overdue`) has no endpoint: it is timed in this process
//! on the same database, as the sweeper runs it.

use futures_util::StreamExt;

use super::*;

/// The harness's own Lightning wallet, seeded with half of the payments.
const WALLET: &str = "ffffffffffffffffffffffffffffffff";
const INKEY: &str = "b8000000000000000000000000000001";
const ADMINKEY: &str = "b8000000000000000000000000000002";

/// The i-th seeded invoice id (1-based), as both seed scripts write it.
fn invoice_id(i: u64) -> String {
    format!("{:08x}{i:024x}", (i * 2_654_435_761) % 4_294_967_296)
}

/// The i-th seeded Lightning payment hash (and checking id); even ones are the harness's.
fn payment_hash(i: u64) -> String {
    format!("{:08x}{i:056x}", (i * 2_654_435_761) % 4_294_967_296)
}

/// Writes `rows` rows into each table B8's operations read.
fn seed(db: &str, fresh: &Fresh, rows: usize) {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    let script = match db {
        "sqlite" => include_str!("seed_sqlite.sql"),
        _ => include_str!("seed_postgres.sql"),
    };
    let sql = script
        .replace("{rows}", &rows.to_string())
        .replace("{now}", &cashier::units::now_ms().to_string())
        .replace("{wallet}", WALLET)
        .replace("{inkey_hash}", &hex::encode(cashier::auth::key_hash(INKEY)))
        .replace(
            "{adminkey_hash}",
            &hex::encode(cashier::auth::key_hash(ADMINKEY)),
        );
    match db {
        "sqlite" => {
            let path = fresh.url.trim_start_matches("sqlite://");
            let mut c = diesel::SqliteConnection::establish(path).expect("open the SQLite file");
            // A throwaway file: no fsync while seeding, and room for the indexes in memory.
            // The WAL is folded in before the server starts, so it does not do that while
            // timed. No ANALYZE: the server never runs one, so its planner has no statistics.
            c.batch_execute(&format!(
                "PRAGMA synchronous = OFF; PRAGMA cache_size = -400000; BEGIN; {sql} COMMIT;
                 PRAGMA wal_checkpoint(TRUNCATE);"
            ))
            .expect("seed SQLite");
        }
        _ => {
            let mut c = diesel::PgConnection::establish(&fresh.url).expect("connect");
            c.batch_execute(&format!("BEGIN; {sql} COMMIT;"))
                .expect("seed PostgreSQL");
            // What autovacuum does to a table that has stopped growing: statistics, and the
            // visibility map that index-only scans need.
            c.batch_execute("VACUUM ANALYZE").expect("vacuum");
            // Written out now, not by a checkpoint while the operations are timed.
            c.batch_execute("CHECKPOINT").expect("checkpoint");
        }
    }
    // The seed's dirty pages reach the disk before anything is timed: the kernel writing back
    // a gigabyte would otherwise stall the server's fsyncs, which is the seeding's cost.
    let synced = std::process::Command::new("sync").status();
    assert!(synced.is_ok_and(|s| s.success()), "sync after seeding");
}

/// One operation's latencies.
struct Timed {
    what: &'static str,
    sample: Sample,
}

/// Sends each request in turn on one connection; `expected` counts as success.
async fn sequential(addr: &str, requests: &[Vec<u8>], expected: u16) -> Sample {
    let mut conn = Conn::open(addr).await;
    let mut sample = Sample::default();
    let start = Instant::now();
    for r in requests {
        sample.record(&mut conn, r, expected, Instant::now()).await;
    }
    sample.elapsed = start.elapsed();
    sample
}

fn get(path: &str, host: &str, key: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Api-Key: {key}\r\n\r\n").into_bytes()
}

/// A GET operation: `warm` unmeasured requests, then `requests` measured.
async fn gets(addr: &str, paths: &[String], key: &str, requests: usize) -> Sample {
    let all: Vec<Vec<u8>> = paths.iter().map(|p| get(p, addr, key)).collect();
    let warm = all.len().saturating_sub(requests);
    sequential(addr, &all[..warm], 200).await;
    sequential(addr, &all[warm..], 200).await
}

/// Spreads `n` picks over `1..=rows` (distinct when rows allows), each mapped by `f`.
fn spread<T>(rows: usize, n: usize, f: impl Fn(u64) -> T) -> Vec<T> {
    (0..n)
        .map(|j| f(1 + (j as u64 * rows as u64 / n as u64)))
        .collect()
}

/// Every operation on a server whose database holds `rows` rows a table.
async fn operations(
    server: &Server,
    key: &str,
    rows: usize,
    requests: usize,
    store: &cashier::store::Store,
) -> Vec<Timed> {
    const WARM: usize = 20;
    let addr = server.addr.as_str();
    let n = requests + WARM;
    let mut out = Vec::new();

    let body =
        json!({"outputs": [{"address": ADDR, "amount": 10_000}], "memo": "b8", "expires_in": 1800});
    let creates: Vec<Vec<u8>> = (0..n)
        .map(|_| post("/api/jpp/invoices/", addr, key, &body))
        .collect();
    sequential(addr, &creates[..WARM], 201).await;
    out.push(Timed {
        what: "invoice create",
        sample: sequential(addr, &creates[WARM..], 201).await,
    });

    let pays = prepare_payments(addr, key, n).await;
    sequential(addr, &pays[..WARM], 200).await;
    out.push(Timed {
        what: "pay (dev chain)",
        sample: sequential(addr, &pays[WARM..], 200).await,
    });

    // Even payments are the harness wallet's: the key lookup and the hash lookup in it.
    let half = (rows / 2).max(1);
    let by_hash = spread(half, n, |i| {
        format!("/api/v1/payments/{}", payment_hash(2 * i))
    });
    out.push(Timed {
        what: "ln key + payment by hash",
        sample: gets(addr, &by_hash, INKEY, requests).await,
    });
    let wallet = vec!["/api/v1/wallet".to_owned(); n];
    out.push(Timed {
        what: "ln balance (GET wallet)",
        sample: gets(addr, &wallet, INKEY, requests).await,
    });
    let ln_list = vec!["/api/v1/payments?limit=20".to_owned(); n];
    out.push(Timed {
        what: "ln payments, first page",
        sample: gets(addr, &ln_list, INKEY, requests).await,
    });

    let first = vec!["/api/jpp/invoices/?limit=20".to_owned(); n];
    out.push(Timed {
        what: "invoice list, first page",
        sample: gets(addr, &first, key, requests).await,
    });
    // A cursor 99% of the way down: the page after it is among the oldest invoices.
    let deep = vec![
        format!(
            "/api/jpp/invoices/?limit=20&cursor={}",
            (rows / 100).max(21) + 1
        );
        n
    ];
    out.push(Timed {
        what: "invoice list, deep page",
        sample: gets(addr, &deep, key, requests).await,
    });

    out.push(Timed {
        what: "socket catch-up (?since=0)",
        sample: catch_up(addr, rows, requests, WARM).await,
    });

    out.push(Timed {
        what: "sweeper overdue (500)",
        sample: overdue(store, requests, WARM).await,
    });
    out
}

/// Time from starting to connect to the first frame, on sockets of seeded invoices with
/// `?since=0` (the oldest id there is): the catch-up reads the invoice's event from the outbox.
async fn catch_up(addr: &str, rows: usize, requests: usize, warm: usize) -> Sample {
    let ids = spread(rows, requests + warm, invoice_id);
    let mut sample = Sample::default();
    let start = Instant::now();
    for (j, id) in ids.iter().enumerate() {
        let url = format!("ws://{addr}/ws/jpp/invoice/{id}/?since=0");
        let t = Instant::now();
        let Ok((mut socket, _)) = tokio_tungstenite::connect_async(&url).await else {
            sample.errors += 1;
            continue;
        };
        let first = async {
            while let Some(Ok(frame)) = socket.next().await {
                if frame.is_text() {
                    return true;
                }
            }
            false
        };
        let heard = tokio::time::timeout(Duration::from_secs(5), first)
            .await
            .unwrap_or(false);
        let took = t.elapsed();
        let _ = socket.close(None).await;
        if j < warm {
            continue;
        }
        if heard {
            sample.ok += 1;
            sample.latencies_us.push(took.as_micros() as u64);
        } else {
            sample.errors += 1;
        }
    }
    sample.elapsed = start.elapsed();
    sample
}

/// The expiry sweeper's query as it runs it (`Invoices::sweep_expired`: at most 500).
async fn overdue(store: &cashier::store::Store, requests: usize, warm: usize) -> Sample {
    let mut sample = Sample::default();
    let start = Instant::now();
    for j in 0..requests + warm {
        let t = Instant::now();
        let now = cashier::units::now_ms();
        let found = store
            .read(move |c| cashier::store::invoices::overdue(c, now, 500))
            .await;
        if j < warm {
            continue;
        }
        match found {
            Ok(_) => {
                sample.ok += 1;
                sample.latencies_us.push(t.elapsed().as_micros() as u64);
            }
            Err(_) => sample.errors += 1,
        }
    }
    sample.elapsed = start.elapsed();
    sample
}

/// One operation on one size over the runs: what, the p50 and p99 of each run, the errors.
type Runs = (&'static str, Vec<f64>, Vec<f64>, u64);

/// B8 on one database: a server on each size in `--b8-rows`, each operation timed on every
/// size in turn, `--runs` times over, then the table of operations by size (medians of the
/// runs). Taking the sizes in turn, rather than one after the other, keeps what the machine
/// does meanwhile (another process, the kernel writing back) out of the ratio.
pub fn b8(o: &Options, runtime: &tokio::runtime::Runtime, db: &str, figures: &mut Vec<Value>) {
    let mut servers = Vec::new();
    for &rows in &o.b8_rows {
        let fresh = fresh_database(db);
        let key = fresh.key.clone();
        let t = Instant::now();
        seed(db, &fresh, rows);
        println!(
            "B8 {db:<8} seeded {rows} rows a table in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let server = serve(fresh, &[]);
        let store = chain::store_of(&server);
        servers.push((rows, server, key, store));
    }
    let mut runs: Vec<Vec<Runs>> = vec![Vec::new(); servers.len()];
    for _ in 0..o.runs.max(1) {
        for (i, (rows, server, key, store)) in servers.iter().enumerate() {
            let timed = runtime.block_on(operations(server, key, *rows, o.b8_requests, store));
            for (k, mut t) in timed.into_iter().enumerate() {
                if runs[i].len() <= k {
                    runs[i].push((t.what, Vec::new(), Vec::new(), 0));
                }
                runs[i][k].1.push(t.sample.percentile_ms(0.5));
                runs[i][k].2.push(t.sample.percentile_ms(0.99));
                runs[i][k].3 += t.sample.errors;
            }
        }
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    // (operation, [(p50, p99) by size])
    let mut table: Vec<(&'static str, Vec<(f64, f64)>)> = Vec::new();
    for (i, (rows, ..)) in servers.iter().enumerate() {
        for (k, (what, p50s, p99s, errors)) in runs[i].iter().enumerate() {
            let (p50, p99) = (median(p50s), median(p99s));
            println!(
                "B8 {db:<8} {rows:>8} rows  {what:<28} p50 {p50:>8.3} ms   p99 {p99:>8.3} ms   errors {errors}   (median of {})",
                p50s.len()
            );
            figures.push(json!({"id": "B8", "db": db, "rows": rows, "what": what,
                "p50_ms": p50, "p99_ms": p99, "errors": errors, "runs": p50s.len()}));
            if table.len() <= k {
                table.push((what, Vec::new()));
            }
            table[k].1.push((p50, p99));
        }
    }
    println!("B8 {db}: p50/p99 ms by rows already stored; last column p50(largest)/p50(smallest)");
    let head: String = o
        .b8_rows
        .iter()
        .map(|r| format!("{r:>18}"))
        .collect::<String>();
    println!("   {:<28}{head}   ratio", "operation");
    for (what, cells) in &table {
        let row: String = cells
            .iter()
            .map(|(p50, p99)| format!("{:>18}", format!("{p50:.3}/{p99:.3}")))
            .collect();
        let ratio = match (cells.first(), cells.last()) {
            (Some((a, _)), Some((b, _))) => b / a,
            _ => f64::NAN,
        };
        let verdict = if ratio <= 1.2 { "" } else { "  (> 1.2)" };
        println!("   {what:<28}{row}   {ratio:>5.2}{verdict}");
        figures.push(
            json!({"id": "B8", "db": db, "what": what, "p50_ratio_largest_to_smallest": ratio}),
        );
    }
}

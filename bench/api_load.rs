//! HTTP/1.1 load client for `bench/api_bench.py`: keep-alive connections to a unix socket or a
//! TCP port, each sending one GET at a time, either at a fixed total rate (open loop) or as fast as
//! answers come back (closed loop). Prints one line of latency percentiles.
//!
//! It exists because wrk cannot reach a unix socket and a Python client spends more time per request
//! than the server it measures. One thread (the other core is the server's), one task per
//! connection.
//!
//! Usage: `api_load (unix:PATH | tcp:HOST:PORT) URL_PATH CONNS RATE SECS [HEADER]...`, RATE in
//! requests/s over all connections, 0 for closed loop. Prints
//! `n=N late=L p50=MS p90=MS p99=MS max=MS rps=R`.
//!
//! Open loop: each connection sends every `CONNS / RATE` s from a random phase. A request whose
//! time came before the previous answer did is sent at once, counted as late, and timed from when it
//! was due, so a server that falls behind is charged for the wait it caused.

use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

type Result<T> = std::result::Result<T, String>;

struct Args {
    target: String,
    path: String,
    conns: usize,
    rate: f64,
    secs: f64,
    headers: Vec<String>,
}

fn parse_args() -> Result<Args> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 5 {
        return Err(
            "usage: api_load (unix:PATH | tcp:HOST:PORT) URL_PATH CONNS RATE SECS [HEADER]..."
                .into(),
        );
    }
    let num = |i: usize, what: &str| -> Result<f64> {
        a[i].parse::<f64>()
            .map_err(|_| format!("{what} {:?} is not a number", a[i]))
    };
    Ok(Args {
        target: a[0].clone(),
        path: a[1].clone(),
        conns: num(2, "CONNS")? as usize,
        rate: num(3, "RATE")?,
        secs: num(4, "SECS")?,
        headers: a[5..].to_vec(),
    })
}

/// Reads one response (headers, then a `Content-Length` body) into `buf`; returns its status.
async fn read_response<S: AsyncRead + Unpin>(s: &mut S, buf: &mut Vec<u8>) -> Result<u16> {
    buf.clear();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the server closed the connection".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| "a non-UTF-8 header")?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status line")?;
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .ok_or("no Content-Length")?;
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the server closed the connection mid-body".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(status)
}

#[derive(Default)]
struct Tally {
    lat: Vec<Duration>,
    late: u64,
}

async fn client<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    req: Vec<u8>,
    period: Option<Duration>,
    until: Instant,
) -> Result<Tally> {
    let mut t = Tally::default();
    let mut buf = Vec::with_capacity(4096);
    let mut due = Instant::now() + period.map_or(Duration::ZERO, |p| p.mul_f64(fastrand::f64()));
    while due < until {
        let start = match period {
            None => Instant::now(),
            Some(_) if due > Instant::now() => {
                tokio::time::sleep_until(due.into()).await;
                Instant::now()
            }
            Some(_) => {
                t.late += 1;
                due
            }
        };
        s.write_all(&req).await.map_err(|e| e.to_string())?;
        let status = read_response(&mut s, &mut buf).await?;
        if status != 200 {
            return Err(format!("status {status}"));
        }
        t.lat.push(start.elapsed());
        due = match period {
            Some(p) => due + p,
            None => Instant::now(),
        };
    }
    Ok(t)
}

async fn run(a: Args) -> Result<()> {
    let mut req = format!("GET {} HTTP/1.1\r\nHost: bench\r\n", a.path);
    for h in &a.headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    let period = (a.rate > 0.0).then(|| Duration::from_secs_f64(a.conns as f64 / a.rate));
    // Connect every client first, then start the clock.
    let mut streams = Vec::new();
    for _ in 0..a.conns {
        let s: Box<dyn Stream> = if let Some(p) = a.target.strip_prefix("unix:") {
            Box::new(
                tokio::net::UnixStream::connect(p)
                    .await
                    .map_err(|e| format!("{p}: {e}"))?,
            )
        } else if let Some(hp) = a.target.strip_prefix("tcp:") {
            let s = tokio::net::TcpStream::connect(hp)
                .await
                .map_err(|e| format!("{hp}: {e}"))?;
            s.set_nodelay(true).map_err(|e| e.to_string())?;
            Box::new(s)
        } else {
            return Err(format!(
                "{:?}: expected unix:PATH or tcp:HOST:PORT",
                a.target
            ));
        };
        streams.push(s);
    }
    let began = Instant::now();
    let until = began + Duration::from_secs_f64(a.secs);
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|s| tokio::task::spawn_local(client(s, req.clone().into_bytes(), period, until)))
        .collect();
    let mut all = Tally::default();
    for task in tasks {
        let t = task.await.map_err(|e| e.to_string())??;
        all.lat.extend(t.lat);
        all.late += t.late;
    }
    let wall = began.elapsed().as_secs_f64();
    all.lat.sort();
    if all.lat.is_empty() {
        return Err("no request was answered".into());
    }
    let pct = |q: f64| {
        let i = ((q * all.lat.len() as f64) as usize).min(all.lat.len() - 1);
        all.lat[i].as_secs_f64() * 1e3
    };
    println!(
        "n={} late={} p50={:.3} p90={:.3} p99={:.3} max={:.3} rps={:.0}",
        all.lat.len(),
        all.late,
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0),
        all.lat.len() as f64 / wall
    );
    Ok(())
}

trait Stream: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin> Stream for T {}

fn main() {
    let result = parse_args().and_then(|a| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        tokio::task::LocalSet::new().block_on(&rt, run(a))
    });
    if let Err(e) = result {
        eprintln!("api_load: {e}");
        std::process::exit(1);
    }
}

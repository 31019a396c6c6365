//! The reference server of `bench/api_bench.py`: hyper's HTTP/1.1 server on one current-thread
//! tokio runtime (as gantry's API runs), answering every request with a fixed JSON body and no work
//! behind it. Gantry's status route measured next to it shows what the route itself costs over the
//! same HTTP stack.
//!
//! Usage: `hyper_hello (unix:PATH | tcp:HOST:PORT) BODY_BYTES`.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Response;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

fn serve<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(stream: S, body: Bytes) {
    tokio::spawn(async move {
        let svc = service_fn(move |_req| {
            let body = body.clone();
            async move {
                Ok::<_, Infallible>(
                    Response::builder()
                        .header("content-type", "application/json")
                        .body(Full::new(body))
                        .unwrap_or_default(),
                )
            }
        });
        let _ = http1::Builder::new()
            .serve_connection(TokioIo::new(stream), svc)
            .await;
    });
}

async fn run(target: String, body: Bytes) -> Result<(), String> {
    if let Some(path) = target.strip_prefix("unix:") {
        let _ = std::fs::remove_file(path);
        let l = tokio::net::UnixListener::bind(path).map_err(|e| format!("{path}: {e}"))?;
        loop {
            let (s, _) = l.accept().await.map_err(|e| e.to_string())?;
            serve(s, body.clone());
        }
    } else if let Some(hp) = target.strip_prefix("tcp:") {
        let l = tokio::net::TcpListener::bind(hp)
            .await
            .map_err(|e| format!("{hp}: {e}"))?;
        loop {
            let (s, _) = l.accept().await.map_err(|e| e.to_string())?;
            let _ = s.set_nodelay(true);
            serve(s, body.clone());
        }
    } else {
        Err(format!("{target:?}: expected unix:PATH or tcp:HOST:PORT"))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [target, len] => len
            .parse::<usize>()
            .map_err(|_| format!("BODY_BYTES {len:?} is not a number"))
            .and_then(|n| {
                // A JSON string of n bytes: "xxxx".
                let body = format!("\"{}\"", "x".repeat(n.saturating_sub(2)));
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?
                    .block_on(run(target.clone(), Bytes::from(body)))
            }),
        _ => Err("usage: hyper_hello (unix:PATH | tcp:HOST:PORT) BODY_BYTES".into()),
    };
    if let Err(e) = result {
        eprintln!("hyper_hello: {e}");
        std::process::exit(1);
    }
}

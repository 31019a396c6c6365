//! Following a job's log ring: over WebSocket (mittnite's `/v1/.../logs`, one text message per line)
//! or as a chunked NDJSON body (`/v2/.../logs`, one JSON object per line, `curl -N` friendly).
//!
//! A follower starts at the last `taillen` lines (all the ring holds when absent or negative), sends
//! batches as fast as its client takes them, and without `follow=true` ends at the ring's end. A
//! follower that fell behind the ring gets one marker saying exactly how many lines it missed —
//! `[gantry] N lines skipped` on WebSocket, `{"skipped":N}` in NDJSON — and goes on from the oldest
//! line still held. Each follower is a task of its own reading the ring under a short lock, so a slow
//! client never holds up the job or other clients (see `logring`).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::{json as json_reply, Body, Shared};
use crate::logring::{Batch, LogRing};

/// Lines per batch handed to a client at once.
const BATCH: usize = 4096;

/// `follow` and `taillen` from the query string.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub follow: bool,
    pub tail: Option<u64>,
}

impl Options {
    pub fn from_query(query: Option<&str>) -> Options {
        let mut opts = Options::default();
        for pair in query.unwrap_or("").split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "follow" => opts.follow = v.eq_ignore_ascii_case("true"),
                "taillen" => {
                    opts.tail = v.parse::<i64>().ok().filter(|n| *n >= 0).map(|n| n as u64)
                }
                _ => {}
            }
        }
        opts
    }
}

/// Whether the request asks for a WebSocket upgrade.
pub fn is_websocket(req: &Request<Incoming>) -> bool {
    let h = req.headers();
    let has = |name: hyper::header::HeaderName, token: &str| {
        h.get_all(name).iter().any(|v| {
            v.to_str()
                .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
                .unwrap_or(false)
        })
    };
    has(hyper::header::UPGRADE, "websocket")
        && has(hyper::header::CONNECTION, "upgrade")
        && h.contains_key(hyper::header::SEC_WEBSOCKET_KEY)
}

fn ring(shared: &Shared, job: &str) -> Option<Arc<LogRing>> {
    shared.rings.as_ref()?.get(job).cloned()
}

/// Upgrades to WebSocket and follows `job`'s ring on a task of its own, which holds `slot` (the
/// connection's place among its listener's) until it ends.
pub fn websocket(
    shared: &Shared,
    job: &str,
    opts: Options,
    req: Request<Incoming>,
    slot: super::listen::Slot,
) -> Response<Body> {
    let Some(ring) = ring(shared, job) else {
        return json_reply(
            StatusCode::NOT_FOUND,
            &json!({"error": format!("no log buffer for job {job:?}")}),
        );
    };
    let Some(key) = req.headers().get(hyper::header::SEC_WEBSOCKET_KEY) else {
        return super::text_error(StatusCode::BAD_REQUEST, "Bad Request");
    };
    let accept = derive_accept_key(key.as_bytes());
    tokio::spawn(async move {
        let upgraded = match hyper::upgrade::on(req).await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!("API: WebSocket upgrade failed: {e}");
                return;
            }
        };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        follow_ws(ws, ring, opts).await;
        drop(slot);
    });
    let mut resp = super::empty(StatusCode::SWITCHING_PROTOCOLS);
    let h = resp.headers_mut();
    h.insert(
        hyper::header::UPGRADE,
        hyper::header::HeaderValue::from_static("websocket"),
    );
    h.insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("Upgrade"),
    );
    if let Ok(v) = hyper::header::HeaderValue::from_str(&accept) {
        h.insert(hyper::header::SEC_WEBSOCKET_ACCEPT, v);
    }
    resp
}

fn skipped_text(n: u64) -> String {
    format!("[gantry] {n} lines skipped (this client fell behind the log buffer)")
}

async fn follow_ws<S>(mut ws: WebSocketStream<S>, ring: Arc<LogRing>, opts: Options)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut changed = ring.subscribe();
    let mut next = ring.tail_start(opts.tail);
    loop {
        changed.borrow_and_update();
        let batch: Batch = ring.read(next, BATCH);
        next = batch.next;
        if batch.skipped > 0
            && ws
                .feed(Message::text(skipped_text(batch.skipped)))
                .await
                .is_err()
        {
            return;
        }
        let empty = batch.lines.is_empty();
        for line in batch.lines {
            let text = String::from_utf8_lossy(&line.text).into_owned();
            if ws.feed(Message::text(text)).await.is_err() {
                return;
            }
        }
        if ws.flush().await.is_err() {
            return;
        }
        if !empty {
            continue;
        }
        if !opts.follow {
            let _ = ws
                .close(Some(CloseFrame {
                    code:
                        tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Normal,
                    reason: "EOF".into(),
                }))
                .await;
            return;
        }
        tokio::select! {
            r = changed.changed() => if r.is_err() { return },
            msg = ws.next() => match msg {
                // The client closed, or went away.
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

/// A chunked NDJSON body following `job`'s ring.
pub fn ndjson(shared: &Shared, job: &str, opts: Options) -> Response<Body> {
    let Some(ring) = ring(shared, job) else {
        return json_reply(
            StatusCode::NOT_FOUND,
            &json!({"error": format!("no log buffer for job {job:?} (is the API on?)")}),
        );
    };
    let changed = ring.subscribe();
    let next = ring.tail_start(opts.tail);
    let state = (ring, changed, next, false);
    let stream =
        futures_util::stream::unfold(state, move |(ring, mut changed, next, done)| async move {
            if done {
                return None;
            }
            loop {
                changed.borrow_and_update();
                let batch = ring.read(next, BATCH);
                if batch.skipped > 0 || !batch.lines.is_empty() {
                    let mut out = String::new();
                    if batch.skipped > 0 {
                        out.push_str(&json!({"skipped": batch.skipped}).to_string());
                        out.push('\n');
                    }
                    for line in &batch.lines {
                        out.push_str(
                            &json!({
                                "seq": line.seq,
                                "stream": line.stream.name(),
                                "line": String::from_utf8_lossy(&line.text),
                            })
                            .to_string(),
                        );
                        out.push('\n');
                    }
                    let frame: Result<Frame<Bytes>, Infallible> = Ok(Frame::data(Bytes::from(out)));
                    return Some((frame, (ring, changed, batch.next, false)));
                }
                if !opts.follow || changed.changed().await.is_err() {
                    return None;
                }
            }
        });
    let mut resp = Response::new(StreamBody::new(stream).boxed_unsync());
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/x-ndjson"),
    );
    resp
}

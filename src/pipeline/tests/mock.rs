//! A scriptable HTTP upstream on 127.0.0.1 for the pipeline's unit tests: answers each request
//! with the next scripted status (204 once the script is empty) and records what it got.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// One request the mock answered.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub status: u16,
    pub at: Instant,
}

/// Script and log.
#[derive(Debug, Default)]
pub(crate) struct MockState {
    /// Status and optional Retry-After for the next requests.
    pub script: VecDeque<(u16, Option<&'static str>)>,
    /// Every request, in arrival order.
    pub received: Vec<Received>,
    /// How long each answer takes (a slow but healthy upstream).
    pub delay: Duration,
}

pub(crate) struct Mock {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<MockState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    state: Arc<Mutex<MockState>>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let headers = req.headers().clone();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let delay = state.lock().unwrap().delay;
    tokio::time::sleep(delay).await;
    let (status, retry_after) = {
        let mut st = state.lock().unwrap();
        let (status, ra) = st.script.pop_front().unwrap_or((204, None));
        st.received.push(Received {
            path,
            headers,
            body,
            status,
            at: Instant::now(),
        });
        (status, ra)
    };
    let mut resp = Response::builder().status(status);
    if let Some(ra) = retry_after {
        resp = resp.header("retry-after", ra);
    }
    Ok(resp
        .body(Full::new(Bytes::from_static(b"mock says so")))
        .unwrap())
}

impl Mock {
    pub(crate) async fn start() -> Mock {
        Mock::start_on("127.0.0.1:0".parse().unwrap()).await
    }

    pub(crate) async fn start_on(addr: SocketAddr) -> Mock {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(MockState::default()));
        let st = Arc::clone(&state);
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let st = Arc::clone(&st);
                conns.spawn(async move {
                    let svc = hyper::service::service_fn(move |req| handle(Arc::clone(&st), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Mock { addr, state, task }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub(crate) fn script(&self, items: &[(u16, Option<&'static str>)]) {
        self.state
            .lock()
            .unwrap()
            .script
            .extend(items.iter().copied());
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// Bodies of the requests answered 2xx.
    pub(crate) fn delivered(&self) -> Vec<Bytes> {
        self.received()
            .into_iter()
            .filter(|r| (200..300).contains(&r.status))
            .map(|r| r.body)
            .collect()
    }
}

/// Polls `cond` every 10 ms for up to 10 s.
pub(crate) async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

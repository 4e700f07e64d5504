//! The webhook against a small HTTP receiver on 127.0.0.1 (raw tokio, one request per
//! connection) that can answer 200, answer 500, or be down (refusing connections).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::*;
use crate::abuse::event::{Action, Event, EventKind, Signal};

const ANSWER_OK: u8 = 0;
const ANSWER_500: u8 = 1;

/// The receiver: records the ids of events it answered 2xx, counts the ones it refused.
struct Receiver {
    addr: SocketAddr,
    answer: Arc<AtomicU8>,
    accepted: Arc<Mutex<Vec<String>>>,
    refused: Arc<Mutex<Vec<String>>>,
    task: Option<JoinHandle<()>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = bind("127.0.0.1:0".parse().unwrap());
        let mut r = Receiver {
            addr: listener.local_addr().unwrap(),
            answer: Arc::default(),
            accepted: Arc::default(),
            refused: Arc::default(),
            task: None,
        };
        r.serve(listener);
        r
    }

    fn url(&self) -> Url {
        Url::parse(&format!("http://{}/hook", self.addr)).unwrap()
    }

    /// Stops listening: connections are refused until [`Receiver::up`].
    async fn down(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }

    /// Listens again on the same port.
    fn up(&mut self) {
        let listener = bind(self.addr);
        self.serve(listener);
    }

    fn serve(&mut self, listener: TcpListener) {
        let (answer, accepted, refused) = (
            self.answer.clone(),
            self.accepted.clone(),
            self.refused.clone(),
        );
        self.task = Some(tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let Some(body) = read_request(&mut conn).await else {
                    continue;
                };
                let event: Event = serde_json::from_slice(&body).expect("an Event as JSON");
                let status = if answer.load(SeqCst) == ANSWER_OK {
                    accepted.lock().unwrap().push(event.id);
                    "200 OK"
                } else {
                    refused.lock().unwrap().push(event.id);
                    "500 Internal Server Error"
                };
                let head =
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = conn.write_all(head.as_bytes()).await;
            }
        }));
    }

    fn accepted(&self) -> Vec<String> {
        self.accepted.lock().unwrap().clone()
    }

    fn refused(&self) -> usize {
        self.refused.lock().unwrap().len()
    }
}

fn bind(addr: SocketAddr) -> TcpListener {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.bind(addr).unwrap();
    socket.listen(64).unwrap()
}

/// One HTTP/1.1 request with a `content-length` body; returns the body.
async fn read_request(conn: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())?;
            while buf.len() < end + 4 + len {
                let n = conn.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Some(buf[end + 4..end + 4 + len].to_vec());
        }
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn event(n: u64) -> Event {
    Event::new(
        EventKind::Flagged,
        "tk_test",
        "test token",
        "test",
        Signal::Spike,
        Action::Flagged,
        n as f64,
        1.0,
        1_700_000_000 + n,
    )
}

/// Millisecond backoff so retries happen within a test.
fn fast(url: Url) -> WebhookSettings {
    WebhookSettings {
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(80),
        attempt_timeout: Duration::from_secs(2),
        ..WebhookSettings::new(url)
    }
}

/// Starts the sender; the returned sender stops it when dropped or set.
fn start(queue: &WebhookQueue) -> watch::Sender<bool> {
    let (stop, watcher) = watch::channel(false);
    tokio::spawn(queue.clone().run(watcher));
    stop
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn metric(queue: &WebhookQueue, series: &str) -> f64 {
    let mut out = String::new();
    queue.render_metrics(&mut out);
    out.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{series} missing in\n{out}"))
}

const OK: &str = "ingest_webhook_deliveries_total{result=\"ok\"}";
const FAILED: &str = "ingest_webhook_deliveries_total{result=\"failed\"}";
const LENGTH: &str = "ingest_webhook_queue_length";
const DROPPED: &str = "ingest_webhook_dropped_total";

#[tokio::test]
async fn every_event_arrives_once_in_order() {
    let receiver = Receiver::start().await;
    let queue = WebhookQueue::new(fast(receiver.url()));
    let _stop = start(&queue);
    let events: Vec<Event> = (0..200).map(event).collect();
    for e in &events {
        queue.publish(e);
    }
    wait_until("200 deliveries", || receiver.accepted().len() >= 200).await;
    let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
    assert_eq!(receiver.accepted(), ids);
    assert_eq!(metric(&queue, OK), 200.0);
    assert_eq!(metric(&queue, FAILED), 0.0);
    assert_eq!(metric(&queue, LENGTH), 0.0);
    assert_eq!(metric(&queue, DROPPED), 0.0);
}

#[tokio::test]
async fn a_receiver_down_then_failing_then_up_gets_every_event_once() {
    let mut receiver = Receiver::start().await;
    receiver.down().await;
    let queue = WebhookQueue::new(fast(receiver.url()));
    let _stop = start(&queue);
    let events: Vec<Event> = (0..50).map(event).collect();
    for e in &events {
        queue.publish(e);
    }
    // Connections refused for a while ...
    wait_until("3 refused connections", || metric(&queue, FAILED) >= 3.0).await;
    assert!(receiver.accepted().is_empty());
    // ... then up but answering 500 ...
    receiver.answer.store(ANSWER_500, SeqCst);
    receiver.up();
    wait_until("3 answers 500", || receiver.refused() >= 3).await;
    assert_eq!(metric(&queue, LENGTH), 50.0);
    // ... then well.
    receiver.answer.store(ANSWER_OK, SeqCst);
    wait_until("50 deliveries", || receiver.accepted().len() >= 50).await;
    let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
    assert_eq!(receiver.accepted(), ids, "each event once, in order");
    assert_eq!(metric(&queue, OK), 50.0);
    assert!(metric(&queue, FAILED) >= 6.0);
    assert_eq!(metric(&queue, LENGTH), 0.0);
    assert_eq!(metric(&queue, DROPPED), 0.0);
    // Only the head was retried: every refused id is the first event's.
    assert!(receiver
        .refused
        .lock()
        .unwrap()
        .iter()
        .all(|id| *id == events[0].id));
}

#[tokio::test]
async fn a_full_queue_drops_the_oldest_and_counts_it() {
    let receiver = Receiver::start().await;
    receiver.answer.store(ANSWER_500, SeqCst);
    let queue = WebhookQueue::new(WebhookSettings {
        capacity: 5,
        ..fast(receiver.url())
    });
    let _stop = start(&queue);
    let events: Vec<Event> = (0..12).map(event).collect();
    queue.publish(&events[0]);
    // The first event is being retried when the others push it out.
    wait_until("a failed attempt", || receiver.refused() >= 1).await;
    for e in &events[1..] {
        queue.publish(e);
    }
    assert_eq!(metric(&queue, DROPPED), 7.0);
    assert_eq!(metric(&queue, LENGTH), 5.0);
    // Once an attempt of the new oldest is refused, none of the dropped ones is in flight.
    let first_kept = events[7].id.clone();
    wait_until("an attempt of the new oldest", || {
        receiver.refused.lock().unwrap().contains(&first_kept)
    })
    .await;
    receiver.answer.store(ANSWER_OK, SeqCst);
    wait_until("5 deliveries", || receiver.accepted().len() >= 5).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let newest: Vec<String> = events[7..].iter().map(|e| e.id.clone()).collect();
    assert_eq!(receiver.accepted(), newest);
    assert_eq!(metric(&queue, DROPPED), 7.0);
}

#[tokio::test]
async fn the_default_bound_is_ten_thousand_and_publish_does_not_wait() {
    // Nothing listens on this port: every attempt fails, the queue only fills.
    let mut receiver = Receiver::start().await;
    receiver.down().await;
    let queue = WebhookQueue::new(WebhookSettings::new(receiver.url()));
    let _stop = start(&queue);
    let e = event(1);
    let started = Instant::now();
    for _ in 0..10_005 {
        queue.publish(&e);
    }
    let took = started.elapsed();
    assert_eq!(metric(&queue, LENGTH), 10_000.0);
    assert_eq!(metric(&queue, DROPPED), 5.0);
    // A few microseconds each; generous for a shared debug build.
    assert!(
        took < Duration::from_secs(2),
        "10,005 publishes took {took:?}"
    );
}

#[tokio::test]
async fn an_event_failing_for_the_whole_retry_period_is_dropped_and_the_next_delivered() {
    let receiver = Receiver::start().await;
    receiver.answer.store(ANSWER_500, SeqCst);
    let queue = WebhookQueue::new(WebhookSettings {
        give_up_after: Duration::from_millis(150),
        ..fast(receiver.url())
    });
    let _stop = start(&queue);
    queue.publish(&event(1));
    wait_until("the event given up", || metric(&queue, DROPPED) >= 1.0).await;
    assert_eq!(metric(&queue, LENGTH), 0.0);
    assert!(
        receiver.refused() >= 2,
        "it was retried before being dropped"
    );
    receiver.answer.store(ANSWER_OK, SeqCst);
    let next = event(2);
    queue.publish(&next);
    wait_until("the next event", || !receiver.accepted().is_empty()).await;
    assert_eq!(receiver.accepted(), vec![next.id]);
}

#[test]
fn backoff_doubles_from_one_second_to_five_minutes() {
    let s = WebhookSettings::new(Url::parse("http://127.0.0.1:9/").unwrap());
    let secs: Vec<u64> = (1..=11).map(|n| s.backoff(n).as_secs()).collect();
    assert_eq!(secs, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
    assert_eq!(s.backoff(u32::MAX), Duration::from_secs(300));
    assert_eq!(s.give_up_after, Duration::from_secs(24 * 3600));
    assert_eq!(s.capacity, 10_000);
}

#[test]
fn a_disabled_queue_keeps_nothing_and_still_renders_its_series() {
    let queue = WebhookQueue::disabled();
    queue.publish(&event(1));
    assert!(queue.is_empty());
    assert_eq!(metric(&queue, LENGTH), 0.0);
    assert_eq!(metric(&queue, DROPPED), 0.0);
}

#[test]
fn the_body_is_the_event_as_json() {
    let e = event(7);
    let v: serde_json::Value = serde_json::to_value(&e).unwrap();
    assert_eq!(v["event"], "abuse.flagged");
    assert_eq!(v["signal"], "spike");
    assert_eq!(v["action"], "flagged");
    assert_eq!(v["token_id"], "tk_test");
    assert_eq!(v["at"], 1_700_000_007u64);
    let id = v["id"].as_str().unwrap();
    assert!(id.starts_with("ev_") && id.len() == 19, "{id}");
    assert_ne!(event(7).id, e.id);
}

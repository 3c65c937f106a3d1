//! The batcher on its own: clicks and flushes go in through its channel, batches come out
//! through a stand-in delivery that records them and that the test can hold up (a push in
//! flight). Every test runs on a single-threaded runtime, so what the batcher sees waiting
//! is exactly what the test sent.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::DateTime;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::*;

/// The stand-in delivery: each call counts as started, waits for a permit, then records its
/// batch's click ids.
struct Deliveries {
    started: AtomicUsize,
    permits: Semaphore,
    batches: Mutex<Vec<Vec<String>>>,
}

impl Default for Deliveries {
    fn default() -> Self {
        Self {
            started: AtomicUsize::new(0),
            permits: Semaphore::new(0),
            batches: Mutex::default(),
        }
    }
}

impl Deliveries {
    fn batches(&self) -> Vec<Vec<String>> {
        self.batches.lock().unwrap().clone()
    }

    fn started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }
}

fn start(deliveries: &Arc<Deliveries>) -> (mpsc::Sender<Msg>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let d = deliveries.clone();
    let task = tokio::spawn(batcher(rx, Arc::default(), move |batch: ClickBatch| {
        let d = d.clone();
        async move {
            d.started.fetch_add(1, Ordering::SeqCst);
            d.permits.acquire().await.unwrap().forget();
            let ids = batch.clicks.into_iter().map(|c| c.click_id).collect();
            d.batches.lock().unwrap().push(ids);
        }
    }));
    (tx, task)
}

fn click(id: usize) -> Click {
    Click {
        click_id: format!("c{id}"),
        url_id: 1,
        short_code: "abc".to_owned(),
        at: DateTime::from_timestamp(1_700_000_000, 0)
            .unwrap()
            .naive_utc(),
        visitor_hash: "v".to_owned(),
        user_agent: None,
        referrer: None,
        head: false,
    }
}

fn send(tx: &mpsc::Sender<Msg>, id: usize) {
    tx.try_send(Msg::Click(Box::new(click(id)), None)).unwrap();
}

fn flush(tx: &mpsc::Sender<Msg>) -> oneshot::Receiver<()> {
    let (done, wait) = oneshot::channel();
    tx.try_send(Msg::Flush(done)).unwrap();
    wait
}

/// Lets the other tasks run until `cond` holds; panics after many turns (the batcher takes a
/// handful).
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if cond() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("never happened: {what}");
}

/// Waits (boundedly, so a batcher that never answers fails instead of hanging) for a flush
/// or an acknowledgement.
async fn answered(what: &str, mut wait: oneshot::Receiver<()>) {
    until(what, || wait.try_recv().is_ok()).await;
}

fn ids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("c{i}")).collect()
}

#[tokio::test]
async fn a_batch_never_exceeds_batch_max_and_every_click_is_delivered_once_in_order() {
    let deliveries = Arc::new(Deliveries::default());
    deliveries.permits.add_permits(Semaphore::MAX_PERMITS);
    let (tx, _task) = start(&deliveries);
    let sent = 2 * BATCH_MAX + 5;
    for i in 0..sent {
        send(&tx, i);
    }
    answered("flush", flush(&tx)).await;

    let batches = deliveries.batches();
    let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
    assert_eq!(sizes, [BATCH_MAX, BATCH_MAX, 5]);
    assert_eq!(batches.concat(), ids(0..sent));
}

#[tokio::test]
async fn clicks_arriving_while_a_push_is_in_flight_share_the_next_batch() {
    let deliveries = Arc::new(Deliveries::default());
    let (tx, _task) = start(&deliveries);
    send(&tx, 0);
    until("first push started", || deliveries.started() == 1).await;
    for i in 1..=10 {
        send(&tx, i);
    }
    let flushed = flush(&tx);
    deliveries.permits.add_permits(Semaphore::MAX_PERMITS);
    answered("flush", flushed).await;
    assert_eq!(deliveries.batches(), [ids(0..1), ids(1..11)]);
}

#[tokio::test]
async fn an_acknowledged_click_is_released_only_after_its_batch_was_delivered() {
    let deliveries = Arc::new(Deliveries::default());
    let (tx, _task) = start(&deliveries);
    let (done, mut acked) = oneshot::channel();
    tx.try_send(Msg::Click(Box::new(click(0)), Some(done)))
        .unwrap();
    until("push started", || deliveries.started() == 1).await;
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert!(
        acked.try_recv().is_err(),
        "acknowledged while its push is still in flight"
    );
    deliveries.permits.add_permits(Semaphore::MAX_PERMITS);
    answered("acknowledgement", acked).await;
    assert_eq!(deliveries.batches(), [ids(0..1)]);
}

#[tokio::test]
async fn a_flush_returns_once_the_clicks_sent_before_it_are_delivered_and_cuts_the_batch() {
    let deliveries = Arc::new(Deliveries::default());
    // One push may complete; the next one stays in flight.
    deliveries.permits.add_permits(1);
    let (tx, _task) = start(&deliveries);
    send(&tx, 0);
    send(&tx, 1);
    let flushed = flush(&tx);
    send(&tx, 2);
    answered("flush", flushed).await;
    assert_eq!(deliveries.batches(), [ids(0..2)]);
    until("second push started", || deliveries.started() == 2).await;
    deliveries.permits.add_permits(Semaphore::MAX_PERMITS);
    answered("second flush", flush(&tx)).await;
    assert_eq!(deliveries.batches(), [ids(0..2), ids(2..3)]);
}

#[test]
fn a_lone_click_is_delivered_at_once_without_any_timer() {
    // No time driver: a batcher that waited on a timer (a linger delay, a periodic flush)
    // would panic here, and one that waited for a fuller batch would never deliver.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let deliveries = Arc::new(Deliveries::default());
        deliveries.permits.add_permits(Semaphore::MAX_PERMITS);
        let (tx, task) = start(&deliveries);
        send(&tx, 0);
        until("lone click delivered", || !deliveries.batches().is_empty()).await;
        assert_eq!(deliveries.batches(), [ids(0..1)]);
        drop(tx);
        task.await.unwrap();
    });
}

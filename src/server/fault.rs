//! Transport faults done for real at the socket: a connection wrapper that can end with a TCP
//! RST or with garbage bytes, and response bodies that trickle or fall short of their
//! `Content-Length`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use rand::{Rng, RngExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

/// What a connection does as it is dropped; set by the request handler just before it fails
/// the connection on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum OnClose {
    /// A clean close (FIN).
    Fin = 0,
    /// SO_LINGER 0, so the close is a TCP RST.
    Reset = 1,
    /// Random bytes are written first, then FIN.
    Garbage = 2,
}

/// Shared between a connection and its request handler.
#[derive(Debug, Clone, Default)]
pub struct Control(Arc<AtomicU8>);

impl Control {
    pub fn on_close(&self, action: OnClose) {
        self.0.store(action as u8, Ordering::Relaxed);
    }

    fn action(&self) -> u8 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A TCP stream that carries out its [`Control`]'s close action when hyper drops it.
pub struct FaultIo {
    stream: TcpStream,
    control: Control,
}

impl FaultIo {
    pub fn new(stream: TcpStream, control: Control) -> FaultIo {
        FaultIo { stream, control }
    }
}

impl Drop for FaultIo {
    fn drop(&mut self) {
        match self.control.action() {
            a if a == OnClose::Reset as u8 => {
                let _ = socket2::SockRef::from(&self.stream).set_linger(Some(Duration::ZERO));
            }
            a if a == OnClose::Garbage as u8 => {
                // A few hundred bytes always fit an empty send buffer: one non-blocking write.
                let mut rng = rand::rng();
                let mut bytes = vec![0u8; rng.random_range(64..512)];
                rng.fill_bytes(&mut bytes);
                let _ = self.stream.try_write(&bytes);
            }
            _ => {}
        }
    }
}

impl AsyncRead for FaultIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for FaultIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Every response body Gazua sends.
pub enum GazuaBody {
    /// The whole body at once (hyper sets `Content-Length`).
    Full(Option<Bytes>),
    /// Part of a body whose `Content-Length` header promised all of it: hyper finds the body
    /// short and closes the connection.
    Short(Option<Bytes>),
    /// The body at a fixed rate.
    Dribble(Box<Dribble>),
}

impl GazuaBody {
    pub fn full(bytes: impl Into<Bytes>) -> GazuaBody {
        GazuaBody::Full(Some(bytes.into()))
    }
}

pub struct Dribble {
    rest: Bytes,
    chunk: usize,
    tick: Duration,
    sleep: Pin<Box<Sleep>>,
    /// Once shutdown starts, the rest goes out at once.
    drain: watch::Receiver<bool>,
    /// Arrival + `--max-latency`: the whole answer is out by then. What is left of the body
    /// goes at once (a complete answer, as at shutdown), rather than being cut: the client
    /// asked for a slow answer, not a lost one, and the ledger already applied it.
    end_by: Instant,
}

impl Dribble {
    pub fn new(
        body: Bytes,
        bytes_per_sec: u32,
        drain: watch::Receiver<bool>,
        end_by: Instant,
    ) -> Dribble {
        // At least 10 ms between writes; below 100 B/s, one byte per write.
        let rate = u64::from(bytes_per_sec.max(1));
        let chunk = (rate / 100).max(1);
        let tick = Duration::from_nanos(1_000_000_000 * chunk / rate);
        Dribble {
            rest: body,
            chunk: chunk as usize,
            tick,
            sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
            drain,
            end_by,
        }
    }
}

impl Body for GazuaBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.get_mut() {
            GazuaBody::Full(bytes) | GazuaBody::Short(bytes) => {
                Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b))))
            }
            GazuaBody::Dribble(d) => {
                if d.rest.is_empty() {
                    return Poll::Ready(None);
                }
                if !*d.drain.borrow() {
                    ready!(d.sleep.as_mut().poll(cx));
                    // The last wake-up is at `end_by` itself: it sends the rest below.
                    if d.sleep.deadline() < d.end_by {
                        let next = (d.sleep.deadline() + d.tick).min(d.end_by);
                        d.sleep.as_mut().reset(next);
                        let n = d.chunk.min(d.rest.len());
                        return Poll::Ready(Some(Ok(Frame::data(d.rest.split_to(n)))));
                    }
                }
                let rest = std::mem::take(&mut d.rest);
                Poll::Ready(Some(Ok(Frame::data(rest))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            GazuaBody::Full(bytes) | GazuaBody::Short(bytes) => bytes.is_none(),
            GazuaBody::Dribble(d) => d.rest.is_empty(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            GazuaBody::Full(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            GazuaBody::Full(None) => SizeHint::with_exact(0),
            // Not exact: hyper keeps the Content-Length header the handler set.
            GazuaBody::Short(_) | GazuaBody::Dribble(_) => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    /// Every frame of `body` with the paused clock's time since `start` when it came.
    async fn frames(mut body: GazuaBody, start: Instant) -> Vec<(Duration, usize)> {
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            let data = frame.unwrap().into_data().unwrap();
            out.push((start.elapsed(), data.len()));
        }
        out
    }

    #[tokio::test(start_paused = true)]
    async fn dribble_trickles_at_its_rate() {
        let (_tx, drain) = watch::channel(false);
        let start = Instant::now();
        let body = Dribble::new(
            Bytes::from(vec![b'x'; 1000]),
            1000,
            drain,
            start + ms(60_000),
        );
        let got = frames(GazuaBody::Dribble(Box::new(body)), start).await;
        // 10 bytes every 10 ms: 100 frames, the last at 990 ms.
        assert_eq!(got.len(), 100);
        assert!(got.iter().all(|(_, n)| *n == 10));
        assert_eq!(got.last().unwrap().0, ms(990));
    }

    #[tokio::test(start_paused = true)]
    async fn dribble_ends_by_its_deadline_with_the_rest_at_once() {
        let (_tx, drain) = watch::channel(false);
        let start = Instant::now();
        // 100 B/s would take 10 s for 1,000 bytes; the deadline is 2 s away.
        let body = Dribble::new(Bytes::from(vec![b'x'; 1000]), 100, drain, start + ms(2000));
        let got = frames(GazuaBody::Dribble(Box::new(body)), start).await;
        let total: usize = got.iter().map(|(_, n)| n).sum();
        assert_eq!(total, 1000, "the whole body is sent");
        let (at, last) = *got.last().unwrap();
        assert_eq!(at, ms(2000), "the rest goes exactly at the deadline");
        // Up to the deadline it trickled: one byte per 10 ms from 0 to 1,990 ms.
        assert_eq!(got.len() - 1, 200);
        assert_eq!(last, 800);

        // A deadline already past (latency = --max-latency): the body goes at once.
        let (_tx, drain) = watch::channel(false);
        let start = Instant::now();
        let body = Dribble::new(Bytes::from(vec![b'x'; 1000]), 100, drain, start);
        let got = frames(GazuaBody::Dribble(Box::new(body)), start).await;
        assert_eq!(got, vec![(Duration::ZERO, 1000)]);
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }
}

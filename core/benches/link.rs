//! What the link layer's cryptography costs: one handshake (SPAKE2 on both ends, key
//! confirmation), and one message through an established link (sealed with
//! ChaCha20-Poly1305, framed, opened and handed to the protocol) at three sizes. The
//! cryptography alone, per message: `aead_v2` (ChaCha20-Poly1305 seal and open, what v2
//! does) against `hmac_v1` (one HMAC-SHA256 to seal and one to check, what link v1 did,
//! with no encryption).
//!
//! `cargo bench -p hawser-core --bench link` (short warm-up and measurement: about 30 s).

use std::hint::black_box;
use std::time::Duration;

use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::AeadInOut;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use hawser_core::loopback;
use hawser_core::wire::WireError;
use hawser_core::{Addr, ConnId, Ctx, Instant, LinkConfig, Node, NodeId, Protocol, Transmit};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Counts what reaches it.
#[derive(Default)]
struct Sink(u64);

impl Protocol for Sink {
    type Timer = ();
    type Event = ();
    fn start(&mut self, _: &mut Ctx<'_, (), ()>) {}
    fn message(
        &mut self,
        _: NodeId,
        body: &[u8],
        _: &mut Ctx<'_, (), ()>,
    ) -> Result<(), WireError> {
        self.0 += body.len() as u64;
        Ok(())
    }
    fn timer(&mut self, _: (), _: &mut Ctx<'_, (), ()>) {}
}

fn node(id: u64) -> Node<Sink> {
    loopback::node(id, LinkConfig::default(), Sink::default())
}

/// Link `a` to `b` and return their connection ids.
fn handshake(a: &mut Node<Sink>, b: &mut Node<Sink>) -> (ConnId, ConnId) {
    let (ca, cb) = loopback::connect(a, b, Addr::new("n2").unwrap()).expect("a dials");
    loopback::pump(a, ca, b, cb, |_, _| {});
    assert!(a.links().is_linked(NodeId(2)));
    (ca, cb)
}

fn bench(c: &mut Criterion) {
    c.bench_function("link/handshake", |bench| {
        bench.iter_batched(
            || (node(1), node(2)),
            |(mut a, mut b)| black_box(handshake(&mut a, &mut b)),
            BatchSize::SmallInput,
        )
    });

    let mut g = c.benchmark_group("link/message");
    let (mut a, mut b) = (node(1), node(2));
    let (_, cb) = handshake(&mut a, &mut b);
    for size in [64usize, 1024, 64 << 10] {
        let body = vec![7u8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("{size}B"), |bench| {
            bench.iter(|| {
                a.command(Instant::ZERO, |_, ctx| ctx.send(NodeId(2), &body))
                    .unwrap();
                let Some(Transmit::Send { frame, .. }) = a.poll_transmit() else {
                    panic!("a sends")
                };
                b.handle_frame(Instant::ZERO, cb, &frame);
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("link/aead_v2");
    let aead = ChaCha20Poly1305::new(&[9u8; 32].into());
    for size in [64usize, 1024, 64 << 10] {
        let mut body = vec![7u8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("{size}B"), |bench| {
            bench.iter(|| {
                let nonce = [0u8; 12].into();
                let tag = aead
                    .encrypt_inout_detached(&nonce, &[], body.as_mut_slice().into())
                    .unwrap();
                aead.decrypt_inout_detached(&nonce, &[], body.as_mut_slice().into(), &tag)
                    .unwrap();
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("link/hmac_v1");
    let key = Hmac::<Sha256>::new_from_slice(&[9u8; 32]).unwrap();
    for size in [64usize, 1024, 64 << 10] {
        let body = vec![7u8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("{size}B"), |bench| {
            bench.iter(|| {
                for _ in 0..2 {
                    let mut mac = key.clone();
                    mac.update(&0u64.to_be_bytes());
                    mac.update(black_box(&body));
                    black_box(mac.finalize());
                }
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
        .without_plots();
    targets = bench
}
criterion_main!(benches);

//! Attachments: the blob-store contract ([`check_blob_store`], run on every [`BlobStore`] implementation) and the
//! attachment path through the commerce service on every adapter ([`check_attachments`]).

use super::commerce::Shop;
use super::model::{read_all, stream_of, FailingBlobStore, MemBlobStore};
use crate::actor::{Actor, Context};
use crate::commerce::{CommerceStore, CommerceStoreExt};
use crate::error::Error;
use crate::id::{AttachmentId, ContactId, LeadId, TenantId};
use crate::lead::NewLead;
use crate::request::NewRequest;
use crate::sales::{
    AttachedTo, AttachmentPolicy, BlobStore, ByteStream, ContentDigest, ContentHash, NewAttachment,
};
use crate::store::{PageRequest, Store, StoreExt, TimelineOf};
use futures_util::StreamExt;
use std::future::Future;
use std::sync::Arc;

/// A stream of `chunks` chunks of `size` bytes of text (lowercase letters in a pattern that differs per `seed`),
/// failing after `fail_after` chunks when given.
pub fn chunked(seed: u8, chunks: usize, size: usize, fail_after: Option<usize>) -> ByteStream {
    futures_util::stream::iter((0..chunks).map(move |i| {
        if fail_after.is_some_and(|n| i >= n) {
            return Err(std::io::Error::other("the upload was cut"));
        }
        Ok(bytes::Bytes::from(
            (0..size)
                .map(|j| b'a' + (j as u8).wrapping_mul(31).wrapping_add(seed ^ i as u8) % 26)
                .collect::<Vec<u8>>(),
        ))
    }))
    .boxed()
}

/// The hash and size of `stream`, read through.
async fn digest_of(mut stream: ByteStream) -> crate::sales::StoredBlob {
    let mut d = ContentDigest::new(u64::MAX);
    while let Some(chunk) = stream.next().await {
        d.update(&chunk.expect("a chunk")).expect("no limit");
    }
    d.finish()
}

fn invalid_on(field: &str, r: crate::Result<impl std::fmt::Debug>) {
    match r {
        Err(e) => assert_eq!(e.field(), Some(field), "{e}"),
        Ok(v) => panic!("accepted, expected an error on {field}: {v:?}"),
    }
}

/// The [`BlobStore`] contract: round trip, the same content stored once, tenant isolation, the limit, empty
/// content, a source failing midway, and a 20 MiB stream in 64 KiB chunks. `stored` counts what the store holds
/// (for a directory or an object store: every file or object under it, temporary ones included), so a refused or
/// failed write that left anything behind fails the check.
pub async fn check_blob_store<F, Fut>(blobs: Arc<dyn BlobStore>, stored: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = usize>,
{
    let (t1, t2) = (TenantId::new(), TenantId::new());
    let hello = &b"hello, attachments"[..];
    let start = stored().await;

    // Round trip, and the same bytes twice are stored once.
    let blob = blobs.put(t1, stream_of(hello), 1024).await.expect("put");
    assert_eq!((blob.hash, blob.size), (ContentHash::of(hello), 18));
    assert_eq!(stored().await, start + 1);
    let again = blobs
        .put(t1, chunked_copy(hello), 1024)
        .await
        .expect("put again");
    assert_eq!(again, blob);
    assert_eq!(stored().await, start + 1, "the same content is stored once");
    let back = read_all(blobs.get(t1, &blob.hash).await.expect("get")).await;
    assert_eq!(back.expect("read"), hello);
    assert!(blobs.contains(t1, &blob.hash).await.expect("contains"));

    // Another tenant neither reads nor learns of it; its own copy is its own.
    assert!(matches!(
        blobs.get(t2, &blob.hash).await.map(|_| ()),
        Err(Error::NotFound { .. })
    ));
    assert!(!blobs.contains(t2, &blob.hash).await.expect("contains"));
    let unknown = ContentHash::of(b"never stored");
    assert!(matches!(
        blobs.get(t1, &unknown).await.map(|_| ()),
        Err(Error::NotFound { .. })
    ));

    // Over the limit (exactly at it is fine), refused with nothing kept.
    invalid_on("content", blobs.put(t1, stream_of(&b"123456"[..]), 5).await);
    invalid_on(
        "content",
        blobs.put(t2, chunked(7, 20, 1024, None), 10_000).await,
    );
    assert_eq!(stored().await, start + 1, "a refused write keeps nothing");
    let five = blobs
        .put(t1, stream_of(&b"12345"[..]), 5)
        .await
        .expect("at the limit");
    assert_eq!(five.size, 5);

    // Empty content is a blob of its own (the service refuses empty files before storing).
    let empty = blobs.put(t1, stream_of(&b""[..]), 5).await.expect("empty");
    assert_eq!((empty.hash, empty.size), (ContentHash::of(b""), 0));
    assert!(read_all(blobs.get(t1, &empty.hash).await.expect("get"))
        .await
        .expect("read")
        .is_empty());
    let kept = stored().await;

    // A source failing midway keeps nothing.
    invalid_on(
        "content",
        blobs.put(t1, chunked(9, 8, 4096, Some(3)), 1 << 20).await,
    );
    assert_eq!(stored().await, kept, "a failed write keeps nothing");
    let partial = digest_of(chunked(9, 3, 4096, None)).await;
    assert!(!blobs.contains(t1, &partial.hash).await.expect("contains"));

    // 20 MiB in 64 KiB chunks round-trips.
    let big = blobs
        .put(t2, chunked(3, 320, 64 * 1024, None), 25 << 20)
        .await
        .expect("20 MiB");
    assert_eq!(big, digest_of(chunked(3, 320, 64 * 1024, None)).await);
    assert_eq!(big.size, 20 << 20);
    assert_eq!(
        digest_of(blobs.get(t2, &big.hash).await.expect("get")).await,
        big
    );
    assert_eq!(stored().await, kept + 1);
}

/// `bytes` in chunks of three bytes.
fn chunked_copy(bytes: &'static [u8]) -> ByteStream {
    futures_util::stream::iter(
        bytes
            .chunks(3)
            .map(|c| Ok(bytes::Bytes::from_static(c)))
            .collect::<Vec<_>>(),
    )
    .boxed()
}

fn new(target: AttachedTo, name: &str) -> NewAttachment {
    NewAttachment {
        target,
        name: name.into(),
        shared_with_partner: false,
    }
}

const PDF: &[u8] = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n";
/// The start of an ELF executable (its header is 64 bytes).
fn elf() -> ByteStream {
    let mut header = vec![0u8; 64];
    header[..7].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1]);
    stream_of(header)
}

/// Attachments through the service: attach, list and open on each kind of record; the same file twice is two
/// attachments and one blob; the tenant's limit, empty files, names and media types not allowed are refused
/// naming their field before anything is stored; a blob store failing mid-write leaves no metadata and no event;
/// another tenant's records and attachments read as not found; share and remove with a stale version conflict;
/// the portal sees only what is shared; the events are on the lead's and partner's timelines.
pub async fn check_attachments(store: &Arc<dyn Store>, commerce: &Arc<dyn CommerceStore>) {
    let shop = Shop::new(store, commerce).await;
    let blobs = Arc::new(MemBlobStore::new());
    let cs = shop.cs.clone().with_blob_store(blobs.clone());
    let (ctx, t) = (&shop.w.ctx, shop.w.tenant);
    let customer = shop.customer("Attach SRL").await;
    let lead = shop
        .w
        .crm
        .enter_lead(ctx, NewLead::for_partner(customer.id, "Files"))
        .await
        .expect("lead")
        .record;
    let request = shop
        .w
        .crm
        .open_request(
            ctx,
            NewRequest::on_lead(lead.id, "Send the drawings", shop.w.agent),
        )
        .await
        .expect("request")
        .record;
    let quotation = cs
        .create_quotation(ctx, super::commerce::quotation_for(&lead, "100"))
        .await
        .expect("quotation");
    let contract = super::sales::contract_from(&cs, ctx, &quotation).await;

    // Every kind of record takes a file; it lists and opens.
    let on_lead = AttachedTo::Lead(lead.id);
    let a = cs
        .attach(ctx, new(on_lead, "offer.pdf"), stream_of(PDF))
        .await
        .expect("attach");
    assert_eq!(
        (a.name(), a.media_type(), a.size(), a.sha256()),
        (
            "offer.pdf",
            "application/pdf",
            PDF.len() as u64,
            ContentHash::of(PDF)
        )
    );
    assert_eq!(
        (a.uploaded_by(), a.version(), a.target()),
        (&ctx.actor, 1, on_lead)
    );
    assert_eq!(commerce.attachment(t, a.id()).await.expect("read back"), a);
    let (meta, bytes) = cs.open_attachment(t, a.id()).await.expect("open");
    assert_eq!(meta, a);
    assert_eq!(read_all(bytes).await.expect("bytes"), PDF);
    for target in [
        AttachedTo::Partner(customer.id),
        AttachedTo::Request(request.id),
        AttachedTo::Quotation(quotation.id()),
        AttachedTo::Contract(contract.id()),
    ] {
        let x = cs
            .attach(ctx, new(target, "notes.txt"), chunked(1, 3, 100, None))
            .await
            .expect("attach");
        assert_eq!(x.media_type(), "text/plain");
        assert_eq!(cs.attachments_of(t, target).await.expect("list"), vec![x]);
    }

    // The same file twice: two attachments, one blob.
    let before = blobs.len();
    let twice = cs
        .attach(ctx, new(on_lead, "offer copy.pdf"), stream_of(PDF))
        .await
        .expect("attach again");
    assert_eq!(blobs.len(), before, "the same bytes are stored once");
    assert_eq!(twice.sha256(), a.sha256());
    let listed = cs.attachments_of(t, on_lead).await.expect("list");
    assert_eq!(listed, vec![a.clone(), twice.clone()], "oldest first");

    // Refused before anything is stored, naming the field; nothing written.
    let events = |t| async move {
        store
            .events_since(t, 0, 10_000)
            .await
            .expect("events")
            .len()
    };
    let (stored, logged) = (blobs.len(), events(t).await);
    let pdf_only = cs
        .clone()
        .with_tenant_attachment_policy(t, AttachmentPolicy::new(64, ["application/pdf"]));
    invalid_on(
        "media_type",
        pdf_only.attach(ctx, new(on_lead, "run.pdf"), elf()).await,
    );
    invalid_on(
        "media_type",
        pdf_only
            .attach(ctx, new(on_lead, "a.txt"), stream_of(&b"text"[..]))
            .await,
    );
    invalid_on(
        "content",
        pdf_only
            .attach(ctx, new(on_lead, "big.pdf"), chunked_pdf(2, 64))
            .await,
    );
    invalid_on(
        "content",
        cs.attach(ctx, new(on_lead, "empty.pdf"), stream_of(&b""[..]))
            .await,
    );
    invalid_on(
        "content",
        cs.attach(ctx, new(on_lead, "cut.txt"), chunked(2, 4, 4096, Some(3)))
            .await,
    );
    for bad in [
        "",
        "../etc/passwd",
        "a\\b.pdf",
        "tab\u{1}.pdf",
        &"x".repeat(256),
    ] {
        invalid_on(
            "name",
            cs.attach(ctx, new(on_lead, bad), stream_of(PDF)).await,
        );
    }
    // A blob store failing mid-write: an error, no metadata, no event.
    let failing = cs
        .clone()
        .with_blob_store(Arc::new(FailingBlobStore::new(blobs.clone(), 5000)));
    let failed = failing
        .attach(ctx, new(on_lead, "half.txt"), chunked(4, 4, 4096, None))
        .await;
    assert!(matches!(failed, Err(Error::Storage { .. })), "{failed:?}");
    assert_eq!(blobs.len(), stored, "no bytes kept");
    assert_eq!(events(t).await, logged, "no event");
    assert_eq!(
        cs.attachments_of(t, on_lead).await.expect("list").len(),
        2,
        "no metadata"
    );
    // No blob store at all.
    let without = crate::service::CommerceService::new(
        shop.w.crm.clone(),
        commerce.clone(),
        shop.cs.reporting(),
    );
    let none = without
        .attach(ctx, new(on_lead, "x.pdf"), stream_of(PDF))
        .await;
    assert!(matches!(none, Err(Error::Storage { .. })), "{none:?}");

    // Another tenant's records and attachments are not found.
    let other = Shop::new(store, commerce).await;
    let ocs = other.cs.clone().with_blob_store(blobs.clone());
    let octx = &other.w.ctx;
    for target in [on_lead, AttachedTo::Lead(LeadId::new())] {
        let r = ocs.attach(octx, new(target, "x.pdf"), stream_of(PDF)).await;
        assert!(matches!(r, Err(Error::NotFound { .. })), "{r:?}");
    }
    for r in [
        ocs.attachment(other.w.tenant, a.id()).await.map(|_| ()),
        ocs.open_attachment(other.w.tenant, a.id())
            .await
            .map(|_| ()),
        ocs.share_attachment(octx, a.id(), 1, true)
            .await
            .map(|_| ()),
        ocs.remove_attachment(octx, a.id(), 1).await.map(|_| ()),
        cs.attachment(t, AttachmentId::new()).await.map(|_| ()),
    ] {
        assert!(matches!(r, Err(Error::NotFound { .. })), "{r:?}");
    }
    assert!(ocs
        .attachments_of(other.w.tenant, on_lead)
        .await
        .expect("list")
        .is_empty());

    // The portal sees what is shared, on its own partner's records only; stale versions conflict.
    let portal = Context {
        actor: Actor::PartnerRepresentative {
            partner: customer.id,
            contact: ContactId::new(),
        },
        ..ctx.clone()
    };
    assert!(cs
        .visible_attachments(&portal, on_lead)
        .await
        .expect("portal")
        .is_empty());
    let hidden = cs
        .open_visible_attachment(&portal, a.id())
        .await
        .map(|_| ());
    assert!(matches!(hidden, Err(Error::NotFound { .. })), "{hidden:?}");
    let shared = cs
        .share_attachment(ctx, a.id(), 1, true)
        .await
        .expect("share");
    assert_eq!((shared.version(), shared.shared_with_partner()), (2, true));
    assert_eq!(
        cs.visible_attachments(&portal, on_lead)
            .await
            .expect("portal"),
        vec![shared.clone()]
    );
    assert!(cs.open_visible_attachment(&portal, a.id()).await.is_ok());
    let stranger = Context {
        actor: Actor::PartnerRepresentative {
            partner: crate::id::PartnerId::new(),
            contact: ContactId::new(),
        },
        ..ctx.clone()
    };
    let r = cs.visible_attachments(&stranger, on_lead).await;
    assert!(matches!(r, Err(Error::NotFound { .. })), "{r:?}");
    let stale = cs.share_attachment(ctx, a.id(), 1, false).await;
    assert!(matches!(stale, Err(Error::Conflict { .. })), "{stale:?}");
    let stale = cs.remove_attachment(ctx, a.id(), 1).await;
    assert!(matches!(stale, Err(Error::Conflict { .. })), "{stale:?}");
    let removed = cs.remove_attachment(ctx, a.id(), 2).await.expect("remove");
    assert!(removed.removed_at().is_some());
    assert_eq!(
        cs.attachments_of(t, on_lead).await.expect("list"),
        vec![twice.clone()]
    );
    assert_eq!(
        commerce
            .attachments_of(t, on_lead)
            .await
            .expect("all")
            .len(),
        2,
        "kept as removed"
    );
    let gone = cs.open_attachment(t, a.id()).await.map(|_| ());
    assert!(matches!(gone, Err(Error::NotFound { .. })), "{gone:?}");
    // The blob stays: the copy still opens.
    let (_, bytes) = cs
        .open_attachment(t, twice.id())
        .await
        .expect("the copy opens");
    assert_eq!(read_all(bytes).await.expect("bytes"), PDF);

    // On the lead's and the partner's timelines; no bytes in any event.
    let page = PageRequest {
        limit: 200,
        ..Default::default()
    };
    for of in [TimelineOf::Lead(lead.id), TimelineOf::Partner(customer.id)] {
        let names: Vec<&str> = shop
            .w
            .crm
            .timeline(t, of, &page)
            .await
            .expect("timeline")
            .items
            .iter()
            .map(|e| e.kind.name())
            .collect();
        for want in [
            "attachment_added",
            "attachment_shared",
            "attachment_removed",
        ] {
            assert!(names.contains(&want), "{of:?}: {want} not in {names:?}");
        }
    }
    let log = shop.w.crm.events_since(t, 0, 10_000).await.expect("events");
    let json = serde_json::to_string(&log).expect("json");
    assert!(!json.contains("%PDF"), "bytes never go into events");
    assert!(store.lead(t, lead.id).await.is_ok());
}

/// A stream that starts like a PDF, `chunks` chunks of `size` bytes.
fn chunked_pdf(chunks: usize, size: usize) -> ByteStream {
    let head = futures_util::stream::iter([Ok(bytes::Bytes::from_static(PDF))]);
    head.chain(chunked(5, chunks, size, None)).boxed()
}

//! Attachments through the facade: an SQLite file keeps its files in the directory beside it (`<file>.files`),
//! streamed in and out, found again when the engine is opened anew; the lead's timeline shows the file.

use crm::id::{TenantId, UserId};
use crm::sales::{AttachedTo, ByteStream, NewAttachment};
use crm::{Context, Crm, LeadPartner, NewLead, NewPartner, PageRequest, TimelineOf};
use futures::StreamExt;

/// 3 MiB of text in 64 KiB chunks.
fn report() -> ByteStream {
    futures::stream::iter((0..48u8).map(|i| Ok(bytes::Bytes::from(vec![b'a' + i % 26; 64 * 1024]))))
        .boxed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqlite_file_keeps_its_attachments_beside_it() {
    let temp = tempfile::tempdir().expect("a directory");
    let dir = temp.path();
    let path = dir.join("crm.sqlite");
    let ctx = Context::user(TenantId::new(), UserId::new());
    let (lead, attachment) = {
        let crm = Crm::builder()
            .sqlite_path(&path)
            .build()
            .await
            .expect("open");
        crm.leads().setup_tenant(&ctx).await.expect("tenant");
        let partner = LeadPartner::New {
            partner: NewPartner::company("Acme SRL"),
        };
        let lead = crm
            .leads()
            .enter_lead(&ctx, NewLead::new(partner, "Forklifts"))
            .await
            .expect("lead")
            .record;
        let file = NewAttachment {
            target: AttachedTo::Lead(lead.id()),
            name: "site report.txt".into(),
            shared_with_partner: false,
        };
        let a = crm
            .commerce()
            .attach(&ctx, file, report())
            .await
            .expect("attach");
        assert_eq!((a.media_type(), a.size()), ("text/plain", 3 << 20));
        (lead, a)
    };
    let files = dir.join("crm.sqlite.files").join(ctx.tenant.to_string());
    assert!(files.is_dir(), "the bytes are beside the database file");

    let crm = Crm::builder()
        .sqlite_path(&path)
        .build()
        .await
        .expect("reopen");
    let (meta, mut bytes) = crm
        .commerce()
        .open_attachment(ctx.tenant, attachment.id())
        .await
        .expect("open");
    assert_eq!(meta, attachment);
    let (mut size, mut chunks) = (0, 0);
    while let Some(chunk) = bytes.next().await {
        size += chunk.expect("a chunk").len();
        chunks += 1;
    }
    assert_eq!(size, 3 << 20);
    assert!(chunks > 1, "streamed back in chunks");
    let timeline = crm
        .leads()
        .timeline(
            ctx.tenant,
            TimelineOf::Lead(lead.id()),
            &PageRequest::default(),
        )
        .await
        .expect("timeline");
    assert!(timeline
        .items
        .iter()
        .any(|e| e.kind.name() == "attachment_added"));
    drop(crm);
}

//! Attachments through the commerce service: sniff the first bytes → stream them to the blob store → the metadata
//! and its activity entry in one change set, through the same commit path (and hooks) as every commerce write.
//!
//! Nothing is stored before the name, the target and the media type are checked, and no metadata is written unless
//! the blob store kept the bytes. When the commit fails after the bytes were stored, they stay as an orphan: harmless
//! (content-addressed, so a later upload of the same file reuses them) and never visible without metadata.

use super::CommerceService;
use crate::actor::{Actor, Context};
use crate::commerce::{CommerceStoreExt, CommerceWrite};
use crate::error::{Error, Result};
use crate::event::{EventKind, Subject};
use crate::id::{AttachmentId, TenantId};
use crate::sales::attachment::{empty, source_failed, SNIFF_BYTES};
use crate::sales::{
    sniff, AttachedTo, Attachment, AttachmentPolicy, BlobStore, ByteStream, NewAttachment,
};
use crate::service::{check_version, lead_subject, request_subject};
use crate::store::StoreExt;
use crate::StorageErrorKind;
use futures_util::StreamExt;
use std::sync::Arc;

/// Reads up to [`SNIFF_BYTES`] (or the first chunk, when larger) from the front of `content`.
async fn peek(content: &mut ByteStream) -> Result<Vec<u8>> {
    let mut head = Vec::new();
    while head.len() < SNIFF_BYTES {
        match content.next().await {
            Some(chunk) => head.extend_from_slice(&chunk.map_err(|e| source_failed(&e))?),
            None => break,
        }
    }
    Ok(head)
}

impl CommerceService {
    /// Keeps the bytes of attachments in `blobs` (without one, [`CommerceService::attach`] is refused).
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (commerce, ctx) = crm_core::conformance::model::example_sales().await?;
    /// use crm_core::conformance::model::MemBlobStore;
    /// assert!(commerce.blob_store().is_none());
    /// let commerce = commerce.with_blob_store(Arc::new(MemBlobStore::new()));
    /// assert!(commerce.blob_store().is_some());
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    pub fn with_blob_store(mut self, blobs: Arc<dyn BlobStore>) -> Self {
        self.blobs = Some(blobs);
        self
    }

    /// The blob store attachments are kept in, if any.
    ///
    /// # Examples
    ///
    /// See [`CommerceService::with_blob_store`].
    pub fn blob_store(&self) -> Option<&Arc<dyn BlobStore>> {
        self.blobs.as_ref()
    }

    /// Every tenant's attachments follow `policy` (the default is [`AttachmentPolicy::default`]: 25 MiB, PDF,
    /// images, office documents, zip, text and CSV).
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (commerce, ctx) = crm_core::conformance::model::example_sales().await?;
    /// use crm_core::sales::AttachmentPolicy;
    /// let pdf_only = AttachmentPolicy::new(1 << 20, ["application/pdf"]);
    /// let commerce = commerce.with_attachment_policy(pdf_only.clone());
    /// assert_eq!(commerce.attachment_policy(ctx.tenant), &pdf_only);
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    pub fn with_attachment_policy(mut self, policy: AttachmentPolicy) -> Self {
        Arc::make_mut(&mut self.attachment_policies).default = policy;
        self
    }

    /// `tenant`'s attachments follow `policy`, whatever the default.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (commerce, ctx) = crm_core::conformance::model::example_sales().await?;
    /// use crm_core::sales::AttachmentPolicy;
    /// let small = AttachmentPolicy { max_bytes: 1024, ..AttachmentPolicy::default() };
    /// let commerce = commerce.with_tenant_attachment_policy(ctx.tenant, small);
    /// assert_eq!(commerce.attachment_policy(ctx.tenant).max_bytes, 1024);
    /// assert_eq!(commerce.attachment_policy(TenantId::new()).max_bytes, 25 << 20);
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    pub fn with_tenant_attachment_policy(
        mut self,
        tenant: TenantId,
        policy: AttachmentPolicy,
    ) -> Self {
        Arc::make_mut(&mut self.attachment_policies)
            .tenants
            .insert(tenant, policy);
        self
    }

    /// The policy `tenant`'s attachments follow.
    ///
    /// # Examples
    ///
    /// See [`CommerceService::with_tenant_attachment_policy`].
    pub fn attachment_policy(&self, tenant: TenantId) -> &AttachmentPolicy {
        self.attachment_policies.get(tenant)
    }

    fn blobs(&self) -> Result<&Arc<dyn BlobStore>> {
        self.blobs.as_ref().ok_or_else(|| {
            Error::storage(
                StorageErrorKind::Config,
                "no blob store is configured for attachments (CommerceService::with_blob_store)",
            )
        })
    }

    /// The subject of the events about `target` (its partner, lead and request), reading it in `tenant`; a
    /// partner's representative finds only their partner's records.
    async fn target_subject(&self, ctx: &Context, target: AttachedTo) -> Result<Subject> {
        let (store, t) = (self.crm.store(), ctx.tenant);
        let subject = match target {
            AttachedTo::Lead(id) => lead_subject(&store.lead(t, id).await?),
            AttachedTo::Request(id) => request_subject(&store.request(t, id).await?),
            AttachedTo::Partner(id) => Subject {
                partner: Some(store.partner(t, id).await?.id),
                ..Subject::default()
            },
            AttachedTo::Quotation(id) => super::sales::subject(&self.store.quotation(t, id).await?),
            AttachedTo::Contract(id) => {
                super::sales::contract_subject(&self.store.contract(t, id).await?)
            }
        };
        match &ctx.actor {
            Actor::PartnerRepresentative { partner, .. } if subject.partner != Some(*partner) => {
                Err(Error::not_found("record", target.uuid()))
            }
            _ => Ok(subject),
        }
    }

    /// Attaches a file to a lead, partner, request, quotation or contract of the tenant: checks the name and the
    /// target, sniffs the media type from the first bytes and checks it (and that the file is not empty) against
    /// the tenant's [`AttachmentPolicy`] before storing anything, streams the bytes to the blob store (refused
    /// past the tenant's limit), then commits the metadata with an `attachment_added` event (on the timelines of
    /// the record, its lead and its partner) in one change set. The same file twice is two attachments and one
    /// blob.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (commerce, ctx) = crm_core::conformance::model::example_sales().await?;
    /// use crm_core::conformance::model::{read_all, stream_of, MemBlobStore};
    /// use crm_core::partner::NewPartner;
    /// use crm_core::sales::{AttachedTo, NewAttachment};
    /// let commerce = commerce.with_blob_store(Arc::new(MemBlobStore::new()));
    /// let acme = commerce.crm().create_partner(&ctx, NewPartner::company("Acme SRL")).await?.record;
    /// let new = NewAttachment { target: AttachedTo::Partner(acme.id()), name: "offer.pdf".into(), shared_with_partner: false };
    /// let a = commerce.attach(&ctx, new.clone(), stream_of(&b"%PDF-1.7\n%%EOF\n"[..])).await?;
    /// assert_eq!((a.media_type(), a.size()), ("application/pdf", 15));
    /// let (_, bytes) = commerce.open_attachment(ctx.tenant, a.id()).await?;
    /// assert_eq!(read_all(bytes).await?, b"%PDF-1.7\n%%EOF\n");
    /// let empty = commerce.attach(&ctx, new, stream_of(&b""[..])).await.unwrap_err();
    /// assert_eq!(empty.field(), Some("content"));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `name` (empty, longer than 255 characters, a path separator or a control character),
    /// on `content` (empty, larger than the tenant's limit, or the stream failed), on `media_type` (not allowed);
    /// [`Error::NotFound`] when the target is not the tenant's (or, for a partner's representative, not their
    /// partner's); [`Error::Storage`] of kind `Config` without a blob store, and when the blob store or the store
    /// fails (no metadata is then written); whatever a [`CommitHook`](crate::service::CommitHook) returns.
    pub async fn attach(
        &self,
        ctx: &Context,
        mut input: NewAttachment,
        mut content: ByteStream,
    ) -> Result<Attachment> {
        let blobs = self.blobs()?;
        if let AttachedTo::Lead(lead) = input.target {
            // A merged lead's id names its survivor.
            input.target = AttachedTo::Lead(self.crm.lead_for_new(ctx.tenant, lead).await);
        }
        let name = crate::sales::file_name(&input.name)?;
        let subject = self.target_subject(ctx, input.target).await?;
        let policy = self.attachment_policy(ctx.tenant);
        let head = peek(&mut content).await?;
        if head.is_empty() {
            return Err(empty());
        }
        let media_type = sniff(&head, &name);
        policy.check(&media_type)?;
        let first = futures_util::stream::iter([Ok(bytes::Bytes::from(head))]);
        let blob = blobs
            .put(ctx.tenant, first.chain(content).boxed(), policy.max_bytes)
            .await?;
        let now = self.crm.clock().now();
        let a = NewAttachment { name, ..input }.record(
            ctx,
            AttachmentId::new(),
            blob,
            &media_type,
            policy,
            now,
        )?;
        let event = EventKind::AttachmentAdded {
            attachment: a.id(),
            name: a.name().to_string(),
            media_type,
            size: a.size(),
        };
        let write = CommerceWrite::InsertAttachment(a.clone());
        self.commit_one(ctx, now, subject, write, event).await?;
        Ok(a)
    }

    /// An attachment's metadata, removed ones too (see [`Attachment::removed_at`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (commerce, ctx) = crm_core::conformance::model::example_sales().await?;
    /// let missing = commerce.attachment(ctx.tenant, AttachmentId::new()).await.unwrap_err();
    /// assert!(matches!(missing, Error::NotFound { entity: "attachment", .. }));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the tenant has no attachment with this id; [`Error::Storage`] when the store cannot
    /// be read.
    pub async fn attachment(&self, tenant: TenantId, id: AttachmentId) -> Result<Attachment> {
        self.store.attachment(tenant, id).await
    }

    /// The attachments of a record (not removed), oldest first.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (commerce, ctx) = crm_core::conformance::model::example_sales().await?;
    /// use crm_core::sales::AttachedTo;
    /// let none = commerce.attachments_of(ctx.tenant, AttachedTo::Lead(LeadId::new())).await?;
    /// assert!(none.is_empty());
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] when the store cannot be read.
    pub async fn attachments_of(
        &self,
        tenant: TenantId,
        target: AttachedTo,
    ) -> Result<Vec<Attachment>> {
        let mut all = self.store.attachments_of(tenant, target).await?;
        all.retain(|a| !a.is_removed());
        Ok(all)
    }

    /// The attachments of a record that the context's actor may see, oldest first: all of them (not removed) for
    /// the tenant's side; for a partner's representative (the portal), only those shared with the partner, on
    /// their partner's records.
    ///
    /// # Examples
    ///
    /// See [`CommerceService::share_attachment`].
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the record is not the tenant's (or, for a representative, not their partner's);
    /// [`Error::Storage`] when the store cannot be read.
    pub async fn visible_attachments(
        &self,
        ctx: &Context,
        target: AttachedTo,
    ) -> Result<Vec<Attachment>> {
        let subject = self.target_subject(ctx, target).await?;
        let mut all = self.attachments_of(ctx.tenant, target).await?;
        all.retain(|a| a.visible_to(&ctx.actor, subject.partner));
        Ok(all)
    }

    /// An attachment (not removed) and its bytes, streamed from the blob store.
    ///
    /// # Examples
    ///
    /// See [`CommerceService::attach`].
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the tenant has no such attachment, it was removed, or its bytes are missing from
    /// the blob store; [`Error::Storage`] when a store cannot be read (of kind `Config` without a blob store).
    pub async fn open_attachment(
        &self,
        tenant: TenantId,
        id: AttachmentId,
    ) -> Result<(Attachment, ByteStream)> {
        let blobs = self.blobs()?;
        let a = self.store.attachment(tenant, id).await?;
        if a.is_removed() {
            return Err(Error::not_found("attachment", id));
        }
        let bytes = blobs.get(tenant, &a.sha256()).await?;
        Ok((a, bytes))
    }

    /// Loads an attachment the context's actor may see (a representative only a shared one of their partner's),
    /// with the subject of its events.
    async fn visible(&self, ctx: &Context, id: AttachmentId) -> Result<(Attachment, Subject)> {
        let a = self.store.attachment(ctx.tenant, id).await?;
        let subject = self.target_subject(ctx, a.target()).await?;
        if !a.visible_to(&ctx.actor, subject.partner) {
            return Err(Error::not_found("attachment", id));
        }
        Ok((a, subject))
    }

    /// [`CommerceService::open_attachment`] as the context's actor sees it: in the portal (a partner's
    /// representative), only an attachment shared with their partner opens.
    ///
    /// # Examples
    ///
    /// See [`CommerceService::share_attachment`].
    ///
    /// # Errors
    ///
    /// As [`CommerceService::open_attachment`]; [`Error::NotFound`] too for an attachment the actor may not see.
    pub async fn open_visible_attachment(
        &self,
        ctx: &Context,
        id: AttachmentId,
    ) -> Result<(Attachment, ByteStream)> {
        let (a, _) = self.visible(ctx, id).await?;
        self.open_attachment(ctx.tenant, a.id()).await
    }

    /// Shares an attachment whose stored version is `expected_version` with the partner (they see it in the
    /// portal), or stops sharing it, with an `attachment_shared` event.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (commerce, ctx) = crm_core::conformance::model::example_sales().await?;
    /// use crm_core::actor::Actor;
    /// use crm_core::conformance::model::{stream_of, MemBlobStore};
    /// use crm_core::partner::NewPartner;
    /// use crm_core::sales::{AttachedTo, NewAttachment};
    /// let commerce = commerce.with_blob_store(Arc::new(MemBlobStore::new()));
    /// let acme = commerce.crm().create_partner(&ctx, NewPartner::company("Acme SRL")).await?.record;
    /// let target = AttachedTo::Partner(acme.id());
    /// let new = NewAttachment { target, name: "terms.txt".into(), shared_with_partner: false };
    /// let a = commerce.attach(&ctx, new, stream_of(&b"Payment in 30 days."[..])).await?;
    /// let portal = Context { actor: Actor::PartnerRepresentative { partner: acme.id(), contact: ContactId::new() }, ..ctx.clone() };
    /// assert!(commerce.visible_attachments(&portal, target).await?.is_empty());
    /// let shared = commerce.share_attachment(&ctx, a.id(), 1, true).await?;
    /// assert_eq!(commerce.visible_attachments(&portal, target).await?, vec![shared.clone()]);
    /// assert!(commerce.open_visible_attachment(&portal, a.id()).await.is_ok());
    /// let stale = commerce.share_attachment(&ctx, a.id(), 1, false).await.unwrap_err();
    /// assert!(matches!(stale, Error::Conflict { .. }));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the tenant has no such attachment (or it was removed, or a representative may not
    /// see it); [`Error::Conflict`] when `expected_version` is not the stored one; [`Error::Storage`] when the
    /// store cannot be read or the change cannot be committed; whatever a
    /// [`CommitHook`](crate::service::CommitHook) returns.
    pub async fn share_attachment(
        &self,
        ctx: &Context,
        id: AttachmentId,
        expected_version: u64,
        shared: bool,
    ) -> Result<Attachment> {
        self.update_attachment(ctx, id, expected_version, |a, now| {
            let next = a.share(shared, now)?;
            let name = next.name().to_string();
            let event = EventKind::AttachmentShared {
                attachment: id,
                name,
                shared,
            };
            Ok((next, event))
        })
        .await
    }

    /// Removes an attachment whose stored version is `expected_version`, with an `attachment_removed` event: it no
    /// longer lists or opens; its metadata stays (as removed) and its bytes stay in the blob store, which another
    /// attachment of the same file may share.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (commerce, ctx) = crm_core::conformance::model::example_sales().await?;
    /// use crm_core::conformance::model::{stream_of, MemBlobStore};
    /// use crm_core::partner::NewPartner;
    /// use crm_core::sales::{AttachedTo, NewAttachment};
    /// let commerce = commerce.with_blob_store(Arc::new(MemBlobStore::new()));
    /// let acme = commerce.crm().create_partner(&ctx, NewPartner::company("Acme SRL")).await?.record;
    /// let target = AttachedTo::Partner(acme.id());
    /// let new = NewAttachment { target, name: "old.txt".into(), shared_with_partner: false };
    /// let a = commerce.attach(&ctx, new, stream_of(&b"outdated"[..])).await?;
    /// let removed = commerce.remove_attachment(&ctx, a.id(), 1).await?;
    /// assert!(removed.removed_at().is_some());
    /// assert!(commerce.attachments_of(ctx.tenant, target).await?.is_empty());
    /// assert!(matches!(commerce.open_attachment(ctx.tenant, a.id()).await, Err(Error::NotFound { .. })));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the tenant has no such attachment (or it was removed already, or a representative
    /// may not see it); [`Error::Conflict`] when `expected_version` is not the stored one; [`Error::Storage`] when
    /// the store cannot be read or the change cannot be committed; whatever a
    /// [`CommitHook`](crate::service::CommitHook) returns.
    pub async fn remove_attachment(
        &self,
        ctx: &Context,
        id: AttachmentId,
        expected_version: u64,
    ) -> Result<Attachment> {
        self.update_attachment(ctx, id, expected_version, |a, now| {
            let next = a.remove(now)?;
            let name = next.name().to_string();
            Ok((
                next,
                EventKind::AttachmentRemoved {
                    attachment: id,
                    name,
                },
            ))
        })
        .await
    }

    /// Changes an attachment the caller sees, whose stored version is `expected_version`: `change` gives the next
    /// state and its event, committed in one change about the attachment's record.
    async fn update_attachment(
        &self,
        ctx: &Context,
        id: AttachmentId,
        expected_version: u64,
        change: impl FnOnce(&Attachment, crate::time::Timestamp) -> Result<(Attachment, EventKind)>,
    ) -> Result<Attachment> {
        let (a, subject) = self.visible(ctx, id).await?;
        check_version("attachment", id, expected_version, a.version())?;
        let now = self.crm.clock().now();
        let (next, event) = change(&a, now)?;
        let write = CommerceWrite::UpdateAttachment {
            attachment: next.clone(),
            expected_version,
        };
        self.commit_one(ctx, now, subject, write, event).await?;
        Ok(next)
    }
}

impl CommerceService {
    /// A user sends an e-mail from a lead, partner or request ([`CrmService::send_email`](crate::service::CrmService::send_email))
    /// carrying stored attachments besides the files `mail` already holds: each is read from the blob store whole
    /// (the e-mail rides in the outbox row, so all its files together stay within
    /// [`MAX_MAIL_BYTES`](crate::contact::MAX_MAIL_BYTES)) and goes out under its name and media type.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (commerce, ctx) = crm_core::conformance::model::example_sales().await?;
    /// use crm_core::conformance::model::{stream_of, MemBlobStore};
    /// use crm_core::contact::UserEmail;
    /// use crm_core::event::CommentTarget;
    /// use crm_core::partner::NewPartner;
    /// use crm_core::sales::{AttachedTo, NewAttachment};
    /// let commerce = commerce.with_blob_store(Arc::new(MemBlobStore::new()));
    /// let acme = commerce.crm().create_partner(&ctx, NewPartner::company("Acme SRL")).await?.record;
    /// let new = NewAttachment { target: AttachedTo::Partner(acme.id()), name: "terms.txt".into(), shared_with_partner: false };
    /// let terms = commerce.attach(&ctx, new, stream_of(&b"Payment in 30 days."[..])).await?;
    /// let mail = UserEmail::new("office@acme.ro", "follow_up");
    /// let sent = commerce.send_email_with_attachments(&ctx, CommentTarget::Partner(acme.id()), mail, &[terms.id()]).await?;
    /// assert_eq!(sent.record.payload.vars["attachments"][0]["name"], "terms.txt");
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when an attachment is not the tenant's or was removed; [`Error::Invalid`] on
    /// `attachments` when the files together pass the limit, and as [`CrmService::send_email`](crate::service::CrmService::send_email);
    /// [`Error::Storage`] when there is no blob store, or the bytes or the store cannot be read, or the change cannot
    /// be committed (then no e-mail).
    pub async fn send_email_with_attachments(
        &self,
        ctx: &Context,
        about: crate::event::CommentTarget,
        mut mail: crate::contact::UserEmail,
        stored: &[AttachmentId],
    ) -> Result<crate::service::Outcome<crate::comms::OutboxMessage>> {
        let limit = crate::contact::MAX_MAIL_BYTES;
        let mut total: usize = mail.attachments.iter().map(|f| f.bytes.len()).sum();
        for id in stored {
            let (a, mut content) = self.open_attachment(ctx.tenant, *id).await?;
            let mut bytes = Vec::new();
            while let Some(chunk) = content.next().await {
                let chunk = chunk.map_err(|e| {
                    Error::storage(
                        StorageErrorKind::Unavailable,
                        format!("attachment {id} could not be read: {e}"),
                    )
                })?;
                total = total.saturating_add(chunk.len());
                if total > limit {
                    return Err(Error::invalid(
                        "attachments",
                        format!("the files together pass {limit} bytes (at `{}`)", a.name()),
                    ));
                }
                bytes.extend_from_slice(&chunk);
            }
            mail = mail.attach(crate::contact::MailFile::new(
                a.name(),
                a.media_type(),
                bytes,
            ));
        }
        self.crm.send_email(ctx, about, mail).await
    }
}

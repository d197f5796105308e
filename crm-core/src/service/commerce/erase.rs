//! Erasure of a natural-person partner on the commerce side: their open items refuse it, their files go with them.

use super::CommerceService;
use crate::actor::Context;
use crate::commerce::{CommerceStore, CommerceStoreExt, CommerceWrite};
use crate::error::{Error, Result};
use crate::id::PartnerId;
use crate::merge::{Link, LinkKind};
use crate::sales::{AttachedTo, Attachment};
use crate::service::Erased;
use crate::store::{Key, Record, Store, Write};

impl CommerceService {
    /// Erases a partner who is a natural person (GDPR art. 17), with every contact it has: as
    /// [`CrmService::erase_contact`](crate::service::CrmService::erase_contact) does for one contact, and the
    /// partner's own name (the pseudonym), tax id, web site, streets and postal codes. Its files are removed and
    /// their bytes deleted from the blob store (after the change commits: a failure there is reported and the
    /// erasure of the records stands). Its documents keep their numbers and amounts, its host code and its city,
    /// region and country (the reports' dimensions), so every total and balance stays as it was; the name they
    /// show is the pseudonym.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (commerce, ctx) = crm_core::conformance::model::example_sales().await?;
    /// use crm_core::partner::NewPartner;
    /// let crm = commerce.crm();
    /// let ana = crm.create_partner(&ctx, NewPartner::person("Ana Mureșan")).await?.record;
    /// let erased = commerce.erase_partner(&ctx, ana.id()).await?;
    /// assert_eq!(erased.partner.name(), erased.pseudonym);
    /// assert_eq!(crm.partner(ctx.tenant, ana.id()).await?.name(), erased.pseudonym);
    /// let acme = crm.create_partner(&ctx, NewPartner::company("Acme SRL")).await?.record;
    /// assert_eq!(commerce.erase_partner(&ctx, acme.id()).await.unwrap_err().field(), Some("partner"));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the partner is not the tenant's; [`Error::Invalid`] on `partner` for a company, for
    /// one erased already, or for a partner with open items (documents not fully paid: the law keeps the debt and
    /// its debtor); [`Error::Conflict`] when the partner changed meanwhile; [`Error::Storage`] when the store cannot
    /// be read or written (nothing is then erased) or the blob store cannot delete a file.
    pub async fn erase_partner(&self, ctx: &Context, partner: PartnerId) -> Result<Erased> {
        let current = self.crm.partner(ctx.tenant, partner).await?;
        crate::service::erase::check_person(&current)?;
        let today = self.crm.clock().now().date_naive();
        let open = self.store.open_items(ctx.tenant, current.id, today).await?;
        if !open.is_empty() {
            return Err(Error::invalid(
                "partner",
                format!(
                    "{} open item(s): a partner who owes or is owed cannot be erased until they are settled",
                    open.len()
                ),
            ));
        }
        let files = self.files_of(ctx, current.id).await?;
        let now = self.crm.clock().now();
        let mut removals = Vec::new();
        for a in &files {
            removals.push(Write::Commerce(CommerceWrite::UpdateAttachment {
                attachment: a.remove(now)?,
                expected_version: a.version(),
            }));
        }
        let erased = self.crm.erase_person(ctx, current, removals).await?;
        if let Some(blobs) = &self.blobs {
            for a in &files {
                blobs.delete(ctx.tenant, &a.sha256()).await?;
            }
        }
        Ok(erased)
    }

    /// The files (not removed) attached to the partner or to its leads, requests, quotations and contracts.
    async fn files_of(&self, ctx: &Context, partner: PartnerId) -> Result<Vec<Attachment>> {
        let store: &dyn Store = self.crm.store().as_ref();
        let mut files = Vec::new();
        for r in store.fetch(ctx.tenant, &Key::PartnerLinks(partner)).await? {
            let Record::Link(Link { kind, id, .. }) = r else {
                continue;
            };
            let target = match kind {
                LinkKind::Lead => AttachedTo::Lead(crate::id::LeadId::from_uuid(id)),
                LinkKind::Request => AttachedTo::Request(crate::id::RequestId::from_uuid(id)),
                LinkKind::Quotation => AttachedTo::Quotation(crate::id::QuotationId::from_uuid(id)),
                LinkKind::Contract => AttachedTo::Contract(crate::id::ContractId::from_uuid(id)),
                LinkKind::Attachment => {
                    let a = self
                        .store
                        .attachment(ctx.tenant, crate::id::AttachmentId::from_uuid(id))
                        .await?;
                    if !a.is_removed() {
                        files.push(a);
                    }
                    continue;
                }
                _ => continue,
            };
            let mut of = self.store.attachments_of(ctx.tenant, target).await?;
            of.retain(|a| !a.is_removed());
            files.extend(of);
        }
        Ok(files)
    }
}

//! Commit hooks see every change set before it commits, with the records the change concerns but does not write,
//! and a refusing hook leaves nothing written.

use crm::id::{TenantId, UserId};
use crm::service::Loaded;
use crm::store::ChangeSet;
use crm::{
    CommitHook, Context, Crm, Error, LeadCommand, NewLead, NewPartner, PageRequest, TimelineOf,
};
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
struct Recorder {
    seen: Mutex<Vec<(usize, Vec<String>)>>,
    refuse_wins: bool,
}

impl CommitHook for Recorder {
    fn before_commit(
        &self,
        _: &Context,
        changes: &mut ChangeSet,
        loaded: &Loaded,
    ) -> crm::Result<()> {
        let names = loaded
            .partners
            .iter()
            .map(|p| p.name().to_owned())
            .collect();
        self.seen
            .lock()
            .unwrap()
            .push((changes.writes().len(), names));
        if self.refuse_wins && changes.events().any(|e| e.kind.name() == "lead_won") {
            return Err(Error::invalid("lead", "refused by the test hook"));
        }
        Ok(())
    }
}

#[tokio::test]
async fn hooks_get_the_loaded_partner_and_can_refuse() {
    let hook = Arc::new(Recorder {
        refuse_wins: true,
        ..Default::default()
    });
    let crm = Crm::builder()
        .sqlite_in_memory()
        .hook(hook.clone())
        .build()
        .await
        .unwrap();
    let crm = crm.leads();
    let ctx = Context::user(TenantId::new(), UserId::new());
    crm.setup_tenant(&ctx).await.unwrap();
    let p = crm
        .create_partner(&ctx, NewPartner::company("Hooked SRL"))
        .await
        .unwrap()
        .record;
    let lead = crm
        .enter_lead(&ctx, NewLead::for_partner(p.id(), "Deal"))
        .await
        .unwrap()
        .record;
    let seen = hook.seen.lock().unwrap().clone();
    assert_eq!(
        seen.last().unwrap().1,
        vec!["Hooked SRL".to_string()],
        "the lead's partner is loaded context"
    );

    let page = PageRequest::default();
    let timeline = || crm.timeline(ctx.tenant, TimelineOf::Lead(lead.id()), &page);
    let before = timeline().await.unwrap();
    let e = crm
        .transition(&ctx, lead.id(), lead.version(), LeadCommand::Win)
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("lead"));
    assert_eq!(
        crm.lead(ctx.tenant, lead.id()).await.unwrap(),
        lead,
        "a refused change writes nothing"
    );
    let after = timeline().await.unwrap();
    assert_eq!(before, after);
}

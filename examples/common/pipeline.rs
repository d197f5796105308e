//! How the quickstart and communication examples move a lead along the seed pipeline (each includes this file with
//! `#[path]`).

use crm::{Context, Lead, LeadCommand, LeadService, Pipeline};

/// Moves `lead` through the stages of `pipeline` named `stages`, in order, and returns it as it ends up.
pub async fn move_through(
    leads: &LeadService,
    ctx: &Context,
    pipeline: &Pipeline,
    mut lead: Lead,
    stages: &[&str],
) -> crm::Result<Lead> {
    for name in stages {
        let stage = pipeline.stage_named(name).expect("seed stage").id;
        lead = leads
            .transition(
                ctx,
                lead.id(),
                lead.version(),
                LeadCommand::MoveTo { stage },
            )
            .await?
            .record;
    }
    Ok(lead)
}

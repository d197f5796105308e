//! Selling to a lead: the tenant's tax table, quotations (lines, taxes, totals, states and revisions) and meetings
//! (times in IANA zones, iCalendar invitations, replies), contracts, and the files attached to them all
//! ([`attachment`]: the metadata, and the [`BlobStore`] port the bytes go through).
//!
//! Pure like the rest of the domain: constructors validate and price, transitions return the new state, and the
//! service persists it.

pub mod attachment;
pub mod contract;
pub mod meeting;
pub mod quotation;
pub mod reference;
pub mod tax;

pub use attachment::{
    file_name, sniff, AttachedTo, Attachment, AttachmentPolicy, BlobStore, ByteStream,
    ContentDigest, ContentHash, NewAttachment, StoredBlob,
};
pub use contract::{Contract, Signature, Term};
pub use meeting::{
    Attendee, Meeting, MeetingCommand, MeetingStatus, NewMeeting, Organiser, Participant, Reply,
    Slot,
};
pub use quotation::{
    apply, price, revise, Answer, NewQuotation, PricedLine, Quotation, QuotationCommand,
    QuotationLine, QuotationMail, QuotationNumber, QuotationStatus, QuotationTerms,
    QuotationTotals, TaxTotal,
};
pub use tax::{TaxRate, TaxTable};

use crate::error::{Error, Result};
use rust_decimal::Decimal;

/// Checks a percent (a discount, a tax rate): 0 to 100 with at most [`tax::TAX_PERCENT_SCALE`] decimal places.
pub(crate) fn percent(field: &str, value: Decimal) -> Result<Decimal> {
    if value < Decimal::ZERO || value > Decimal::ONE_HUNDRED {
        return Err(Error::invalid(
            field,
            format!("{value} is not between 0 and 100"),
        ));
    }
    if value.normalize().scale() > tax::TAX_PERCENT_SCALE {
        return Err(Error::invalid(
            field,
            format!(
                "{value} has more than {} decimal places",
                tax::TAX_PERCENT_SCALE
            ),
        ));
    }
    Ok(value)
}

//! The CRM engine facade.

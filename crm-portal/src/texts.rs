//! The portal's words in English and Romanian.

use std::collections::BTreeMap;

/// The language of the pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// English.
    #[default]
    En,
    /// Romanian.
    Ro,
}

impl Lang {
    /// The language of a code (`en`, `ro`).
    pub fn parse(code: &str) -> Option<Self> {
        match code.trim().to_ascii_lowercase().as_str() {
            "en" => Some(Self::En),
            "ro" => Some(Self::Ro),
            _ => None,
        }
    }

    /// The first language of an `Accept-Language` header the portal speaks.
    pub fn from_accept(header: &str) -> Self {
        header
            .split(',')
            .filter_map(|part| part.split(';').next())
            .filter_map(|tag| Self::parse(tag.split('-').next().unwrap_or_default()))
            .next()
            .unwrap_or_default()
    }

    /// Its code.
    pub fn code(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Ro => "ro",
        }
    }

    /// Every text of the pages in this language, by key.
    pub fn texts(self) -> BTreeMap<&'static str, &'static str> {
        TEXTS
            .iter()
            .map(|(k, en, ro)| (*k, if self == Self::Ro { *ro } else { *en }))
            .collect()
    }
}

/// (key, English, Romanian).
const TEXTS: &[(&str, &str, &str)] = &[
    ("title", "Customer portal", "Portal clienți"),
    ("statement", "Account", "Cont"),
    ("documents", "Documents", "Documente"),
    ("requests", "Requests", "Solicitări"),
    ("pay", "Pay", "Plătește"),
    ("contacts", "Contacts", "Persoane de contact"),
    ("contracts", "Contracts and offers", "Contracte și oferte"),
    ("logout", "Sign out", "Ieșire"),
    ("login", "Sign in", "Autentificare"),
    ("login_intro", "Enter your e-mail address: we send you a link that signs you in.", "Introduceți adresa de e-mail: vă trimitem un link de autentificare."),
    ("email", "E-mail address", "Adresa de e-mail"),
    ("send_link", "Send me a link", "Trimite-mi un link"),
    ("login_sent", "If this address has access, a sign-in link is on its way. It works once, for 15 minutes.", "Dacă adresa are acces, un link de autentificare este pe drum. Funcționează o singură dată, 15 minute."),
    ("login_confirm", "Sign in to the portal", "Intrați în portal"),
    ("unsubscribe_title", "Stop marketing e-mails", "Opriți e-mailurile de marketing"),
    ("unsubscribe_intro", "Press the button and we send you no more offers by e-mail. Messages about your orders, invoices and requests still reach you.", "Apăsați butonul și nu vă mai trimitem oferte prin e-mail. Mesajele despre comenzi, facturi și cereri vă sosesc în continuare."),
    ("unsubscribe", "Unsubscribe", "Dezabonare"),
    ("unsubscribed", "Done: you will receive no more marketing e-mails from us.", "Gata: nu veți mai primi e-mailuri de marketing de la noi."),
    ("login_confirm_intro", "Press the button to sign in with this link.", "Apăsați butonul pentru a intra cu acest link."),
    ("signed_in_as", "Signed in as", "Autentificat ca"),
    ("for_partner", "for", "pentru"),
    ("as_of", "As of", "La data de"),
    ("currency", "Currency", "Moneda"),
    ("you_owe", "You owe us", "Datorați"),
    ("we_owe", "We owe you", "Vă datorăm"),
    ("advances", "Advances to settle", "Avansuri de decontat"),
    ("reimbursements", "Reimbursements due to you", "Rambursări cuvenite"),
    ("overdue", "Overdue", "Restant"),
    ("open_items", "Open items", "Documente neachitate"),
    ("no_open_items", "Nothing is open.", "Nu există sume neachitate."),
    ("number", "Number", "Număr"),
    ("kind", "Kind", "Tip"),
    ("issued", "Issued", "Emis"),
    ("due", "Due", "Scadent"),
    ("total", "Total", "Total"),
    ("settled", "Settled", "Achitat"),
    ("open", "Open", "Rest de plată"),
    ("days_overdue", "Days overdue", "Zile întârziere"),
    ("balance_chart", "Balance over time", "Evoluția soldului"),
    ("next_page", "Older documents", "Documente mai vechi"),
    ("download_pdf", "Download PDF", "Descarcă PDF"),
    ("pdf_not_available", "A PDF of this document is not available.", "PDF-ul acestui document nu este disponibil."),
    ("lines", "Lines", "Linii"),
    ("quantity", "Quantity", "Cantitate"),
    ("unit_price", "Unit price", "Preț unitar"),
    ("net", "Net", "Valoare"),
    ("allocations", "Settles", "Achită"),
    ("new_request", "New request", "Solicitare nouă"),
    ("request_kind", "What is it", "Ce este"),
    ("question", "A question", "O întrebare"),
    ("complaint", "A complaint", "O reclamație"),
    ("information", "A request for information", "O cerere de informații"),
    ("subject", "Subject", "Subiect"),
    ("message", "Message", "Mesaj"),
    ("send", "Send", "Trimite"),
    ("status", "Status", "Stare"),
    ("opened", "Opened", "Deschisă"),
    ("no_requests", "No requests yet.", "Nicio solicitare."),
    ("replies", "Replies", "Răspunsuri"),
    ("no_replies", "No reply yet.", "Niciun răspuns încă."),
    ("reply", "Reply", "Răspunde"),
    ("pay_intro", "Choose the items to pay; leave the amount empty to pay what is open.", "Alegeți documentele de plătit; lăsați suma goală pentru a plăti restul."),
    ("amount", "Amount", "Suma"),
    ("pay_now", "Pay", "Plătește"),
    ("nothing_to_pay", "Nothing to pay.", "Nimic de plătit."),
    ("payment", "Payment", "Plată"),
    ("payment_confirmed", "Payment confirmed. Thank you.", "Plata a fost confirmată. Vă mulțumim."),
    ("payment_pending", "Payment in progress: the statement shows it once the bank confirms.", "Plata este în curs: apare în cont după confirmarea băncii."),
    ("payment_failed", "The payment failed", "Plata a eșuat"),
    ("back_to_account", "Back to the account", "Înapoi la cont"),
    ("name", "Name", "Nume"),
    ("role", "Role", "Funcție"),
    ("phone", "Phone", "Telefon"),
    ("add_contact", "Add a contact", "Adaugă o persoană"),
    ("remove", "Remove", "Șterge"),
    ("quotations", "Offers", "Oferte"),
    ("valid_until", "Valid until", "Valabilă până la"),
    ("accept", "Accept", "Acceptă"),
    ("decline", "Decline", "Refuză"),
    ("contract", "Contract", "Contract"),
    ("starts", "Starts", "Începe"),
    ("ends", "Ends", "Se termină"),
    ("value", "Value", "Valoare"),
    ("ask_renewal", "Ask for a renewal", "Cereți reînnoirea"),
    ("ask_offer", "Ask for a new offer", "Cereți o ofertă nouă"),
    ("note", "Note", "Notă"),
    ("asked", "Thank you: your account manager will contact you.", "Vă mulțumim: managerul de cont vă va contacta."),
    ("error", "Something went wrong", "A apărut o problemă"),
    ("not_found", "Not found.", "Nu a fost găsit."),
    ("forbidden", "Your access does not include this.", "Accesul dumneavoastră nu include aceasta."),
    ("session_ended", "Your session has ended. Please sign in again.", "Sesiunea s-a încheiat. Vă rugăm să vă autentificați din nou."),
    ("form_expired", "This form has expired. Go back, reload the page and try again.", "Formularul a expirat. Reveniți, reîncărcați pagina și încercați din nou."),
    ("invalid", "Please check", "Vă rugăm să verificați"),
    ("conflict", "Someone changed this at the same moment: reload and try again.", "Altcineva a modificat aceasta în același timp: reîncărcați și încercați din nou."),
    ("unavailable", "The portal cannot answer now. Please try again in a moment.", "Portalul nu poate răspunde acum. Încercați din nou în câteva momente."),
    ("back", "Back", "Înapoi"),
    ("invoice", "Invoice", "Factură"),
    ("credit_note", "Credit note", "Notă de credit"),
    ("vendor_bill", "Bill", "Factură furnizor"),
    ("payment_doc", "Payment", "Plată"),
    ("show", "Show", "Arată"),
    ("confirm_payment", "Confirm the payment", "Confirmați plata"),
    ("confirm_pay", "Confirm and pay", "Confirmă și plătește"),
    ("status_open", "open", "deschisă"),
    ("status_inprogress", "in progress", "în lucru"),
    ("status_done", "done", "rezolvată"),
    ("status_cancelled", "cancelled", "anulată"),
    ("status_draft", "draft", "ciornă"),
    ("status_sent", "awaiting your answer", "așteaptă răspunsul dumneavoastră"),
    ("status_accepted", "accepted", "acceptată"),
    ("status_declined", "declined", "refuzată"),
    ("status_expired", "expired", "expirată"),
    ("status_superseded", "replaced by a newer offer", "înlocuită de o ofertă nouă"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_languages_have_every_text() {
        for (k, en, ro) in TEXTS {
            assert!(!en.is_empty() && !ro.is_empty(), "{k}");
        }
        let keys: std::collections::BTreeSet<_> = TEXTS.iter().map(|t| t.0).collect();
        assert_eq!(keys.len(), TEXTS.len(), "no key twice");
    }

    #[test]
    fn accept_language_picks_the_first_spoken() {
        assert_eq!(Lang::from_accept("ro-RO,ro;q=0.9,en;q=0.8"), Lang::Ro);
        assert_eq!(Lang::from_accept("de-DE, en;q=0.5"), Lang::En);
        assert_eq!(Lang::from_accept("fr"), Lang::En);
        assert_eq!(Lang::from_accept(""), Lang::En);
    }
}

//! Duplicate detection that explains itself.
//!
//! Each partner yields a set of normalised [`DedupeKey`]s (e-mail, web domain, phone, tax id, name). Storage indexes
//! the keys, so finding candidates for a new partner is an exact, indexed lookup; each candidate comes back with the
//! reasons it matched.

use crate::id::PartnerId;
use crate::partner::{Contact, NewContact, NewPartner, Partner};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why two partners look alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    /// The same e-mail address (case, `+tag` ignored).
    Email,
    /// The same company e-mail or web domain (free-mail domains never match as a domain).
    Domain,
    /// The same phone number by its last nine digits (what keys stored before E.164 hold, and the fallback for a
    /// number that does not parse).
    Phone,
    /// The same phone number in E.164 (`+40721234567`), parsed with the partner's country (else Romania's).
    E164,
    /// The same tax id (country prefix and punctuation ignored).
    TaxId,
    /// The same name once case, accents, punctuation and legal suffixes are ignored.
    Name,
    /// A name close to the probe's (Jaro–Winkler similarity of the normalised names at or above the threshold;
    /// it scores the similarity less ten points, so below the same name's 90).
    SimilarName,
    /// A significant word of the normalised name: a lookup key that brings similar names to be scored, never a
    /// reason by itself.
    NameToken,
}

impl MatchKind {
    fn prefix(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Domain => "domain",
            Self::Phone => "phone",
            Self::E164 => "e164",
            Self::TaxId => "tax",
            Self::Name => "name",
            Self::SimilarName => "similar",
            Self::NameToken => "token",
        }
    }

    /// How sure a match of this kind alone is, in percent (a similar name scores its similarity instead).
    pub fn score(self) -> u8 {
        match self {
            Self::Email | Self::TaxId => 100,
            Self::E164 => 95,
            Self::Name => 90,
            Self::Phone => 80,
            Self::Domain => 60,
            Self::SimilarName | Self::NameToken => 0,
        }
    }

    /// Whether a match of this kind alone identifies the same partner (used by "match or create").
    pub fn is_strong(self) -> bool {
        matches!(self, Self::Email | Self::TaxId)
    }
}

/// A normalised key: a kind and a value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DedupeKey {
    /// What kind of key.
    pub kind: MatchKind,
    /// The normalised value.
    pub value: String,
}

impl DedupeKey {
    /// The key as one string (`email:ana@firma.ro`), the form storage indexes.
    pub fn encoded(&self) -> String {
        format!("{}:{}", self.kind.prefix(), self.value)
    }

    /// Parses the encoded form.
    pub fn decode(s: &str) -> Option<Self> {
        let (p, v) = s.split_once(':')?;
        let kind = [
            MatchKind::Email,
            MatchKind::Domain,
            MatchKind::Phone,
            MatchKind::E164,
            MatchKind::TaxId,
            MatchKind::Name,
            MatchKind::SimilarName,
            MatchKind::NameToken,
        ]
        .into_iter()
        .find(|k| k.prefix() == p)?;
        Some(Self {
            kind,
            value: v.to_string(),
        })
    }
}

impl fmt::Display for DedupeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encoded())
    }
}

/// A partner that may be the same as the one being entered, with every reason it matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicateCandidate {
    /// The existing partner.
    pub partner: PartnerId,
    /// Its name.
    pub name: String,
    /// The keys both share.
    pub reasons: Vec<DedupeKey>,
    /// How sure the match is, in percent: the strongest reason's [`MatchKind::score`] (a similar name: its
    /// similarity less ten points).
    #[serde(default)]
    pub score: u8,
}

impl DuplicateCandidate {
    /// Whether one of the reasons is strong (same e-mail or same tax id).
    pub fn is_strong(&self) -> bool {
        self.reasons.iter().any(|r| r.kind.is_strong())
    }

    /// The reasons in words: "same e-mail ana@firma.ro; same name acme".
    pub fn explain(&self) -> String {
        self.reasons
            .iter()
            .map(|r| {
                let what = match r.kind {
                    MatchKind::Email => "same e-mail",
                    MatchKind::Domain => "same domain",
                    MatchKind::Phone => "same phone (last nine digits)",
                    MatchKind::E164 => "same phone",
                    MatchKind::TaxId => "same tax id",
                    MatchKind::Name => "same name",
                    MatchKind::SimilarName => "similar name",
                    MatchKind::NameToken => "a word of the name",
                };
                format!("{what} {}", r.value)
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

const FREE_MAIL: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "yahoo.ro",
    "yahoo.co.uk",
    "ymail.com",
    "hotmail.com",
    "outlook.com",
    "live.com",
    "msn.com",
    "icloud.com",
    "me.com",
    "aol.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "mail.ru",
    "yandex.ru",
    "yandex.com",
    "proton.me",
    "protonmail.com",
    "zoho.com",
    "mail.com",
];

/// Whether a domain belongs to a free-mail provider (whose addresses say nothing about the company).
pub fn is_free_mail(domain: &str) -> bool {
    FREE_MAIL.contains(&domain.to_ascii_lowercase().as_str())
}

/// Normalises an e-mail address: lower case, `+tag` dropped from the local part.
pub fn normalize_email(email: &str) -> Option<(String, String)> {
    let e = email.trim().to_lowercase();
    let (local, domain) = e.rsplit_once('@')?;
    let local = local.split('+').next().unwrap_or(local);
    if local.is_empty() || domain.is_empty() {
        return None;
    }
    Some((format!("{local}@{domain}"), domain.to_string()))
}

/// The host of a web address, without scheme, `www.` or path.
pub fn web_domain(url: &str) -> Option<String> {
    let u = url.trim().to_lowercase();
    let u = u.split("://").last().unwrap_or(&u);
    let host = u.split(['/', '?', '#', ':']).next().unwrap_or("");
    let host = host.strip_prefix("www.").unwrap_or(host);
    (host.contains('.') && !host.is_empty()).then(|| host.to_string())
}

/// The last nine digits of a phone number: the same for "+40 721 234 567" and "0721.234.567".
pub fn normalize_phone(phone: &str) -> Option<String> {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    (digits.len() >= 6).then(|| digits[digits.len().saturating_sub(9)..].to_string())
}

/// The region a phone number without a country prefix is read in when the partner has no location.
pub const DEFAULT_PHONE_REGION: &str = "RO";

/// A phone number in E.164 (`+40721234567`), read in `country` (ISO 3166-1 alpha-2) when it has no prefix; `None`
/// when it is not a valid number there.
pub fn e164(phone: &str, country: Option<&str>) -> Option<String> {
    let region = country
        .unwrap_or(DEFAULT_PHONE_REGION)
        .trim()
        .to_ascii_uppercase();
    let id = region.parse::<phonenumber::country::Id>().ok();
    // The parser has panicked on odd inputs in earlier releases (rust-phonenumber #32, #43): a panic there reads
    // as "no E.164", and the last nine digits still key the number.
    std::panic::catch_unwind(|| {
        let number = phonenumber::parse(id, phone.trim()).ok()?;
        let valid = phonenumber::is_valid(&number);
        valid.then(|| number.format().mode(phonenumber::Mode::E164).to_string())
    })
    .ok()
    .flatten()
}

/// The words of a normalised name that look similar names up: the two longest of at least four letters.
pub fn name_tokens(normalized: &str) -> Vec<String> {
    let mut words: Vec<&str> = normalized
        .split_whitespace()
        .filter(|w| w.chars().count() >= 4)
        .collect();
    words.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    words.dedup();
    words.into_iter().take(2).map(str::to_string).collect()
}

/// How alike two normalised names are, in percent (Jaro–Winkler, which favours a shared beginning: company names
/// differ most in their tails, "Acme Industries" and "Acme Industris").
pub fn similarity(a: &str, b: &str) -> u8 {
    (strsim::jaro_winkler(a, b) * 100.0)
        .round()
        .clamp(0.0, 100.0) as u8
}

/// The similarity at or above which two names are reported as similar, by default.
pub const NAME_SIMILARITY: u8 = 90;

/// A tax id without country prefix, spaces or punctuation, upper case.
pub fn normalize_tax_id(tax: &str) -> Option<String> {
    let t: String = tax
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_uppercase();
    let t = if t.len() > 2
        && t[..2].chars().all(|c| c.is_ascii_alphabetic())
        && t[2..].starts_with(|c: char| c.is_ascii_digit())
    {
        t[2..].to_string()
    } else {
        t
    };
    (t.len() >= 4).then_some(t)
}

const LEGAL_SUFFIXES: &[&str] = &[
    "srl", "sa", "sc", "pfa", "ii", "ltd", "llc", "inc", "gmbh", "ag", "co", "corp", "company",
    "limited", "bv", "nv", "spa", "sarl", "sas", "oy", "ab", "plc", "kg", "srl-d",
];

/// A name with case, diacritics, punctuation and legal-form words removed: "S.C. Acme S.R.L." → "acme".
pub fn normalize_name(name: &str) -> Option<String> {
    let folded: String = name
        .to_lowercase()
        .chars()
        .map(|c| match c {
            'ă' | 'â' | 'á' | 'à' | 'ä' | 'ã' | 'å' => 'a',
            'î' | 'í' | 'ì' | 'ï' => 'i',
            'ș' | 'ş' | 'ś' | 'š' => 's',
            'ț' | 'ţ' => 't',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'ó' | 'ò' | 'ô' | 'ö' | 'õ' => 'o',
            'ú' | 'ù' | 'û' | 'ü' => 'u',
            'ç' | 'č' => 'c',
            'ñ' => 'n',
            c if c.is_alphanumeric() => c,
            '.' => '\0',
            _ => ' ',
        })
        .filter(|c| *c != '\0')
        .collect();
    let words: Vec<&str> = folded
        .split_whitespace()
        .filter(|w| !LEGAL_SUFFIXES.contains(w))
        .collect();
    let n = words.join(" ");
    (n.chars().count() >= 3).then_some(n)
}

/// A contact's e-mail and phone, stored or about to be entered.
trait ContactPoints {
    fn email(&self) -> Option<&str>;
    fn phone(&self) -> Option<&str>;
}

impl ContactPoints for Contact {
    fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }
    fn phone(&self) -> Option<&str> {
        self.phone.as_deref()
    }
}

impl ContactPoints for NewContact {
    fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }
    fn phone(&self) -> Option<&str> {
        self.phone.as_deref()
    }
}

/// The keys of a partner's name, contacts, tax id and website, each once: e-mails (and their domains), the
/// website's domain, phones, tax id, name.
fn keys_from<C: ContactPoints>(
    name: &str,
    contacts: &[C],
    tax: Option<&str>,
    web: Option<&str>,
    country: Option<&str>,
) -> Vec<DedupeKey> {
    let mut keys = Vec::new();
    let mut push = |kind, value: String| {
        let k = DedupeKey { kind, value };
        if !keys.contains(&k) {
            keys.push(k);
        }
    };
    for e in contacts.iter().filter_map(C::email) {
        if let Some((addr, domain)) = normalize_email(e) {
            push(MatchKind::Email, addr);
            if !is_free_mail(&domain) {
                push(MatchKind::Domain, domain);
            }
        }
    }
    if let Some(d) = web.and_then(web_domain) {
        if !is_free_mail(&d) {
            push(MatchKind::Domain, d);
        }
    }
    for p in contacts.iter().filter_map(C::phone) {
        if let Some(e) = e164(p, country) {
            push(MatchKind::E164, e);
        }
        if let Some(p) = normalize_phone(p) {
            push(MatchKind::Phone, p);
        }
    }
    if let Some(t) = tax.and_then(normalize_tax_id) {
        push(MatchKind::TaxId, t);
    }
    if let Some(n) = normalize_name(name) {
        for t in name_tokens(&n) {
            push(MatchKind::NameToken, t);
        }
        push(MatchKind::Name, n);
    }
    keys
}

/// [`keys_from`] the name, contacts, tax id and website of a stored or a new partner, which both carry them.
macro_rules! partner_keys {
    ($p:expr) => {
        keys_from(
            &$p.name,
            &$p.contacts,
            $p.tax_id.as_deref(),
            $p.website.as_deref(),
            $p.locations.first().map(|l| l.country.as_str()),
        )
    };
}

/// The keys of a stored partner.
pub fn keys_of(p: &Partner) -> Vec<DedupeKey> {
    partner_keys!(p)
}

/// The keys of a partner about to be entered.
pub fn keys_of_new(p: &NewPartner) -> Vec<DedupeKey> {
    partner_keys!(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, f: fn(&str) -> Option<String>, expected: Option<&str>) {
        assert_eq!(f(input).as_deref(), expected, "{input}");
    }

    #[test]
    fn normalisers() {
        type Case<'a> = (&'a str, fn(&str) -> Option<String>, Option<&'a str>);
        let cases: &[Case] = &[
            ("S.C. Acme S.R.L.", normalize_name, Some("acme")),
            ("ACME srl", normalize_name, Some("acme")),
            (
                "Întreprinderea Țesătoria",
                normalize_name,
                Some("intreprinderea tesatoria"),
            ),
            ("SA", normalize_name, None),
            ("+40 721 234 567", normalize_phone, Some("721234567")),
            ("0721.234.567", normalize_phone, Some("721234567")),
            ("123", normalize_phone, None),
            ("RO 123 456 78", normalize_tax_id, Some("12345678")),
            ("12345678", normalize_tax_id, Some("12345678")),
            ("https://www.Acme.ro/contact", web_domain, Some("acme.ro")),
            ("0721 234 567", |p| e164(p, None), Some("+40721234567")),
            (
                "+40 (721) 234-567",
                |p| e164(p, Some("DE")),
                Some("+40721234567"),
            ),
            ("030 1234567", |p| e164(p, Some("de")), Some("+49301234567")),
            ("12", |p| e164(p, None), None),
            ("not a phone", |p| e164(p, None), None),
        ];
        for (i, f, e) in cases {
            check(i, *f, *e);
        }
    }

    #[test]
    fn free_mail_gives_no_domain_key() {
        let p =
            NewPartner::company("Ana Pop").with_contact("Ana", Some("Ana.Pop+crm@Gmail.com"), None);
        let keys = keys_of_new(&p);
        assert!(keys.contains(&DedupeKey {
            kind: MatchKind::Email,
            value: "ana.pop@gmail.com".into()
        }));
        assert!(!keys.iter().any(|k| k.kind == MatchKind::Domain));
        let q = NewPartner::company("Acme").with_contact("Ana", Some("ana@acme.ro"), None);
        assert!(keys_of_new(&q).contains(&DedupeKey {
            kind: MatchKind::Domain,
            value: "acme.ro".into()
        }));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        /// Any phone-like text, in any region, gives an E.164 number or none, never a panic.
        #[test]
        fn e164_never_panics(phone in "[+]?[0-9 ()#x.-]{0,24}", region in "(RO|DE|US|CH|GB|[A-Z]{2})?") {
            let region = (!region.is_empty()).then_some(region.as_str());
            if let Some(e) = e164(&phone, region) {
                proptest::prop_assert!(e.starts_with('+') && e[1..].chars().all(|c| c.is_ascii_digit()));
            }
        }
    }

    #[test]
    fn similar_names_score_high_and_others_low() {
        let n = |s: &str| normalize_name(s).expect("a name");
        assert!(
            similarity(&n("Acme Industries SRL"), &n("ACME Industris S.R.L.")) >= NAME_SIMILARITY
        );
        assert!(similarity(&n("Acme Industries"), &n("Globex Industries")) < NAME_SIMILARITY);
        assert_eq!(similarity("acme", "acme"), 100);
        assert_eq!(
            name_tokens("fabrica de mobila brasov"),
            ["fabrica", "brasov"]
        );
        assert!(name_tokens("ab cd").is_empty());
    }

    #[test]
    fn encoded_round_trip() {
        let k = DedupeKey {
            kind: MatchKind::TaxId,
            value: "123".into(),
        };
        assert_eq!(DedupeKey::decode(&k.encoded()), Some(k));
    }
}

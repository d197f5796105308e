//! Attachments: the files a lead, partner, request, quotation or contract lives on.
//!
//! The metadata ([`Attachment`]: name, media type, size, SHA-256, who and when, shared with the partner or not) is a
//! commerce record, written with its activity entry in one change set. The bytes are not: they go to a
//! [`BlobStore`], the port the host (or `crm-blob`) implements, content-addressed per tenant, streamed in and out
//! ([`ByteStream`]), never buffered whole and never in the event log.
//!
//! Pure like the rest of the domain: the media type is sniffed from the first bytes ([`sniff`]), the tenant's
//! [`AttachmentPolicy`] decides what is allowed, and [`ContentDigest`] counts and hashes the bytes a blob store
//! streams, refusing the first chunk past the limit.

use crate::actor::{Actor, Context};
use crate::error::{Error, Result};
use crate::id::{AttachmentId, ContractId, LeadId, PartnerId, QuotationId, RequestId, TenantId};
use crate::time::Timestamp;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// A stream of bytes in chunks: a file being uploaded to or read back from a [`BlobStore`]. A chunk that is an
/// `Err` fails the stream (the upload then stores nothing).
pub type ByteStream = futures_util::stream::BoxStream<'static, std::io::Result<bytes::Bytes>>;

/// How many of a file's first bytes [`sniff`] looks at (and the service holds before it stores anything).
pub const SNIFF_BYTES: usize = 8 * 1024;

/// The default size limit of one file: 25 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 25 * 1024 * 1024;

/// The longest file name accepted, in characters.
pub const MAX_FILE_NAME: usize = 255;

/// The SHA-256 of a file's bytes: 32 bytes, shown and serialised as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContentHash([u8; 32]);

impl ContentHash {
    /// The hash of `bytes` (in one piece; a stream is hashed by [`ContentDigest`]).
    ///
    /// ```
    /// use crm_core::sales::ContentHash;
    /// let h = ContentHash::of(b"abc");
    /// assert_eq!(h.to_string(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    /// ```
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// Wraps 32 raw bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({self})")
    }
}

impl FromStr for ContentHash {
    type Err = Error;

    /// Parses 64 lowercase hex digits.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `sha256` for anything else.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::invalid("sha256", "is not 64 lowercase hex digits");
        if s.len() != 64 {
            return Err(bad());
        }
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        let mut out = [0u8; 32];
        for (o, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
            *o = (digit(pair[0]).ok_or_else(bad)? << 4) | digit(pair[1]).ok_or_else(bad)?;
        }
        Ok(Self(out))
    }
}

impl Serialize for ContentHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ContentHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What a [`BlobStore`] kept: the content's hash (its address) and its size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StoredBlob {
    /// The SHA-256 of the bytes.
    pub hash: ContentHash,
    /// How many bytes.
    pub size: u64,
}

/// Counts and hashes the chunks of a stream as a [`BlobStore`] writes them, refusing the first chunk that takes the
/// total past `max_bytes` (before it is written).
///
/// ```
/// use crm_core::sales::{ContentDigest, ContentHash};
/// let mut d = ContentDigest::new(5);
/// d.update(b"abc")?;
/// assert_eq!(d.update(b"def").unwrap_err().field(), Some("content")); // 6 bytes > 5
/// let mut d = ContentDigest::new(5);
/// d.update(b"ab")?;
/// d.update(b"c")?;
/// assert_eq!(d.finish().hash, ContentHash::of(b"abc"));
/// # Ok::<(), crm_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ContentDigest {
    sha: Sha256,
    size: u64,
    max_bytes: u64,
}

impl ContentDigest {
    /// A digest of nothing yet, accepting at most `max_bytes`.
    pub fn new(max_bytes: u64) -> Self {
        Self {
            sha: Sha256::new(),
            size: 0,
            max_bytes,
        }
    }

    /// Counts and hashes the next chunk.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `content` when the chunk takes the total past the limit (the chunk is not counted).
    pub fn update(&mut self, chunk: &[u8]) -> Result<()> {
        let size = self.size.saturating_add(chunk.len() as u64);
        if size > self.max_bytes {
            return Err(too_large(self.max_bytes));
        }
        self.size = size;
        self.sha.update(chunk);
        Ok(())
    }

    /// Takes the next chunk of a stream: its bytes, counted and hashed.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `content` when the source failed (see [`source_failed`]) or the chunk takes the total
    /// past the limit.
    pub fn take(&mut self, chunk: std::io::Result<bytes::Bytes>) -> Result<bytes::Bytes> {
        let chunk = chunk.map_err(|e| source_failed(&e))?;
        self.update(&chunk)?;
        Ok(chunk)
    }

    /// How many bytes so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The hash and size of everything counted.
    pub fn finish(self) -> StoredBlob {
        StoredBlob {
            hash: ContentHash(self.sha.finalize().into()),
            size: self.size,
        }
    }
}

fn too_large(max: u64) -> Error {
    Error::invalid(
        "content",
        format!("the file is larger than the limit of {max} bytes"),
    )
}

/// [`Error::Invalid`] on `content` for a stream whose source failed (the upload stores nothing).
pub fn source_failed(e: &std::io::Error) -> Error {
    Error::invalid("content", format!("the upload could not be read: {e}"))
}

/// The port the bytes of attachments go through. Implemented by `crm-blob` (a directory, or any `object_store`) and
/// by the reference model; the engine never buffers a whole file.
///
/// # Contract
///
/// - **Content-addressed per tenant.** `put` stores the bytes under their SHA-256 in the tenant's own space: the
///   same bytes twice are stored once, and one tenant can never read (or learn the existence of) another's.
/// - **All or nothing.** `put` hashes and counts while it streams; when the source fails, the sink fails or the
///   content passes `limit` bytes (then [`Error::Invalid`] on `content`), nothing is kept and the error is returned.
///   A source failure is [`Error::Invalid`] on `content`; a sink failure is [`Error::Storage`].
/// - **Reads.** `get` streams the bytes back ([`Error::NotFound`] when the tenant has none with that hash);
///   `contains` says whether it has them.
#[async_trait]
pub trait BlobStore: Send + Sync + fmt::Debug {
    /// Streams `content` (at most `limit` bytes) in, stores it under its hash for `tenant`, and returns the hash
    /// and size.
    async fn put(&self, tenant: TenantId, content: ByteStream, limit: u64) -> Result<StoredBlob>;
    /// Streams the bytes stored under `hash` for `tenant` back.
    async fn get(&self, tenant: TenantId, hash: &ContentHash) -> Result<ByteStream>;
    /// Whether `tenant` has bytes stored under `hash`.
    async fn contains(&self, tenant: TenantId, hash: &ContentHash) -> Result<bool>;
    /// Deletes the bytes stored under `hash` for `tenant` (an erasure); `false` when there were none.
    async fn delete(&self, tenant: TenantId, hash: &ContentHash) -> Result<bool>;
}

/// The record a file is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum AttachedTo {
    /// A lead.
    Lead(LeadId),
    /// A partner.
    Partner(PartnerId),
    /// A request.
    Request(RequestId),
    /// A quotation revision.
    Quotation(QuotationId),
    /// A contract.
    Contract(ContractId),
}

impl AttachedTo {
    /// The stored code of the kind of record (1 lead, 2 partner, 3 request, 4 quotation, 5 contract).
    pub fn kind_code(&self) -> i16 {
        match self {
            Self::Lead(_) => 1,
            Self::Partner(_) => 2,
            Self::Request(_) => 3,
            Self::Quotation(_) => 4,
            Self::Contract(_) => 5,
        }
    }

    /// The record's id.
    pub fn uuid(&self) -> &uuid::Uuid {
        match self {
            Self::Lead(id) => id.as_uuid(),
            Self::Partner(id) => id.as_uuid(),
            Self::Request(id) => id.as_uuid(),
            Self::Quotation(id) => id.as_uuid(),
            Self::Contract(id) => id.as_uuid(),
        }
    }
}

/// What a tenant accepts as attachments: a size limit and the media types allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentPolicy {
    /// The largest file accepted, in bytes.
    pub max_bytes: u64,
    /// The media types accepted (as [`sniff`] names them).
    pub allowed: Vec<String>,
}

/// The media types allowed by default: PDF, common images, office documents (OOXML, OLE, OpenDocument), zip, plain
/// text and CSV.
pub const DEFAULT_MEDIA_TYPES: &[&str] = &[
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/tiff",
    "image/bmp",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
    "application/zip",
    "text/plain",
    "text/csv",
];

impl Default for AttachmentPolicy {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_MAX_BYTES,
            allowed: DEFAULT_MEDIA_TYPES.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl AttachmentPolicy {
    /// A policy of `max_bytes` and these media types.
    ///
    /// ```
    /// use crm_core::sales::AttachmentPolicy;
    /// let pdf_only = AttachmentPolicy::new(1024, ["application/pdf"]);
    /// assert!(pdf_only.check("application/pdf").is_ok());
    /// assert_eq!(pdf_only.check("text/plain").unwrap_err().field(), Some("media_type"));
    /// ```
    pub fn new<S: Into<String>>(max_bytes: u64, allowed: impl IntoIterator<Item = S>) -> Self {
        Self {
            max_bytes,
            allowed: allowed.into_iter().map(Into::into).collect(),
        }
    }

    /// Checks that `media_type` is allowed.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `media_type` when it is not.
    pub fn check(&self, media_type: &str) -> Result<()> {
        if self.allowed.iter().any(|a| a == media_type) {
            Ok(())
        } else {
            Err(Error::invalid(
                "media_type",
                format!("files of type {media_type} are not accepted"),
            ))
        }
    }
}

/// The media type of a file from its first bytes (at least [`SNIFF_BYTES`] of them, or the whole file when it is
/// shorter), never from its name: a known signature (through the `infer` crate); else text (valid UTF-8 without NUL
/// bytes) is `text/plain`, or `text/csv` when the name ends in `.csv`; else `application/octet-stream`.
///
/// ```
/// use crm_core::sales::sniff;
/// assert_eq!(sniff(b"%PDF-1.7\n...", "offer.txt"), "application/pdf");
/// assert_eq!(sniff(b"name,qty\nbolt,4\n", "order.csv"), "text/csv");
/// assert_eq!(sniff(b"hello", "notes.pdf"), "text/plain");
/// assert_eq!(sniff(b"MZ\x90\0\x03\0", "x.pdf"), "application/vnd.microsoft.portable-executable");
/// assert_eq!(sniff(&[0x80, 0x81, 0], "x.txt"), "application/octet-stream");
/// ```
pub fn sniff(head: &[u8], name: &str) -> String {
    if let Some(t) = infer::get(head) {
        return t.mime_type().to_string();
    }
    let text = match std::str::from_utf8(head) {
        Ok(_) => true,
        // Cut inside a character at the end of the sniffed bytes: still text.
        Err(e) => e.error_len().is_none() && head.len() >= SNIFF_BYTES,
    };
    if text && !head.contains(&0) {
        let csv = name
            .rsplit_once('.')
            .is_some_and(|(_, ext)| ext.eq_ignore_ascii_case("csv"));
        return if csv { "text/csv" } else { "text/plain" }.to_string();
    }
    "application/octet-stream".to_string()
}

/// Checks a file name: trimmed, non-empty, at most [`MAX_FILE_NAME`] characters, no path separator (`/`, `\`), no
/// control character, not `.` or `..`.
///
/// # Errors
///
/// [`Error::Invalid`] on `name`.
pub fn file_name(name: &str) -> Result<String> {
    let v = crate::validate::bounded("name", name, MAX_FILE_NAME, true)?;
    if v.chars().any(|c| c.is_control()) {
        return Err(Error::invalid("name", "contains control characters"));
    }
    if v.contains(['/', '\\']) {
        return Err(Error::invalid("name", "contains a path separator"));
    }
    if v == "." || v == ".." {
        return Err(Error::invalid("name", "is not a file name"));
    }
    Ok(v)
}

/// What the host gives to attach a file (the bytes come beside it, as a [`ByteStream`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAttachment {
    /// The record the file is attached to.
    pub target: AttachedTo,
    /// The file's name as the user gave it (shown, never used as a path).
    pub name: String,
    /// Whether the partner sees it in the portal.
    pub shared_with_partner: bool,
}

record! {
    /// A file attached to a lead, partner, request, quotation or contract: its metadata (the bytes are in the
    /// [`BlobStore`] under [`Attachment::sha256`]).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Attachment {
        /// Its id.
        id: AttachmentId,
        /// The tenant.
        tenant: TenantId,
        /// The record it is attached to.
        target: AttachedTo,
        /// The file's name.
        name: String => &str = borrow,
        /// The media type sniffed from its content.
        media_type: String => &str = borrow,
        /// Its size in bytes.
        size: u64,
        /// The SHA-256 of its bytes (their address in the blob store).
        sha256: ContentHash,
        /// Who attached it.
        uploaded_by: Actor => &Actor = borrow,
        /// When.
        at: Timestamp,
        /// Whether the partner sees it in the portal.
        shared_with_partner: bool,
        /// When it was removed (its bytes stay: another attachment may have the same).
        removed_at: Option<Timestamp>,
        /// Optimistic-concurrency version.
        version: u64,
        /// When it last changed.
        updated_at: Timestamp,
    }
}

impl NewAttachment {
    /// The attachment these stored bytes become, uploaded in `ctx` (its tenant, by its actor), checked: its name (see [`file_name`]) and its media type against
    /// `policy`.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `name`, on `media_type` when `policy` does not allow it, on `content` when the file is
    /// empty or larger than the policy allows.
    pub fn record(
        self,
        ctx: &Context,
        id: AttachmentId,
        blob: StoredBlob,
        media_type: &str,
        policy: &AttachmentPolicy,
        now: Timestamp,
    ) -> Result<Attachment> {
        let name = file_name(&self.name)?;
        if blob.size == 0 {
            return Err(empty());
        }
        if blob.size > policy.max_bytes {
            return Err(too_large(policy.max_bytes));
        }
        policy.check(media_type)?;
        Ok(Attachment {
            id,
            tenant: ctx.tenant,
            target: self.target,
            name,
            media_type: media_type.to_string(),
            size: blob.size,
            sha256: blob.hash,
            uploaded_by: ctx.actor.clone(),
            at: now,
            shared_with_partner: self.shared_with_partner,
            removed_at: None,
            version: 1,
            updated_at: now,
        })
    }
}

/// [`Error::Invalid`] on `content` for an empty file.
pub fn empty() -> Error {
    Error::invalid("content", "the file is empty")
}

impl Attachment {
    /// Whether it was removed.
    pub fn is_removed(&self) -> bool {
        self.removed_at.is_some()
    }

    /// Whether `actor` may see it, `partner` being the partner its record belongs to: the tenant's side always; a
    /// partner's representative only when it is shared with the partner and is their partner's; removed ones
    /// nobody.
    pub fn visible_to(&self, actor: &Actor, partner: Option<PartnerId>) -> bool {
        if self.is_removed() {
            return false;
        }
        match actor {
            Actor::PartnerRepresentative { partner: p, .. } => {
                self.shared_with_partner && partner == Some(*p)
            }
            _ => true,
        }
    }

    fn next(&self, now: Timestamp) -> Result<Self> {
        if self.is_removed() {
            return Err(Error::not_found("attachment", self.id));
        }
        let mut next = self.clone();
        next.version += 1;
        next.updated_at = now;
        Ok(next)
    }

    /// It shared with the partner or not (version + 1).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when it was removed.
    pub fn share(&self, shared: bool, now: Timestamp) -> Result<Self> {
        let mut next = self.next(now)?;
        next.shared_with_partner = shared;
        Ok(next)
    }

    /// It removed (version + 1); its bytes stay in the blob store.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when it was removed already.
    pub fn remove(&self, now: Timestamp) -> Result<Self> {
        let mut next = self.next(now)?;
        next.removed_at = Some(now);
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_reads_back_from_its_hex() {
        let h = ContentHash::of(b"x");
        assert_eq!(h.to_string().parse::<ContentHash>().unwrap(), h);
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<ContentHash>(&json).unwrap(), h);
        for bad in ["", "ab", &"A".repeat(64), &"g".repeat(64)] {
            assert_eq!(
                bad.parse::<ContentHash>().unwrap_err().field(),
                Some("sha256")
            );
        }
    }

    #[test]
    fn names_are_checked() {
        for (bad, _) in [("", 0), ("a/b", 1), ("a\\b", 2), ("..", 3), ("a\u{7}b", 4)] {
            assert_eq!(file_name(bad).unwrap_err().field(), Some("name"), "{bad:?}");
        }
        assert_eq!(
            file_name(&"x".repeat(256)).unwrap_err().field(),
            Some("name")
        );
        assert_eq!(file_name(" offer.pdf ").unwrap(), "offer.pdf");
    }

    #[test]
    fn text_cut_inside_a_character_is_still_text() {
        let mut head = format!("a{}", "ă".repeat(SNIFF_BYTES / 2)).into_bytes();
        head.truncate(SNIFF_BYTES);
        assert!(std::str::from_utf8(&head).is_err());
        assert_eq!(sniff(&head, "a.txt"), "text/plain");
        assert_eq!(sniff(&[0xc4], "a.txt"), "application/octet-stream");
    }
}

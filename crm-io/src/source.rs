//! A CSV source as text: its encoding found (or given) and decoded while streaming, its delimiter found from the
//! header line (or given).

use std::io::{self, BufRead, BufReader, Cursor, Read};

/// The text encoding of a file to import.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Encoding {
    /// A byte-order mark if there is one; else UTF-8 when the first 64 KiB are valid UTF-8; else Windows-1250
    /// (what Romanian spreadsheets save as "CSV").
    #[default]
    Auto,
    /// UTF-8 (a byte-order mark is skipped).
    Utf8,
    /// Windows-1250 (Central European).
    Windows1250,
    /// Any WHATWG encoding label (`iso-8859-2`, `windows-1252`, `utf-16le`, …).
    Label(String),
}

impl Encoding {
    /// Parses a name: `auto`, or an encoding label.
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "auto" => Some(Self::Auto),
            "utf-8" | "utf8" => Some(Self::Utf8),
            "windows-1250" | "cp1250" => Some(Self::Windows1250),
            other => encoding_rs::Encoding::for_label(other.as_bytes())
                .map(|_| Self::Label(other.into())),
        }
    }
}

/// How many bytes the automatic detection looks at.
const SNIFF: usize = 64 * 1024;

/// The decoded text of `input` (UTF-8), the name of the encoding it was read in, and the delimiter its first line
/// suggests (delimiters are ASCII: the raw bytes tell as well as the text, and a decoder may return nothing on
/// its first read).
pub(crate) fn decoded<'a, R: Read + 'a>(
    mut input: R,
    encoding: &Encoding,
) -> io::Result<(Box<dyn Read + 'a>, &'static str, u8)> {
    let mut head = Vec::with_capacity(SNIFF);
    (&mut input).take(SNIFF as u64).read_to_end(&mut head)?;
    let bom = encoding_rs::Encoding::for_bom(&head);
    let chosen: &'static encoding_rs::Encoding = match (encoding, bom) {
        (Encoding::Auto, Some((e, _))) => e,
        (Encoding::Auto, None) => match std::str::from_utf8(&head) {
            Ok(_) => encoding_rs::UTF_8,
            // Cut inside a character at the end of the sample: still UTF-8.
            Err(e) if e.error_len().is_none() => encoding_rs::UTF_8,
            Err(_) => encoding_rs::WINDOWS_1250,
        },
        (Encoding::Utf8, _) => encoding_rs::UTF_8,
        (Encoding::Windows1250, _) => encoding_rs::WINDOWS_1250,
        (Encoding::Label(l), _) => {
            encoding_rs::Encoding::for_label(l.as_bytes()).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("unknown encoding `{l}`"),
                )
            })?
        }
    };
    let delimiter = sniff_delimiter(&head);
    let all = Cursor::new(head).chain(input);
    if chosen == encoding_rs::UTF_8 {
        // UTF-8 passes through (the CSV reader checks every record); only a byte-order mark is dropped.
        let mut all = BufReader::new(all);
        if all.fill_buf()?.starts_with(b"\xEF\xBB\xBF") {
            all.consume(3);
        }
        return Ok((Box::new(all), chosen.name(), delimiter));
    }
    let reader = encoding_rs_io::DecodeReaderBytesBuilder::new()
        .encoding(Some(chosen))
        .build(all);
    Ok((Box::new(reader), chosen.name(), delimiter))
}

/// The delimiter of a header line: the one of `,` `;` tab `|` that occurs most outside quotes (`,` on a tie or
/// when none does).
pub(crate) fn sniff_delimiter(head: &[u8]) -> u8 {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line: Vec<u8> = line.iter().copied().filter(|b| *b != 0).collect();
    let mut counts = [0usize; 4];
    let candidates = [b',', b';', b'\t', b'|'];
    let mut quoted = false;
    for b in &line {
        if *b == b'"' {
            quoted = !quoted;
        } else if !quoted {
            if let Some(i) = candidates.iter().position(|c| c == b) {
                counts[i] += 1;
            }
        }
    }
    let best = (0..4)
        .max_by_key(|i| (counts[*i], std::cmp::Reverse(*i)))
        .unwrap_or(0);
    if counts[best] == 0 {
        b','
    } else {
        candidates[best]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(bytes: &[u8], e: Encoding) -> (String, &'static str) {
        let (mut r, name, _) = decoded(bytes, &e).expect("decoded");
        let mut s = String::new();
        r.read_to_string(&mut s).expect("text");
        (s, name)
    }

    #[test]
    fn encodings_are_detected() {
        // "Brașov" and "Țară" as Windows-1250 has them: with the cedilla letters ş (0xBA) and Ţ (0xDE); ă is 0xE3.
        let cp1250 = b"name\nBra\xbaov \xdear\xe3\n";
        assert_eq!(
            text(cp1250, Encoding::Auto),
            (
                "name\nBra\u{15f}ov \u{162}ar\u{103}\n".into(),
                "windows-1250"
            )
        );
        assert_eq!(text("name\nBrașov\n".as_bytes(), Encoding::Auto).1, "UTF-8");
        let bom = b"\xEF\xBB\xBFname\n";
        assert_eq!(text(bom, Encoding::Auto), ("name\n".into(), "UTF-8"));
        assert_eq!(text(bom, Encoding::Utf8).0, "name\n");
        let utf16 = b"\xFF\xFEn\x00\n\x00";
        assert_eq!(text(utf16, Encoding::Auto), ("n\n".into(), "UTF-16LE"));
        assert_eq!(Encoding::parse("CP1250"), Some(Encoding::Windows1250));
        assert_eq!(
            Encoding::parse("latin2"),
            Some(Encoding::Label("latin2".into()))
        );
        assert_eq!(Encoding::parse("klingon"), None);
    }

    #[test]
    fn delimiters_are_found_outside_quotes() {
        assert_eq!(sniff_delimiter(b"name;city;\"a,b,c\"\n"), b';');
        assert_eq!(sniff_delimiter(b"name,city\n"), b',');
        assert_eq!(sniff_delimiter(b"name\tcity\n"), b'\t');
        assert_eq!(sniff_delimiter(b"name\n"), b',');
    }
}

//! The HTTP side of streamed downloads, shared by exports and reports: CSV
//! cells and lines, the page-at-a-time body, the download response, and
//! the event's JSON (a line of `events.jsonl` and an item of `GET /v1/events`).

use std::sync::Arc;

use actix_web::HttpResponse;
use actix_web::http::header;
use actix_web::rt::task::JoinHandle;
use actix_web::web::Bytes;
use serde::Serialize;

use crate::db::events::EventRow;
use crate::db::{Db, DbConnection};
use crate::encoding::rfc3339;
use crate::error::ApiError;

/// Header naming the `as_of` an export was produced at.
pub const AS_OF_HEADER: &str = "leeway-as-of";

/// Characters that make a spreadsheet read a cell as a formula. All ASCII,
/// like the characters that make a cell quoted: no byte of a multi-byte
/// UTF-8 character is ASCII, so cells are scanned byte by byte.
const FORMULA_PREFIXES: [u8; 6] = [b'=', b'+', b'-', b'@', b'\t', b'\r'];

/// An event as JSON.
#[derive(Debug, Serialize)]
pub struct EventJson {
    id: String,
    occurred_at: String,
    actor_id: Option<String>,
    kind: String,
    subject_type: String,
    subject_id: String,
    team_id: Option<String>,
    problem_id: Option<String>,
    data: serde_json::Value,
    sequence: Option<i64>,
    chain: Option<String>,
    chain_position: Option<i64>,
    prev_hash: Option<String>,
    hash: Option<String>,
}

impl EventJson {
    /// Converts a stored event.
    pub fn from_row(row: EventRow) -> Result<Self, ApiError> {
        Ok(Self {
            data: serde_json::from_str(&row.data)
                .map_err(|error| ApiError::Internal(error.to_string()))?,
            id: row.id,
            occurred_at: rfc3339(row.occurred_at),
            actor_id: row.actor_id,
            kind: row.kind,
            subject_type: row.subject_type,
            subject_id: row.subject_id,
            team_id: row.team_id,
            problem_id: row.problem_id,
            sequence: row.sequence,
            chain: row.chain_key,
            chain_position: row.chain_position,
            prev_hash: row.prev_hash,
            hash: row.hash,
        })
    }
}

/// One CSV cell: neutralised if a spreadsheet would run it as a formula,
/// quoted (RFC 4180) when it holds a comma, quote, CR or LF.
#[must_use]
pub fn csv_cell(value: &str) -> String {
    let mut cell = Vec::with_capacity(value.len() + 3);
    push_csv_cell(&mut cell, value);
    String::from_utf8(cell).unwrap_or_default()
}

/// Appends [`csv_cell`] of `value` to `out` without allocating.
pub fn push_csv_cell(out: &mut Vec<u8>, value: &str) {
    let bytes = value.as_bytes();
    let neutralise = bytes
        .first()
        .is_some_and(|first| FORMULA_PREFIXES.contains(first));
    let quote = bytes
        .iter()
        .any(|byte| matches!(byte, b',' | b'"' | b'\r' | b'\n'));
    if !quote {
        if neutralise {
            out.push(b'\'');
        }
        out.extend_from_slice(bytes);
        return;
    }
    out.push(b'"');
    if neutralise {
        out.push(b'\'');
    }
    for (index, part) in bytes.split(|byte| *byte == b'"').enumerate() {
        if index > 0 {
            out.extend_from_slice(b"\"\"");
        }
        out.extend_from_slice(part);
    }
    out.push(b'"');
}

/// One CSV record with its CRLF.
pub fn csv_line<S: AsRef<str>>(cells: &[S]) -> String {
    let mut line = Vec::new();
    push_csv_line(&mut line, cells);
    String::from_utf8(line).unwrap_or_default()
}

/// Appends [`csv_line`] of `cells` to `out` without allocating per cell.
pub fn push_csv_line<S: AsRef<str>>(out: &mut Vec<u8>, cells: &[S]) {
    for (index, cell) in cells.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        push_csv_cell(out, cell.as_ref());
    }
    out.extend_from_slice(b"\r\n");
}

/// What one page's read gives: its chunk and the cursor after it.
type PageRead<C, B> = Result<(B, Option<C>), ApiError>;

/// Streams pages: `fetch` turns the cursor into a chunk of bytes and the
/// next cursor (`None` after the last page), one `Db::read` per page. Each
/// page is read while the one before it is sent, so the database and the
/// socket work at the same time; at most two pages are in memory, the one
/// being sent and the one being read. Nothing is read past the page after
/// the one the client is taking.
pub fn stream_pages<C, B, F>(
    db: Db,
    header: String,
    start: C,
    fetch: F,
) -> impl futures_util::Stream<Item = Result<Bytes, ApiError>>
where
    C: Send + 'static,
    B: Into<Bytes> + Send + 'static,
    F: Fn(&mut DbConnection, C) -> Result<(B, Option<C>), ApiError> + Send + Sync + 'static,
{
    enum Step<C, B> {
        Header(String, C),
        Page(JoinHandle<PageRead<C, B>>),
        Done,
    }
    let fetch = Arc::new(fetch);
    // Starts reading the page at `cursor` now, on the blocking pool; the
    // handle is awaited when the client wants that page.
    let read = move |cursor: C| {
        let (db, fetch) = (db.clone(), Arc::clone(&fetch));
        actix_web::rt::spawn(
            async move { db.read(move |connection| fetch(connection, cursor)).await },
        )
    };
    futures_util::stream::unfold(Step::<C, B>::Header(header, start), move |step| {
        let read = read.clone();
        async move {
            match step {
                Step::Done => None,
                Step::Header(header, start) => {
                    Some((Ok(Bytes::from(header)), Step::Page(read(start))))
                }
                Step::Page(page) => {
                    let page = page.await.unwrap_or_else(|error| {
                        Err(ApiError::Internal(format!(
                            "export page task failed: {error}"
                        )))
                    });
                    match page {
                        Ok((chunk, next)) => {
                            let step = next.map_or(Step::Done, |next| Step::Page(read(next)));
                            Some((Ok(chunk.into()), step))
                        }
                        Err(error) => {
                            // The status line is sent: all that is left is to cut
                            // the body short, which the client sees as an error.
                            tracing::error!(%error, "export failed mid-stream");
                            Some((Err(error), Step::Done))
                        }
                    }
                }
            }
        }
    })
}

/// A 200 streaming `body` as a download, naming its `as_of`.
pub fn respond(
    content_type: &'static str,
    file_name: &str,
    as_of: i64,
    body: impl futures_util::Stream<Item = Result<Bytes, ApiError>> + 'static,
) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((AS_OF_HEADER, as_of.to_string()))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{file_name}\""),
        ))
        .streaming(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralised_and_quoted_cells_escaped() {
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        for cell in ["+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert!(
                csv_cell(cell).trim_start_matches('"').starts_with('\''),
                "{cell}"
            );
        }
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("line\nbreak"), "\"line\nbreak\"");
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("12.50"), "12.50");
        assert_eq!(csv_cell("-\"a\",b"), "\"'-\"\"a\"\",b\"");
        assert_eq!(csv_cell(""), "");
        assert_eq!(csv_line(&["a", "b,c", ""]), "a,\"b,c\",\r\n");
    }

    /// The byte scan agrees with the character rules it stands for, on
    /// multi-byte text too.
    #[test]
    fn csv_cells_follow_the_character_rules() {
        fn by_characters(value: &str) -> String {
            let neutralise = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
            let quote = value.contains([',', '"', '\r', '\n']);
            let prefix = if neutralise { "'" } else { "" };
            if quote {
                format!("\"{prefix}{}\"", value.replace('"', "\"\""))
            } else {
                format!("{prefix}{value}")
            }
        }
        let parts = [
            "", "a", "é", "€,", "\"", "=", "-", "\r\n", "日本", "@", "'", "\u{2028}",
        ];
        for first in parts {
            for second in parts {
                for third in parts {
                    let value = format!("{first}{second}{third}");
                    assert_eq!(csv_cell(&value), by_characters(&value), "{value:?}");
                }
            }
        }
    }
}

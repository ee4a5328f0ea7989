//! CSV for `/import`: one record type per file, a header row naming the fields of that type's
//! mutation input (or names a column mapping turns into them). Each row becomes the JSON object
//! an NDJSON line of that type would be and is parsed by the same input types, so the same
//! values are accepted and refused with the same messages.
//!
//! Conventions: a dotted name for a nested field (`amount.amount`, `amount.currency`), `;`
//! between the items of a list cell (`contactExternalIds`), one `attributes.<key>` column per
//! lead attribute, an empty cell for an absent field; `true`/`false` (also `yes`/`no`, `1`/`0`)
//! for a Boolean. Quoting is RFC 4180's: a cell in double quotes may hold commas, line breaks
//! and doubled quotes. A row's line is the line it starts on (the header is line 1).

use std::collections::HashMap;

use async_graphql::registry::{MetaType, Registry};
use async_graphql::InputType;
use serde_json::{Map, Value};

use super::mutation;
use crate::service::import::TYPES;
use crate::service::AppError;

/// The fields a CSV of `kind` may have, as dotted paths, with their GraphQL types.
fn fields_of(kind: &str) -> Result<HashMap<String, String>, AppError> {
    let mut registry = Registry::default();
    let name = match kind {
        "user" => mutation::UserInput::create_type_info(&mut registry),
        "campaign" => mutation::CampaignInput::create_type_info(&mut registry),
        "campaignCost" => mutation::CampaignCostInput::create_type_info(&mut registry),
        "lead" => mutation::LeadInput::create_type_info(&mut registry),
        "touchpoint" => mutation::TouchpointInput::create_type_info(&mut registry),
        "transition" => mutation::TransitionInput::create_type_info(&mut registry),
        "opportunity" => mutation::OpportunityInput::create_type_info(&mut registry),
        "closeOpportunity" => mutation::CloseOpportunityInput::create_type_info(&mut registry),
        "revenue" => mutation::RevenueInput::create_type_info(&mut registry),
        "account" => super::accounts::AccountInput::create_type_info(&mut registry),
        "exchangeRate" => super::currency::ExchangeRateInput::create_type_info(&mut registry),
        other => {
            return Err(AppError::BadInput(format!(
                "unknown type \"{other}\"; one of {}",
                TYPES.join(", ")
            )))
        }
    };
    let mut out = HashMap::new();
    // The qualified name ("LeadInput!").
    flatten(&registry, name.trim_end_matches('!'), "", &mut out);
    Ok(out)
}

fn flatten(registry: &Registry, type_name: &str, prefix: &str, out: &mut HashMap<String, String>) {
    let Some(MetaType::InputObject { input_fields, .. }) = registry.types.get(type_name) else {
        return;
    };
    for (name, field) in input_fields {
        let base = field.ty.trim_end_matches('!');
        let nested = matches!(registry.types.get(base), Some(MetaType::InputObject { .. }));
        if nested {
            flatten(registry, base, &format!("{prefix}{name}."), out);
        } else {
            out.insert(format!("{prefix}{name}"), field.ty.clone());
        }
    }
}

/// What a completed row turned into: the input object an NDJSON line of the file's type would
/// hold (parsed by `import::parse_object`), or why it was refused.
pub enum Row {
    Object(u64, Value),
    Refused(u64, AppError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted cell: the end of the cell, or the first of a doubled quote.
    QuotedQuote,
}

/// Reads CSV of one record type from any chunked source, parsing complete rows as they arrive:
/// memory stays bounded by one row.
pub struct CsvSplitter {
    kind: String,
    fields: HashMap<String, String>,
    /// Header name → field path, from the mapping file (a path "" ignores the column).
    rename: HashMap<String, String>,
    /// The field path of each column (None: ignored), once the header is read.
    columns: Option<Vec<Option<String>>>,
    state: State,
    cell: Vec<u8>,
    cells: Vec<Vec<u8>>,
    line: u64,
    row_line: u64,
    row_bytes: usize,
    max_row: usize,
    too_long: bool,
    /// Bytes of a UTF-8 byte-order mark matched at the start of the stream (None: past it).
    bom: Option<usize>,
    /// The last byte was a line-ending `\r` outside quotes (a `\n` right after it is part of
    /// the same line end).
    after_cr: bool,
}

/// A cell quoted in a message, cut short: a message repeats it, and up to 1,000 messages are
/// kept per import.
fn shown(cell: &str) -> String {
    match cell.char_indices().nth(64) {
        Some((at, _)) => format!("{}…", &cell[..at]),
        None => cell.to_string(),
    }
}

const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

impl CsvSplitter {
    /// The record type of the rows.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// A splitter for rows of `kind`; `rename` maps a CRM export's own headers to field paths.
    pub fn new(
        kind: &str,
        rename: HashMap<String, String>,
        max_row: usize,
    ) -> Result<CsvSplitter, AppError> {
        Ok(CsvSplitter {
            kind: kind.to_string(),
            fields: fields_of(kind)?,
            rename,
            columns: None,
            state: State::FieldStart,
            cell: Vec::new(),
            cells: Vec::new(),
            line: 1,
            row_line: 1,
            row_bytes: 0,
            max_row,
            too_long: false,
            bom: Some(0),
            after_cr: false,
        })
    }

    fn end_cell(&mut self) {
        let cell = std::mem::take(&mut self.cell);
        self.cells.push(cell);
    }

    fn end_row(&mut self, out: &mut Vec<Row>) -> Result<(), AppError> {
        self.end_cell();
        let cells = std::mem::take(&mut self.cells);
        let line = self.row_line;
        let too_long = std::mem::replace(&mut self.too_long, false);
        self.row_bytes = 0;
        self.state = State::FieldStart;
        self.row_line = self.line + 1;
        if !too_long && cells.iter().all(|c| c.trim_ascii().is_empty()) {
            return Ok(()); // a blank line, or only commas (as spreadsheets leave at the end)
        }
        if too_long && self.columns.is_none() {
            return Err(AppError::BadInput(format!(
                "the header row is longer than {} bytes",
                self.max_row
            )));
        }
        if too_long {
            out.push(Row::Refused(
                line,
                AppError::BadInput(format!("the row is longer than {} bytes", self.max_row)),
            ));
            return Ok(());
        }
        let mut texts = Vec::with_capacity(cells.len());
        for cell in cells {
            match String::from_utf8(cell) {
                Ok(t) => texts.push(t),
                Err(_) => {
                    if self.columns.is_none() {
                        return Err(AppError::BadInput("the header row is not UTF-8".into()));
                    }
                    out.push(Row::Refused(
                        line,
                        AppError::BadInput("the row is not UTF-8".into()),
                    ));
                    return Ok(());
                }
            }
        }
        match &self.columns {
            None => self.read_header(texts),
            Some(columns) => {
                out.push(match self.row(columns, texts) {
                    Ok(object) => Row::Object(line, object),
                    Err(e) => Row::Refused(line, e),
                });
                Ok(())
            }
        }
    }

    /// The header: every column a field of the type (or mapped to one, or ignored by the
    /// mapping); without a mapping an unknown column is refused, as it is most likely a typo.
    fn read_header(&mut self, names: Vec<String>) -> Result<(), AppError> {
        let names: Vec<String> = names.iter().map(|n| n.trim().to_string()).collect();
        // Fields the mapping gives from a column of another name: a column named like one of
        // them is ignored, the mapping being the explicit choice.
        let mapped: std::collections::HashSet<&String> = names
            .iter()
            .filter_map(|n| self.rename.get(n).filter(|p| !p.is_empty() && *p != n))
            .collect();
        let mut columns = Vec::with_capacity(names.len());
        let mut seen = std::collections::HashSet::new();
        for name in &names {
            let name = name.clone();
            let path = match self.rename.get(&name) {
                Some(p) if p.is_empty() => None,
                Some(p) => Some(p.clone()),
                None if mapped.contains(&name) => None,
                None if self.known(&name) => Some(name.clone()),
                None if !self.rename.is_empty() => None,
                None => {
                    let mut known: Vec<&str> = self.fields.keys().map(String::as_str).collect();
                    known.sort_unstable();
                    return Err(AppError::BadInput(format!(
                        "column \"{name}\" is no field of a {} (fields: {}; attributes.<key> for a lead's attributes; a mapping file renames other headers)",
                        self.kind,
                        known.join(", ")
                    )));
                }
            };
            if let Some(p) = &path {
                if !self.known(p) {
                    return Err(AppError::BadInput(format!(
                        "the mapping sends column \"{name}\" to \"{p}\", which is no field of a {}",
                        self.kind
                    )));
                }
                if !seen.insert(p.clone()) {
                    return Err(AppError::BadInput(format!(
                        "two columns give the field \"{p}\""
                    )));
                }
            }
            columns.push(path);
        }
        self.columns = Some(columns);
        Ok(())
    }

    fn known(&self, path: &str) -> bool {
        self.fields.contains_key(path)
            || path
                .strip_prefix("attributes.")
                .is_some_and(|key| !key.is_empty() && self.fields.contains_key("attributes"))
    }

    /// A row as the input object an NDJSON line would hold.
    fn row(&self, columns: &[Option<String>], cells: Vec<String>) -> Result<Value, AppError> {
        if cells.len() != columns.len() {
            return Err(AppError::BadInput(format!(
                "the row has {} cells and the header {} columns",
                cells.len(),
                columns.len()
            )));
        }
        let mut object = Map::new();
        let mut attributes = Vec::new();
        for (path, cell) in columns.iter().zip(cells) {
            let Some(path) = path else { continue };
            if cell.is_empty() {
                continue;
            }
            if let Some(key) = path.strip_prefix("attributes.") {
                attributes.push(serde_json::json!({ "key": key, "value": cell }));
                continue;
            }
            let value = self.value(path, cell)?;
            let mut at = &mut object;
            let mut parts = path.split('.').peekable();
            while let Some(part) = parts.next() {
                if parts.peek().is_none() {
                    at.insert(part.to_string(), value);
                    break;
                }
                let next = at
                    .entry(part.to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                at = match next {
                    Value::Object(m) => m,
                    _ => return Err(AppError::BadInput(format!("\"{part}\" is given twice"))),
                };
            }
        }
        if !attributes.is_empty() {
            object.insert("attributes".into(), Value::Array(attributes));
        }
        Ok(Value::Object(object))
    }

    /// A cell as the JSON value its field's type reads.
    fn value(&self, path: &str, cell: String) -> Result<Value, AppError> {
        let ty = self
            .fields
            .get(path)
            .map(String::as_str)
            .unwrap_or("String");
        let base = ty.trim_end_matches('!');
        if base.starts_with('[') {
            return Ok(Value::Array(
                cell.split(';')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| Value::String(s.to_string()))
                    .collect(),
            ));
        }
        Ok(match base {
            "Boolean" => match cell.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" => Value::Bool(true),
                "false" | "no" | "0" => Value::Bool(false),
                _ => {
                    return Err(AppError::BadInput(format!(
                        "\"{path}\" is true or false, not \"{}\"",
                        shown(&cell)
                    )))
                }
            },
            "Int" => cell.trim().parse::<i64>().map(Value::from).map_err(|_| {
                AppError::BadInput(format!(
                    "\"{path}\" is an integer, not \"{}\"",
                    shown(&cell)
                ))
            })?,
            _ => Value::String(cell),
        })
    }

    /// Feeds a chunk; returns the rows it completed. An error is the header's: nothing of the
    /// file can be read.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<Row>, AppError> {
        let mut out = Vec::new();
        for &b in chunk {
            if let Some(matched) = self.bom {
                if b == BOM[matched] {
                    self.bom = (matched + 1 < BOM.len()).then_some(matched + 1);
                    continue;
                }
                self.bom = None;
            }
            let after_cr = std::mem::replace(&mut self.after_cr, false);
            if self.state != State::Quoted && (b == b'\n' || b == b'\r') {
                if b == b'\n' && after_cr {
                    continue; // the \n of a \r\n
                }
                self.after_cr = b == b'\r';
                self.end_row(&mut out)?;
                self.line += 1;
                continue;
            }
            if b == b'\n' {
                self.line += 1;
            }
            self.row_bytes += 1;
            if self.row_bytes > self.max_row {
                self.too_long = true;
                self.cell.clear();
                self.cells.clear();
            }
            let keep = !self.too_long;
            match (self.state, b) {
                (State::FieldStart, b'"') => self.state = State::Quoted,
                (State::FieldStart | State::Unquoted, b',') => {
                    self.end_cell();
                    self.state = State::FieldStart;
                }
                (State::FieldStart | State::Unquoted, _) => {
                    if keep {
                        self.cell.push(b);
                    }
                    self.state = State::Unquoted;
                }
                (State::Quoted, b'"') => self.state = State::QuotedQuote,
                (State::Quoted, _) => {
                    if keep {
                        self.cell.push(b);
                    }
                }
                (State::QuotedQuote, b'"') => {
                    if keep {
                        self.cell.push(b'"');
                    }
                    self.state = State::Quoted;
                }
                (State::QuotedQuote, b',') => {
                    self.end_cell();
                    self.state = State::FieldStart;
                }
                (State::QuotedQuote, _) => {
                    // Text after a closing quote: kept, as most CSV readers do.
                    if keep {
                        self.cell.push(b);
                    }
                    self.state = State::Unquoted;
                }
            }
        }
        Ok(out)
    }

    /// The last row, when the input does not end with a line break.
    pub fn end(&mut self) -> Result<Vec<Row>, AppError> {
        let mut out = Vec::new();
        if self.state == State::Quoted {
            let line = self.row_line;
            if self.columns.is_none() {
                return Err(AppError::BadInput(
                    "the header row ends inside a quoted cell".into(),
                ));
            }
            self.cells.clear();
            self.cell.clear();
            out.push(Row::Refused(
                line,
                AppError::BadInput("the row ends inside a quoted cell".into()),
            ));
            return Ok(out);
        }
        if !self.cell.is_empty() || !self.cells.is_empty() || self.too_long {
            self.end_row(&mut out)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(kind: &str, text: &str, chunk: usize) -> Vec<Result<String, (u64, String)>> {
        let mut s = CsvSplitter::new(kind, HashMap::new(), 1 << 20).unwrap();
        let mut lines = Vec::new();
        for part in text.as_bytes().chunks(chunk) {
            lines.extend(s.feed(part).unwrap());
        }
        lines.extend(s.end().unwrap());
        lines
            .into_iter()
            .map(|l| match l {
                Row::Object(n, o) => Ok(format!("{n}: {o}")),
                Row::Refused(n, e) => Err((n, e.message())),
            })
            .collect()
    }

    #[test]
    fn quoted_cells_keep_commas_line_breaks_and_quotes_in_any_chunking() {
        let text = "externalId,fullName,company,createdAt\r\n\
                    L1,\"Doe, Jane\",\"Acme \"\"West\"\"\",2026-03-01T00:00:00Z\r\n\
                    L2,\"two\nlines\",,2026-03-02T00:00:00Z\n\n\
                    L3,x,y\n";
        for chunk in [1, 3, 7, 1000] {
            let got = rows("lead", text, chunk);
            assert_eq!(got.len(), 3, "{got:?}");
            let first = got[0].as_ref().unwrap();
            assert!(first.starts_with("2: "), "{first}");
            assert!(
                first.contains("Doe, Jane") && first.contains("Acme \\\"West\\\""),
                "{first}"
            );
            let second = got[1].as_ref().unwrap();
            assert!(
                second.starts_with("3: ") && second.contains("two\\nlines"),
                "{second}"
            );
            let (line, message) = got[2].as_ref().unwrap_err();
            assert_eq!(*line, 6);
            assert!(message.contains("3 cells and the header 4"), "{message}");
        }
    }

    #[test]
    fn a_bom_bare_carriage_returns_and_comma_only_lines() {
        let text = "\u{feff}\"externalId\",createdAt\rL1,2026-03-01T00:00:00Z\r,,\r\n \nL2,2026-03-02T00:00:00Z";
        for chunk in [1, 2, 1000] {
            let got = rows("lead", text, chunk);
            assert_eq!(got.len(), 2, "{got:?}");
            assert!(got[0].as_ref().unwrap().starts_with("2: "), "{got:?}");
            assert!(got[1].as_ref().unwrap().starts_with("5: "), "{got:?}");
        }
    }

    #[test]
    fn a_mapped_column_wins_over_one_named_like_its_field_and_messages_stay_short() {
        let rename = HashMap::from([("Email Address".to_string(), "email".to_string())]);
        let mut s = CsvSplitter::new("lead", rename, 1 << 20).unwrap();
        let lines = s
            .feed(b"externalId,email,Email Address,createdAt\nL1,old@x.y,new@x.y,2026-03-01T00:00:00Z\n")
            .unwrap();
        match &lines[..] {
            [Row::Object(2, o)] => assert_eq!(o["email"], "new@x.y", "{o}"),
            _ => panic!("one row expected"),
        }
        let long = "x".repeat(10_000);
        let got = rows(
            "closeOpportunity",
            &format!("externalId,won,closedAt\nO1,{long},2026-03-05T00:00:00Z\n"),
            1000,
        );
        assert!(got[0].as_ref().unwrap_err().1.len() < 200, "{got:?}");
        let mut s = CsvSplitter::new("lead", HashMap::new(), 16).unwrap();
        assert!(
            s.feed(b"externalId,createdAt,fullName\n").is_err(),
            "a header over the limit refuses the file"
        );
    }

    #[test]
    fn nested_list_and_boolean_fields() {
        let text = "externalId,name,primaryContactExternalId,contactExternalIds,amount.amount,amount.currency,createdAt\n\
                    O1,Deal,L1,L2; L3,1200.50,USD,2026-03-01T00:00:00Z\n";
        let got = rows("opportunity", text, 5);
        let first = got[0].as_ref().unwrap();
        assert!(
            first.contains(r#""contactExternalIds":["L2","L3"]"#),
            "{first}"
        );
        assert!(
            first.contains(r#""amount":{"amount":"1200.50","currency":"USD"}"#),
            "{first}"
        );
        let got = rows(
            "closeOpportunity",
            "externalId,won,closedAt\nO1,yes,2026-03-05T00:00:00Z\nO2,maybe,2026-03-05T00:00:00Z\n",
            4,
        );
        assert!(
            got[0].as_ref().unwrap().contains(r#""won":true"#),
            "{got:?}"
        );
        assert!(
            got[1].as_ref().unwrap_err().1.contains("true or false"),
            "{got:?}"
        );
    }

    #[test]
    fn an_unknown_column_refuses_the_file_unless_a_mapping_names_the_others() {
        let mut s = CsvSplitter::new("lead", HashMap::new(), 1 << 20).unwrap();
        let e = s.feed(b"externalId,emial\n").err().unwrap();
        assert!(e.message().contains("column \"emial\""), "{}", e.message());
        let rename = HashMap::from([
            ("Contact ID".to_string(), "externalId".to_string()),
            ("Email Address".to_string(), "email".to_string()),
            ("Create Date".to_string(), "createdAt".to_string()),
            ("Lifecycle".to_string(), "attributes.lifecycle".to_string()),
        ]);
        let mut s = CsvSplitter::new("lead", rename, 1 << 20).unwrap();
        let mut lines = s
            .feed(b"Contact ID,Email Address,Phone,Create Date,Lifecycle\nC1,a@b.co,555,2026-03-01T00:00:00Z,customer\n")
            .unwrap();
        lines.extend(s.end().unwrap());
        match &lines[..] {
            [Row::Object(2, o)] => {
                let text = o.to_string();
                assert!(
                    text.contains("a@b.co") && text.contains("lifecycle") && !text.contains("555"),
                    "{text}"
                );
            }
            _ => panic!("one record expected"),
        }
    }
}

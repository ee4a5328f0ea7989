//! One NDJSON line of `/import` to a typed record: the line is the mutation's input object
//! plus a `type`, parsed by the very input types of the schema (same scalars, same errors).

use async_graphql::{InputType, Pos};
use serde_json::Value;

use super::mutation;
use crate::service::import::{Record, TYPES};
use crate::service::AppError;

fn parse<T: InputType>(value: async_graphql::Value) -> Result<T, AppError> {
    T::parse(Some(value))
        .map_err(|e| AppError::BadInput(e.into_server_error(Pos::default()).message))
}

/// Parses one line. Errors are the line's own (`BAD_USER_INPUT`).
pub fn parse_line(text: &str) -> Result<Record, AppError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| AppError::BadInput(format!("the line is not JSON: {e}")))?;
    let Value::Object(mut object) = value else {
        return Err(AppError::BadInput(
            "a line is a JSON object with a \"type\"".into(),
        ));
    };
    let kind = match object.remove("type") {
        Some(Value::String(kind)) => kind,
        _ => {
            return Err(AppError::BadInput(format!(
                "the line has no \"type\"; one of {}",
                TYPES.join(", ")
            )))
        }
    };
    parse_object(&kind, Value::Object(object))
}

/// Parses a record of `kind` from its input object (an NDJSON line without its `type`, or a
/// CSV row).
pub fn parse_object(kind: &str, object: Value) -> Result<Record, AppError> {
    let input = async_graphql::Value::from_json(object)
        .map_err(|e| AppError::BadInput(format!("the record is not a valid input: {e}")))?;
    Ok(match kind {
        "user" => Record::User(parse::<mutation::UserInput>(input)?.into()),
        "campaign" => Record::Campaign(parse::<mutation::CampaignInput>(input)?.into()),
        "campaignCost" => Record::CampaignCost(parse::<mutation::CampaignCostInput>(input)?.into()),
        "lead" => Record::Lead(parse::<mutation::LeadInput>(input)?.into()),
        "touchpoint" => Record::Touchpoint(parse::<mutation::TouchpointInput>(input)?.into()),
        "transition" => Record::Transition(parse::<mutation::TransitionInput>(input)?.into()),
        "opportunity" => Record::Opportunity(parse::<mutation::OpportunityInput>(input)?.into()),
        "closeOpportunity" => {
            Record::CloseOpportunity(parse::<mutation::CloseOpportunityInput>(input)?.into())
        }
        "revenue" => Record::Revenue(parse::<mutation::RevenueInput>(input)?.into()),
        "account" => Record::Account(parse::<super::accounts::AccountInput>(input)?.into()),
        "exchangeRate" => {
            Record::ExchangeRate(parse::<super::currency::ExchangeRateInput>(input)?.into())
        }
        other => {
            return Err(AppError::BadInput(format!(
                "unknown type \"{other}\"; one of {}",
                TYPES.join(", ")
            )))
        }
    })
}

/// Reads NDJSON from any chunked source, parsing complete lines as they arrive and handing
/// them on in batches: memory stays bounded by one batch and one line.
pub struct LineSplitter {
    pending: Vec<u8>,
    next_line: u64,
    max_line: usize,
    skipping: bool,
}

/// What a completed line turned into.
pub enum Line {
    Record(u64, Record),
    Refused(u64, AppError),
}

impl LineSplitter {
    pub fn new(max_line: usize) -> LineSplitter {
        LineSplitter {
            pending: Vec::new(),
            next_line: 1,
            max_line,
            skipping: false,
        }
    }

    fn finish(&mut self, bytes: &[u8], out: &mut Vec<Line>) {
        let number = self.next_line;
        self.next_line += 1;
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t.trim(),
            Err(_) => {
                out.push(Line::Refused(
                    number,
                    AppError::BadInput("the line is not UTF-8".into()),
                ));
                return;
            }
        };
        if text.is_empty() {
            return;
        }
        out.push(match parse_line(text) {
            Ok(record) => Line::Record(number, record),
            Err(e) => Line::Refused(number, e),
        });
    }

    /// Feeds a chunk; returns the lines it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Line> {
        let mut out = Vec::new();
        let mut rest = chunk;
        while !rest.is_empty() {
            match rest.iter().position(|b| *b == b'\n') {
                Some(at) => {
                    if self.skipping {
                        // The end of a line already refused as too long.
                        self.skipping = false;
                    } else if self.pending.is_empty() {
                        self.finish(&rest[..at], &mut out);
                    } else {
                        self.pending.extend_from_slice(&rest[..at]);
                        let line = std::mem::take(&mut self.pending);
                        self.finish(&line, &mut out);
                    }
                    rest = &rest[at + 1..];
                }
                None => {
                    if !self.skipping {
                        if self.pending.len() + rest.len() > self.max_line {
                            out.push(Line::Refused(
                                self.next_line,
                                AppError::BadInput(format!(
                                    "the line is longer than {} bytes",
                                    self.max_line
                                )),
                            ));
                            self.next_line += 1;
                            self.pending.clear();
                            self.skipping = true;
                        } else {
                            self.pending.extend_from_slice(rest);
                        }
                    }
                    rest = &[];
                }
            }
        }
        out
    }

    /// The last line, when the input does not end with a newline.
    pub fn end(&mut self) -> Vec<Line> {
        let mut out = Vec::new();
        if self.skipping {
            return out;
        }
        let line = std::mem::take(&mut self.pending);
        self.finish(&line, &mut out);
        out
    }
}

/// CSV rows of one type as records, parsed like NDJSON lines of that type.
fn records_of(kind: &str, rows: Vec<super::csv::Row>) -> Vec<Line> {
    rows.into_iter()
        .map(|row| match row {
            super::csv::Row::Object(n, object) => match parse_object(kind, object) {
                Ok(record) => Line::Record(n, record),
                Err(e) => Line::Refused(n, e),
            },
            super::csv::Row::Refused(n, e) => Line::Refused(n, e),
        })
        .collect()
}

/// How the stream is cut into records.
enum Splitter {
    Ndjson(LineSplitter),
    Csv(Box<super::csv::CsvSplitter>),
}

/// A batch being written: its size, and the lines it refused.
type Writing =
    tokio::task::JoinHandle<Result<(u64, Vec<crate::service::import::LineError>), AppError>>;

/// Drives an import: feed it chunks as they arrive; full batches are written as they fill,
/// one at a time and in order, while the next one is read and parsed (at most two batches in
/// memory).
pub struct Importer {
    ctx: crate::service::Ctx,
    splitter: Splitter,
    batch: Vec<(u64, Record)>,
    writing: Option<Writing>,
    pub summary: crate::service::import::Summary,
}

impl Importer {
    pub fn new(ctx: crate::service::Ctx, max_line: usize) -> Importer {
        Importer {
            ctx,
            splitter: Splitter::Ndjson(LineSplitter::new(max_line)),
            batch: Vec::with_capacity(crate::service::import::BATCH),
            writing: None,
            summary: Default::default(),
        }
    }

    /// An import of CSV rows of one record type (see `graphql::csv`), with the mapping of a
    /// CRM export's own headers to field names (empty: the header holds the field names).
    pub fn csv(
        ctx: crate::service::Ctx,
        max_row: usize,
        kind: &str,
        mapping: std::collections::HashMap<String, String>,
    ) -> Result<Importer, AppError> {
        let splitter = super::csv::CsvSplitter::new(kind, mapping, max_row)?;
        Ok(Importer {
            ctx,
            splitter: Splitter::Csv(Box::new(splitter)),
            batch: Vec::with_capacity(crate::service::import::BATCH),
            writing: None,
            summary: Default::default(),
        })
    }

    async fn take(&mut self, lines: Vec<Line>) -> Result<(), AppError> {
        for line in lines {
            self.summary.lines += 1;
            match line {
                Line::Record(number, record) => {
                    self.batch.push((number, record));
                    if self.batch.len() >= crate::service::import::BATCH {
                        self.flush().await?;
                    }
                }
                Line::Refused(number, e) => self
                    .summary
                    .refuse(crate::service::import::LineError::new(number, &e)),
            }
        }
        Ok(())
    }

    /// Starts writing the batch read so far, once the one before it is written.
    async fn flush(&mut self) -> Result<(), AppError> {
        self.written().await?;
        let batch = std::mem::replace(
            &mut self.batch,
            Vec::with_capacity(crate::service::import::BATCH),
        );
        if batch.is_empty() {
            return Ok(());
        }
        let ctx = self.ctx.clone();
        self.writing = Some(tokio::spawn(async move {
            let size = batch.len() as u64;
            let refused = crate::service::import::apply_batch(&ctx, batch).await?;
            Ok((size, refused))
        }));
        Ok(())
    }

    /// Waits for the batch being written and counts what it did.
    async fn written(&mut self) -> Result<(), AppError> {
        let Some(writing) = self.writing.take() else {
            return Ok(());
        };
        let (size, refused) = writing
            .await
            .map_err(|e| AppError::Internal(format!("an import batch stopped: {e}")))??;
        self.summary.applied += size - refused.len() as u64;
        for e in refused {
            self.summary.refuse(e);
        }
        Ok(())
    }

    /// Feeds the next chunk of the stream. An error refuses the whole stream (a CSV header
    /// that names no field): nothing after it is read.
    pub async fn feed(&mut self, chunk: &[u8]) -> Result<(), AppError> {
        let lines = match &mut self.splitter {
            Splitter::Ndjson(s) => s.feed(chunk),
            Splitter::Csv(s) => match s.feed(chunk) {
                Ok(rows) => records_of(s.kind(), rows),
                Err(e) => {
                    // The batch being written lands (or not) before the refusal is answered.
                    self.written().await.ok();
                    return Err(e);
                }
            },
        };
        self.take(lines).await
    }

    /// Ends the stream: the last line and the last batch.
    pub async fn finish(mut self) -> Result<crate::service::import::Summary, AppError> {
        let lines = match &mut self.splitter {
            Splitter::Ndjson(s) => s.end(),
            Splitter::Csv(s) => match s.end() {
                Ok(rows) => records_of(s.kind(), rows),
                Err(e) => {
                    self.written().await.ok();
                    return Err(e);
                }
            },
        };
        self.take(lines).await?;
        self.flush().await?;
        self.written().await?;
        self.summary.settle();
        Ok(self.summary)
    }
}

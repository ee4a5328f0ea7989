//! The credit fact table's file formats (SPEC §11): Parquet for warehouses and CSV, each
//! written row group by row group (or line by line) to any writer, so a table of millions of
//! rows streams through bounded memory. Used by `GET /export/credits.*` and by
//! `funnelgraph export credits`.
//!
//! Parquet types, chosen to load as they are into DuckDB, BigQuery and Snowflake: strings as
//! UTF-8 `BYTE_ARRAY (STRING)`; instants as `INT64 TIMESTAMP(MICROS, UTC)`; the booking day as
//! `INT32 DATE`; `weight` as `INT64 DECIMAL(18,9)` (billionths of a conversion: BigQuery's
//! NUMERIC scale); the amount as `amount_minor` (INT64) and `amount` (`INT64 DECIMAL(18,d)`,
//! d the reporting currency's minor digits). Snappy-compressed (the pure-Rust `snap`).

use std::io::Write;
use std::sync::Arc;

use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, Int32Type, Int64Type};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;

use crate::domain::money::{minor_digits, Money};
use crate::service::credits::{CreditExport, CreditRow, Totals, WEIGHT_DIGITS};

/// Rows per Parquet row group: about 10–20 MB of rows held while a group is written.
const ROW_GROUP: usize = 64 * 1024;

/// The format of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Parquet,
    Csv,
}

impl Format {
    pub fn parse(text: &str) -> Option<Format> {
        match text {
            "parquet" => Some(Format::Parquet),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Parquet => "application/vnd.apache.parquet",
            Format::Csv => "text/csv; charset=utf-8",
        }
    }
    pub fn extension(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::Csv => "csv",
        }
    }
}

/// The columns, in order (the CSV header, the Parquet schema's fields).
pub const COLUMNS: [&str; 18] = [
    "conversion_kind",
    "conversion_id",
    "revenue_event",
    "stage",
    "converted_at",
    "booked_on",
    "lead",
    "account",
    "opportunity",
    "touchpoint",
    "touched_at",
    "campaign",
    "channel",
    "model",
    "weight",
    "amount_minor",
    "amount",
    "currency",
];

/// The Parquet schema of a table in a currency of `digits` minor digits.
pub fn parquet_schema(digits: u32) -> String {
    format!(
        "message credit {{
  required binary conversion_kind (STRING);
  optional binary conversion_id (STRING);
  optional binary revenue_event (STRING);
  required binary stage (STRING);
  optional int64 converted_at (TIMESTAMP(MICROS,true));
  optional int32 booked_on (DATE);
  optional binary lead (STRING);
  optional binary account (STRING);
  optional binary opportunity (STRING);
  optional binary touchpoint (STRING);
  optional int64 touched_at (TIMESTAMP(MICROS,true));
  optional binary campaign (STRING);
  optional binary channel (STRING);
  required binary model (STRING);
  required int64 weight (DECIMAL(18,{WEIGHT_DIGITS}));
  required int64 amount_minor;
  required int64 amount (DECIMAL(18,{digits}));
  required binary currency (STRING);
}}"
    )
}

/// The writer's error as I/O, keeping the kind of an I/O error underneath (a client gone).
fn io_error(e: parquet::errors::ParquetError) -> std::io::Error {
    match e {
        parquet::errors::ParquetError::External(inner) => {
            match inner.downcast::<std::io::Error>() {
                Ok(io) => *io,
                Err(other) => std::io::Error::other(other),
            }
        }
        other => std::io::Error::other(other.to_string()),
    }
}

/// Writes the table to `out` in `format`; returns what its rows add up to.
pub fn write(
    export: &CreditExport,
    format: Format,
    out: impl Write + Send,
) -> std::io::Result<Totals> {
    match format {
        Format::Parquet => write_parquet(export, out),
        Format::Csv => write_csv(export, out),
    }
}

fn write_parquet(export: &CreditExport, out: impl Write + Send) -> std::io::Result<Totals> {
    let digits = minor_digits(&export.currency);
    let schema =
        parquet::schema::parser::parse_message_type(&parquet_schema(digits)).map_err(io_error)?;
    let metadata = vec![
        KeyValue::new("funnelgraph.model".to_string(), export.model_label.clone()),
        KeyValue::new(
            "funnelgraph.stage".to_string(),
            export.stage.as_str().to_string(),
        ),
        KeyValue::new(
            "funnelgraph.from".to_string(),
            export.period.from.to_string(),
        ),
        KeyValue::new("funnelgraph.to".to_string(), export.period.to.to_string()),
        KeyValue::new("funnelgraph.currency".to_string(), export.currency.clone()),
    ];
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by(format!("funnelgraph {}", env!("CARGO_PKG_VERSION")))
        .set_key_value_metadata(Some(metadata))
        .build();
    let mut writer =
        SerializedFileWriter::new(out, Arc::new(schema), Arc::new(props)).map_err(io_error)?;
    let mut group: Vec<CreditRow> = Vec::with_capacity(ROW_GROUP);
    let fixed = Fixed {
        stage: export.stage.as_str(),
        model: &export.model_label,
        currency: &export.currency,
    };
    let totals = export.rows(|row| {
        group.push(row);
        if group.len() == ROW_GROUP {
            write_group(&mut writer, &group, &fixed)?;
            group.clear();
        }
        Ok(())
    })?;
    if !group.is_empty() {
        write_group(&mut writer, &group, &fixed)?;
    }
    writer.close().map_err(io_error)?;
    Ok(totals)
}

/// The columns every row of a table shares.
struct Fixed<'a> {
    stage: &'a str,
    model: &'a str,
    currency: &'a str,
}

fn bytes(text: &str) -> ByteArray {
    ByteArray::from(text.as_bytes().to_vec())
}

fn micros(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_micros()
}

/// Days since 1970-01-01 (Parquet's DATE).
fn epoch_day(d: chrono::NaiveDate) -> i32 {
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    i32::try_from((d - epoch).num_days()).unwrap_or(i32::MAX)
}

/// An optional column's values and definition levels.
fn optional<T>(rows: &[CreditRow], get: impl Fn(&CreditRow) -> Option<T>) -> (Vec<T>, Vec<i16>) {
    let mut values = Vec::with_capacity(rows.len());
    let mut levels = Vec::with_capacity(rows.len());
    for r in rows {
        match get(r) {
            Some(v) => {
                values.push(v);
                levels.push(1);
            }
            None => levels.push(0),
        }
    }
    (values, levels)
}

fn write_group<W: Write + Send>(
    writer: &mut SerializedFileWriter<W>,
    rows: &[CreditRow],
    fixed: &Fixed,
) -> std::io::Result<()> {
    let mut group = writer.next_row_group().map_err(io_error)?;
    let mut index = 0;
    let repeated = |text: &str| vec![bytes(text); rows.len()];
    let text =
        |get: fn(&CreditRow) -> Option<&String>| optional(rows, |r| get(r).map(|s| bytes(s)));
    while let Some(mut column) = group.next_column().map_err(io_error)? {
        let written = match index {
            0 => column.typed::<ByteArrayType>().write_batch(
                &rows
                    .iter()
                    .map(|r| bytes(r.kind.as_str()))
                    .collect::<Vec<_>>(),
                None,
                None,
            ),
            3 => column
                .typed::<ByteArrayType>()
                .write_batch(&repeated(fixed.stage), None, None),
            13 => column
                .typed::<ByteArrayType>()
                .write_batch(&repeated(fixed.model), None, None),
            17 => {
                column
                    .typed::<ByteArrayType>()
                    .write_batch(&repeated(fixed.currency), None, None)
            }
            4 | 10 => {
                let (values, levels) = optional(rows, |r| {
                    if index == 4 {
                        r.converted_at.map(micros)
                    } else {
                        r.touched_at.map(micros)
                    }
                });
                column
                    .typed::<Int64Type>()
                    .write_batch(&values, Some(&levels), None)
            }
            5 => {
                let (values, levels) = optional(rows, |r| r.booked_on.map(epoch_day));
                column
                    .typed::<Int32Type>()
                    .write_batch(&values, Some(&levels), None)
            }
            14 => column.typed::<Int64Type>().write_batch(
                &rows.iter().map(|r| r.weight).collect::<Vec<_>>(),
                None,
                None,
            ),
            15 | 16 => column.typed::<Int64Type>().write_batch(
                &rows.iter().map(|r| r.amount).collect::<Vec<_>>(),
                None,
                None,
            ),
            _ => {
                let (values, levels) = match index {
                    1 => text(|r| r.conversion_id.as_ref()),
                    2 => text(|r| r.revenue_event.as_ref()),
                    6 => text(|r| r.lead.as_ref()),
                    7 => text(|r| r.account.as_ref()),
                    8 => text(|r| r.opportunity.as_ref()),
                    9 => text(|r| r.touchpoint.as_ref()),
                    11 => text(|r| r.campaign.as_ref()),
                    _ => text(|r| r.channel.as_ref()),
                };
                column
                    .typed::<ByteArrayType>()
                    .write_batch(&values, Some(&levels), None)
            }
        };
        written.map_err(io_error)?;
        column.close().map_err(io_error)?;
        index += 1;
    }
    group.close().map_err(io_error)?;
    Ok(())
}

/// One CSV field, quoted when it must be (RFC 4180).
pub fn csv_field(value: &str) -> std::borrow::Cow<'_, str> {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\"")).into()
    } else {
        value.into()
    }
}

/// One CSV line of `fields`, CRLF-terminated.
pub fn csv_line<S: AsRef<str>>(fields: &[S]) -> String {
    let mut line = String::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        line.push_str(&csv_field(f.as_ref()));
    }
    line.push_str("\r\n");
    line
}

/// An instant as RFC 3339 in UTC, to the microsecond.
fn instant(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn write_csv(export: &CreditExport, out: impl Write + Send) -> std::io::Result<Totals> {
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, out);
    out.write_all(csv_line(&COLUMNS).as_bytes())?;
    let stage = export.stage.as_str();
    let currency = &export.currency;
    let totals = export.rows(|r| {
        let weight = crate::domain::money::format_units(i128::from(r.weight), WEIGHT_DIGITS);
        let line = csv_line(&[
            r.kind.as_str().to_string(),
            r.conversion_id.unwrap_or_default(),
            r.revenue_event.unwrap_or_default(),
            stage.to_string(),
            r.converted_at.map(instant).unwrap_or_default(),
            r.booked_on.map(|d| d.to_string()).unwrap_or_default(),
            r.lead.unwrap_or_default(),
            r.account.unwrap_or_default(),
            r.opportunity.unwrap_or_default(),
            r.touchpoint.unwrap_or_default(),
            r.touched_at.map(instant).unwrap_or_default(),
            r.campaign.unwrap_or_default(),
            r.channel.unwrap_or_default(),
            export.model_label.clone(),
            weight,
            r.amount.to_string(),
            Money(r.amount).to_decimal_string(currency),
            currency.clone(),
        ]);
        out.write_all(line.as_bytes())
    })?;
    out.flush()?;
    Ok(totals)
}

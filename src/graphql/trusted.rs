//! Trusted documents (SPEC §11): a manifest `{ "<sha256 hex>": "<document>" }` that an
//! operator ships with a dashboard or BI tool. Each entry is checked once, at start-up: its
//! hash against its text, then parsed, sized by the precheck and validated against the schema,
//! every operation in it. A request naming one by `documentId: "sha256:<hex>"` then runs the
//! document parsed at start-up and skips the precheck, parsing and validation; with
//! `FUNNELGRAPH_TRUSTED_ONLY=true` nothing else runs.
//!
//! What a trusted request still gets: authentication, the permission gate and every
//! resolver's scope, the page-size bound (`first` ≤ 500) and the request time bound. What a
//! trusted query skips is what its entry already passed: its depth, and its complexity with
//! every `Int` variable at the largest page (500), the worst any request can send. A trusted
//! mutation is still validated with its variables: a variable of the wrong type must refuse
//! the whole request before any root field writes (SPEC §7), not fail at the second one.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};
use sha2::{Digest, Sha256};

use super::precheck::{self, DocumentLimits};
use super::AppSchema;

/// Marks a request that runs a trusted document: validation is skipped (`bounds`).
pub struct TrustedRequest;

/// Marks a request made only to validate a document: execution is skipped (`bounds`).
pub struct ValidateOnly;

/// One operation of a trusted document.
#[derive(Debug, Clone)]
pub struct TrustedOperation {
    /// Its name (None: the document's only, anonymous operation).
    pub name: Option<String>,
    pub kind: OperationType,
    /// A name for metrics: its own name, else its first root field.
    pub label: String,
    /// What a request running it (a mutation, validated per request) adds to its variables:
    /// the other operations' `Int` variables at the largest page, which async-graphql's
    /// validation sizes too. Its own variables are never among them.
    pub others: serde_json::Map<String, serde_json::Value>,
}

/// A document of the manifest, checked.
#[derive(Debug)]
pub struct TrustedDocument {
    pub text: String,
    pub document: ExecutableDocument,
    pub operations: Vec<TrustedOperation>,
}

impl TrustedDocument {
    /// The operation a request selects by name (None: the only one), as the executor would.
    pub fn operation(&self, name: Option<&str>) -> Option<&TrustedOperation> {
        match name {
            Some(n) => self
                .operations
                .iter()
                .find(|o| o.name.as_deref() == Some(n)),
            None if self.operations.len() == 1 => self.operations.first(),
            None => None,
        }
    }
}

/// The manifest's documents by hash, and whether only they may run.
#[derive(Debug, Default)]
pub struct TrustedDocuments {
    by_hash: HashMap<String, Arc<TrustedDocument>>,
    /// `FUNNELGRAPH_TRUSTED_ONLY`: any other document is refused.
    pub only: bool,
}

/// The SHA-256 of a document's text (its UTF-8 bytes, exactly as written), in lower-case hex.
pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The hex of a document id: `sha256:<hex>` (or, in a manifest, the bare hex); None when it
/// is not 64 hex digits.
pub fn id_hex(id: &str) -> Option<String> {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}

/// Runs a validation-only execution, which never waits (no resolver runs, no I/O): polled
/// once, in or out of an async runtime. A future that did wait is an error, never a spin.
fn finish<F: std::future::Future>(future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(out) => Some(out),
        std::task::Poll::Pending => None,
    }
}

/// The variables a trusted operation is validated with: every `Int` variable at the largest
/// page (a page size is the only argument the complexity bound reads), so the bounds are
/// checked for the worst any request can send; the others are left out (validation reads no
/// other value).
/// (async-graphql sizes every operation of a document with the request's variables, so the
/// other operations' `Int` variables are given too. A name the validated operation declares
/// with another type is left out, so the operation sharing it cannot be sized then: such a
/// document is refused, naming the variable.)
fn worst_case_variables(
    document: &ExecutableDocument,
    name: Option<&str>,
) -> async_graphql::Variables {
    use async_graphql::parser::types::BaseType;
    let is_int = |def: &async_graphql::parser::types::VariableDefinition| matches!(&def.var_type.node.base, BaseType::Named(t) if t.as_str() == "Int");
    let mut own: HashMap<String, bool> = HashMap::new();
    let mut variables = serde_json::Map::new();
    for (op_name, op) in document.operations.iter() {
        let selected = op_name.map(|n| n.as_str()) == name || name.is_none();
        for def in &op.node.variable_definitions {
            let var = def.node.name.node.to_string();
            if selected {
                own.insert(var.clone(), is_int(&def.node));
            }
            if is_int(&def.node) {
                variables.insert(var, serde_json::json!(super::ids::MAX_PAGE));
            }
        }
    }
    variables.retain(|var, _| own.get(var).copied().unwrap_or(true));
    async_graphql::Variables::from_json(serde_json::Value::Object(variables))
}

/// The variables an operation declares.
fn own_variables(document: &ExecutableDocument, name: Option<&str>) -> Vec<String> {
    document
        .operations
        .iter()
        .filter(|(op_name, _)| name.is_none() || op_name.map(|n| n.as_str()) == name)
        .flat_map(|(_, op)| op.node.variable_definitions.iter())
        .map(|def| def.node.name.node.to_string())
        .collect()
}

/// Checks a document as a trusted one must be: it parses, passes the precheck, and every
/// operation in it validates against the schema. Returns the checked document, or
/// every problem found, one per line.
pub fn check(
    schema: &AppSchema,
    text: &str,
    limits: DocumentLimits,
) -> Result<TrustedDocument, String> {
    let document = async_graphql::parser::parse_query(text).map_err(|e| e.to_string())?;
    let names: Vec<Option<String>> = match &document.operations {
        DocumentOperations::Single(_) => vec![None],
        DocumentOperations::Multiple(map) => {
            let mut names: Vec<Option<String>> = map.keys().map(|n| Some(n.to_string())).collect();
            names.sort();
            names
        }
    };
    let mut operations = Vec::new();
    let mut problems = Vec::new();
    for name in names {
        let checked = match precheck::check(text, name.as_deref(), limits) {
            Ok(c) => c,
            Err(refusal) => {
                problems.push(refusal.message);
                continue;
            }
        };
        let mut request = async_graphql::Request::new(text)
            .data(ValidateOnly)
            .variables(worst_case_variables(&document, name.as_deref()));
        if let Some(n) = &name {
            request = request.operation_name(n.clone());
        }
        let Some(response) = finish(schema.execute(request)) else {
            problems.push("the schema could not validate it without waiting".into());
            continue;
        };
        if !response.errors.is_empty() {
            let of = name
                .as_deref()
                .map(|n| format!("operation {n}: "))
                .unwrap_or_default();
            problems.extend(response.errors.iter().map(|e| format!("{of}{}", e.message)));
            continue;
        }
        let Some(kind) = checked.operation else {
            problems.push("the document has no operation of that name".into());
            continue;
        };
        let others = match worst_case_variables(&document, name.as_deref()).into_value() {
            async_graphql::Value::Object(map) => {
                let own: Vec<String> = own_variables(&document, name.as_deref());
                map.into_iter()
                    .filter(|(k, _)| !own.iter().any(|o| o == k.as_str()))
                    .map(|(k, v)| (k.to_string(), v.into_json().unwrap_or_default()))
                    .collect()
            }
            _ => serde_json::Map::new(),
        };
        operations.push(TrustedOperation {
            others,
            label: name
                .clone()
                .or_else(|| checked.root_field.clone())
                .unwrap_or_else(|| "anonymous".into()),
            name,
            kind,
        });
    }
    if !problems.is_empty() {
        return Err(problems.join("\n"));
    }
    Ok(TrustedDocument {
        text: text.to_string(),
        document,
        operations,
    })
}

impl TrustedDocuments {
    /// Reads and checks the manifest at `path`; any entry whose hash is not that of its text,
    /// or that fails `check`, refuses the whole manifest with what is wrong.
    pub fn load(
        path: &str,
        schema: &AppSchema,
        limits: DocumentLimits,
        only: bool,
    ) -> Result<TrustedDocuments, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        let mut docs =
            TrustedDocuments::parse(&text, schema, limits).map_err(|e| format!("{path}: {e}"))?;
        docs.only = only;
        Ok(docs)
    }

    /// Checks a manifest's text.
    pub fn parse(
        manifest: &str,
        schema: &AppSchema,
        limits: DocumentLimits,
    ) -> Result<TrustedDocuments, String> {
        let entries: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(manifest).map_err(|e| {
                format!("a manifest is a JSON object of SHA-256 hashes to documents ({e})")
            })?;
        let mut by_hash = HashMap::new();
        for (key, value) in entries {
            let hex = id_hex(&key).ok_or_else(|| {
                format!("entry {key}: a key is the document's SHA-256 in hex (64 digits)")
            })?;
            let text = value
                .as_str()
                .ok_or_else(|| format!("entry {key}: the document must be a string"))?;
            let actual = sha256_hex(text);
            if actual != hex {
                return Err(format!(
                    "entry {key}: its document's SHA-256 is {actual}; the manifest does not match its text"
                ));
            }
            let doc = check(schema, text, limits).map_err(|e| format!("entry {key}: {e}"))?;
            by_hash.insert(hex, Arc::new(doc));
        }
        Ok(TrustedDocuments {
            by_hash,
            only: false,
        })
    }

    /// Adds the documents of `other` (the same text has the same hash: nothing conflicts).
    pub fn extend(&mut self, other: TrustedDocuments) {
        self.by_hash.extend(other.by_hash);
    }

    /// The document a request names (`sha256:<hex>`).
    pub fn get(&self, id: &str) -> Option<&Arc<TrustedDocument>> {
        self.by_hash.get(&id_hex(id)?)
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

/// `funnelgraph documents extract`: the manifest of some `.graphql` files, each file one
/// document (its text exactly as written), checked as the server will check it. Returns the
/// manifest's JSON and each file's id.
pub fn extract(
    schema: &AppSchema,
    files: &[(String, String)],
) -> Result<(String, Vec<(String, String)>), String> {
    let mut manifest = BTreeMap::new();
    let mut ids = Vec::new();
    let mut problems = Vec::new();
    for (name, text) in files {
        let hex = sha256_hex(text);
        match check(schema, text, DocumentLimits::default()) {
            Ok(_) => {
                ids.push((name.clone(), format!("sha256:{hex}")));
                manifest.insert(hex, serde_json::Value::String(text.clone()));
            }
            Err(e) => problems.push(format!("{name}: {e}")),
        }
    }
    if !problems.is_empty() {
        return Err(problems.join("\n"));
    }
    let json = serde_json::to_string_pretty(&manifest).map_err(|e| e.to_string())?;
    Ok((json, ids))
}

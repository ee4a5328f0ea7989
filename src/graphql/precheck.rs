//! Cheap checks on a GraphQL document before async-graphql sees it (issue 6).
//!
//! async-graphql 7.2 parses with a recursive-descent (pest) grammar and expands fragments while
//! it checks depth and complexity, so a 1 KB *fragment bomb* (24 fragments each spreading the
//! next twice: 2^24 fields) costs seconds of CPU before any limit fires, and 10,000 nested
//! brackets can exhaust the stack. These checks run first and are linear in the document:
//!
//! 1. a lexical scan bounds bracket nesting (`{`, `[`, `(`) before any recursive parser runs;
//! 2. the parsed document's *expanded* size (fields after inlining every fragment spread) is
//!    computed with one memoised pass over the fragments, so a bomb is sized, not expanded;
//!    fragment cycles are refused on the way.

use std::collections::HashMap;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};

/// Bounds of the precheck.
#[derive(Debug, Clone, Copy)]
pub struct DocumentLimits {
    /// Deepest nesting of brackets anywhere in the document (selections, lists, objects).
    pub max_nesting: usize,
    /// Most field selections the document may expand to once fragments are inlined.
    pub max_fields: u64,
    /// Most names (identifiers) in the document text, counted before parsing: a parser
    /// costs time per token, so a huge document is refused before it is parsed.
    pub max_names: usize,
}

impl Default for DocumentLimits {
    fn default() -> Self {
        DocumentLimits {
            max_nesting: 64,
            max_fields: 5_000,
            max_names: 15_000,
        }
    }
}

/// Why a document was refused: the client's fault, with the code it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub message: String,
    /// `QUERY_TOO_COMPLEX` for a document over a bound, `BAD_USER_INPUT` for a malformed one.
    pub code: &'static str,
    /// A syntax error: the executor reports it again, with its location.
    pub syntax: bool,
}

impl Refusal {
    fn too_complex(message: String) -> Refusal {
        Refusal {
            message,
            code: "QUERY_TOO_COMPLEX",
            syntax: false,
        }
    }
    fn bad(message: String) -> Refusal {
        Refusal {
            message,
            code: "BAD_USER_INPUT",
            syntax: false,
        }
    }
    fn syntax(message: String) -> Refusal {
        Refusal {
            syntax: true,
            ..Refusal::bad(message)
        }
    }
}

/// What the precheck learned about an accepted document.
#[derive(Debug, Clone)]
pub struct Checked {
    pub document: ExecutableDocument,
    /// The type of the operation the request selects (None when the name matches none; the
    /// executor reports that).
    pub operation: Option<OperationType>,
    /// Field selections after expanding fragments.
    pub expanded_fields: u64,
    /// A name for metrics: the only operation's own name, else the selected operation's
    /// first root field.
    pub root_field: Option<String>,
}

/// Documents already accepted, by their text and operation name: clients send the same few
/// documents again and again (with other variables), and lexing, parsing and sizing one
/// costs more than the rest of a small request's GraphQL work. The answer depends only on
/// the text, the name and the server's fixed limits, so a remembered one is exact. Refusals
/// are not stored; past the capacity the cache starts again empty.
#[derive(Default)]
pub struct DocumentCache {
    entries: std::sync::Mutex<HashMap<String, std::sync::Arc<Checked>>>,
}

/// Documents remembered at most, and the longest text remembered (a longer one is
/// checked every time: it is rare, and would crowd out the small ones).
const DOCUMENT_CACHE_CAPACITY: usize = 1_000;
const DOCUMENT_CACHE_MAX_LEN: usize = 16 * 1024;

impl DocumentCache {
    /// `check`, answered from memory when this document was accepted before.
    pub fn check(
        &self,
        query: &str,
        operation_name: Option<&str>,
        limits: DocumentLimits,
    ) -> Result<std::sync::Arc<Checked>, Refusal> {
        if query.len() > DOCUMENT_CACHE_MAX_LEN {
            return check(query, operation_name, limits).map(std::sync::Arc::new);
        }
        // A name never holds NUL, so `name NUL text` and `NUL text` cannot collide.
        let key = format!("{}\0{query}", operation_name.unwrap_or(""));
        if let Some(hit) = self.lock().get(&key) {
            return Ok(hit.clone());
        }
        let checked = std::sync::Arc::new(check(query, operation_name, limits)?);
        let mut entries = self.lock();
        if entries.len() >= DOCUMENT_CACHE_CAPACITY {
            entries.clear();
        }
        entries.insert(key, checked.clone());
        Ok(checked)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, std::sync::Arc<Checked>>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a lexical pass over a document finds, skipping strings, block strings and comments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexed {
    /// Deepest bracket nesting.
    pub depth: usize,
    /// Names (identifiers), including keywords.
    pub names: usize,
}

/// Deepest bracket nesting of a document (see [`lex`]).
pub fn nesting_depth(text: &str, limit: usize) -> usize {
    lex(text, limit, usize::MAX).depth
}

/// One linear pass over the document; stops as soon as a limit is passed.
pub fn lex(text: &str, max_depth: usize, max_names: usize) -> Lexed {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut deepest = 0usize;
    let mut names = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'_' | b'a'..=b'z' | b'A'..=b'Z' => {
                names += 1;
                if names > max_names {
                    break;
                }
                while i + 1 < bytes.len()
                    && matches!(bytes[i + 1], b'_' | b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9')
                {
                    i += 1;
                }
            }
            b'0'..=b'9' => {
                // A number (or the tail of one): not a name.
                while i + 1 < bytes.len() && bytes[i + 1].is_ascii_alphanumeric() {
                    i += 1;
                }
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    // An escaped triple quote inside a block string.
                    if bytes[i..].starts_with(b"\\\"\"\"") {
                        i += 4;
                    } else {
                        i += 1;
                    }
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                deepest = deepest.max(depth);
                if deepest > max_depth {
                    break;
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Lexed {
        depth: deepest,
        names,
    }
}

/// Checks a document; on success returns it parsed, ready to hand to the executor.
pub fn check(
    query: &str,
    operation_name: Option<&str>,
    limits: DocumentLimits,
) -> Result<Checked, Refusal> {
    let lexed = lex(query, limits.max_nesting, limits.max_names);
    if lexed.depth > limits.max_nesting {
        return Err(Refusal::too_complex(format!(
            "the document nests brackets deeper than {} levels",
            limits.max_nesting
        )));
    }
    if lexed.names > limits.max_names {
        return Err(Refusal::too_complex(format!(
            "the document has more than {} names; split it into smaller requests",
            limits.max_names
        )));
    }
    let document = async_graphql::parser::parse_query(query)
        .map_err(|e| Refusal::syntax(format!("syntax error: {e}")))?;
    let expanded_fields = expanded_size(&document, limits.max_fields)?;
    let operation = selected_operation(&document, operation_name);
    let named = match (&document.operations, operation_name) {
        (DocumentOperations::Multiple(map), None) if map.len() == 1 => {
            map.keys().next().map(|n| n.to_string())
        }
        _ => None,
    };
    let root_field = match (&document.operations, operation_name) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(map), Some(name)) => map.get(name),
        (DocumentOperations::Multiple(map), None) => map.values().next(),
    }
    .and_then(|op| {
        op.node
            .selection_set
            .node
            .items
            .iter()
            .find_map(|item| match &item.node {
                Selection::Field(f) => Some(f.node.name.node.to_string()),
                _ => None,
            })
    });
    Ok(Checked {
        document,
        operation,
        expanded_fields,
        root_field: named.or(root_field),
    })
}

fn selected_operation(doc: &ExecutableDocument, name: Option<&str>) -> Option<OperationType> {
    match (&doc.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(map), Some(name)) => map.get(name).map(|op| op.node.ty),
        (DocumentOperations::Multiple(map), None) if map.len() == 1 => {
            map.values().next().map(|op| op.node.ty)
        }
        (DocumentOperations::Multiple(_), None) => None,
    }
}

/// Field selections of the whole document with every fragment spread inlined, computed
/// with memoisation so each fragment is sized once. Refuses as soon as `max` is passed.
pub fn expanded_size(doc: &ExecutableDocument, max: u64) -> Result<u64, Refusal> {
    #[derive(Clone, Copy)]
    enum State {
        InProgress,
        Done(u64),
    }
    struct Sizer<'a> {
        doc: &'a ExecutableDocument,
        memo: HashMap<&'a str, State>,
        max: u64,
    }
    impl<'a> Sizer<'a> {
        fn over(&self) -> Refusal {
            Refusal::too_complex(format!(
                "the document expands to more than {} fields once fragments are inlined",
                self.max
            ))
        }
        fn fragment(&mut self, name: &'a str) -> Result<u64, Refusal> {
            match self.memo.get(name) {
                Some(State::Done(n)) => return Ok(*n),
                Some(State::InProgress) => {
                    return Err(Refusal::bad(format!(
                        "fragment {name} spreads itself (a fragment cycle)"
                    )))
                }
                None => {}
            }
            // An unknown fragment is the validator's to report; it adds nothing here.
            let Some(def) = self.doc.fragments.get(name) else {
                return Ok(0);
            };
            self.memo.insert(name, State::InProgress);
            let n = self.set(&def.node.selection_set.node)?;
            self.memo.insert(name, State::Done(n));
            Ok(n)
        }
        fn set(&mut self, set: &'a SelectionSet) -> Result<u64, Refusal> {
            let mut total: u64 = 0;
            for item in &set.items {
                let n = match &item.node {
                    Selection::Field(f) => {
                        1u64.saturating_add(self.set(&f.node.selection_set.node)?)
                    }
                    Selection::FragmentSpread(s) => {
                        self.fragment(s.node.fragment_name.node.as_str())?
                    }
                    Selection::InlineFragment(i) => self.set(&i.node.selection_set.node)?,
                };
                total = total.saturating_add(n);
                if total > self.max {
                    return Err(self.over());
                }
            }
            Ok(total)
        }
    }
    let mut sizer = Sizer {
        doc,
        memo: HashMap::new(),
        max,
    };
    let mut total: u64 = 0;
    for (_, op) in doc.operations.iter() {
        total = total.saturating_add(sizer.set(&op.node.selection_set.node)?);
        if total > max {
            return Err(sizer.over());
        }
    }
    // Fragments no operation uses still cost validation time: size them too.
    let names: Vec<&str> = doc.fragments.keys().map(|n| n.as_str()).collect();
    for name in names {
        if sizer.memo.contains_key(name) {
            continue;
        }
        total = total.saturating_add(sizer.fragment(name)?.min(max));
        if total > max.saturating_mul(2) {
            return Err(sizer.over());
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bomb(levels: usize) -> String {
        let mut q = String::from("query { ...F0 }\n");
        for i in 0..levels {
            q.push_str(&format!(
                "fragment F{i} on Query {{ ...F{} ...F{} }}\n",
                i + 1,
                i + 1
            ));
        }
        q.push_str(&format!("fragment F{levels} on Query {{ me {{ id }} }}\n"));
        q
    }

    #[test]
    fn a_fragment_bomb_is_sized_without_expanding_it() {
        let q = bomb(24);
        assert!(q.len() < 1500, "the bomb is about 1 KB: {}", q.len());
        let refusal = check(&q, None, DocumentLimits::default()).err();
        assert_eq!(refusal.map(|r| r.code), Some("QUERY_TOO_COMPLEX"));
    }

    #[test]
    fn a_small_fragment_tree_is_accepted_with_its_expanded_size() {
        let checked = check(&bomb(3), None, DocumentLimits::default()).ok();
        // 2^3 copies of `me { id }` = 16 fields.
        assert_eq!(checked.map(|c| c.expanded_fields), Some(16));
    }

    #[test]
    fn fragment_cycles_are_refused_as_bad_input() {
        let q = "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }";
        let refusal = check(q, None, DocumentLimits::default()).err();
        assert_eq!(refusal.map(|r| r.code), Some("BAD_USER_INPUT"));
    }

    #[test]
    fn deep_brackets_are_refused_before_parsing() {
        let q = format!("query {}{}", "{ me ".repeat(10_000), "}".repeat(10_000));
        let refusal = check(&q, None, DocumentLimits::default()).err();
        assert_eq!(refusal.map(|r| r.code), Some("QUERY_TOO_COMPLEX"));
        let q = format!(
            "query {{ lead(externalId: {}\"x\"{}) {{ id }} }}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert!(check(&q, None, DocumentLimits::default()).is_err());
    }

    #[test]
    fn brackets_inside_strings_and_comments_do_not_count() {
        let q = format!(
            "# {}\nquery {{ lead(externalId: \"{}\") {{ id }} campaign(externalId: \"\"\"{}\"\"\") {{ id }} }}",
            "{".repeat(500),
            "[".repeat(500),
            "(".repeat(500)
        );
        assert_eq!(nesting_depth(&q, 64), 2);
    }

    #[test]
    fn twenty_thousand_aliases_are_refused() {
        let mut q = String::from("query {");
        for i in 0..20_000 {
            q.push_str(&format!(" a{i}: me {{ id }}"));
        }
        q.push('}');
        let refusal = check(&q, None, DocumentLimits::default()).err();
        assert_eq!(refusal.map(|r| r.code), Some("QUERY_TOO_COMPLEX"));
    }

    #[test]
    fn names_are_counted_outside_strings_and_comments() {
        let lexed = lex(
            "query Q($a: Int = 12) { me { id } } # not counted\n \"nor this\"",
            64,
            100,
        );
        assert_eq!(lexed, Lexed { depth: 2, names: 6 });
    }

    #[test]
    fn the_selected_operation_type_is_reported() {
        let q = "query A { me { id } } mutation B { setMqlThreshold(points: 1) }";
        let c = check(q, Some("B"), DocumentLimits::default()).ok();
        assert_eq!(c.and_then(|c| c.operation), Some(OperationType::Mutation));
        let c = check(q, None, DocumentLimits::default()).ok();
        assert_eq!(c.and_then(|c| c.operation), None);
    }
}

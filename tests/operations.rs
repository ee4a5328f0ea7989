//! Role × operation, generated from the schema (issue 6): every root field of `schema.graphql`
//! must be named in the permission table (`auth::policy::OPERATIONS`), and every role the table
//! does not allow is refused with FORBIDDEN over HTTP, changing nothing. A field added to the
//! schema without a table entry fails here, and is refused to everyone by the gate meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeSet, HashMap};

use async_graphql::parser::types::{BaseType, Type, TypeKind, TypeSystemDefinition};
use funnelgraph::auth::policy::{may_call, OPERATIONS};
use funnelgraph::auth::ROLES;
use serde_json::json;

/// What the test needs of the SDL: root fields, input objects, enums, and which names are
/// output objects (so a selection set is needed).
/// A root field: its type (Query or Mutation), name, arguments, and return type.
type RootField = (String, String, Vec<(String, Type)>, Type);

struct Sdl {
    roots: Vec<RootField>,
    inputs: HashMap<String, Vec<(String, Type)>>,
    enums: HashMap<String, String>,
    composite: BTreeSet<String>,
}

fn sdl() -> Sdl {
    let text =
        std::fs::read_to_string(format!("{}/schema.graphql", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let doc = async_graphql::parser::parse_schema(&text).unwrap();
    let mut out = Sdl {
        roots: Vec::new(),
        inputs: HashMap::new(),
        enums: HashMap::new(),
        composite: BTreeSet::new(),
    };
    for def in doc.definitions {
        let TypeSystemDefinition::Type(t) = def else {
            continue;
        };
        let name = t.node.name.node.to_string();
        match t.node.kind {
            TypeKind::Object(o) => {
                out.composite.insert(name.clone());
                if name == "Query" || name == "Mutation" {
                    for f in o.fields {
                        let args = f
                            .node
                            .arguments
                            .iter()
                            .map(|a| (a.node.name.node.to_string(), a.node.ty.node.clone()))
                            .collect();
                        out.roots.push((
                            name.clone(),
                            f.node.name.node.to_string(),
                            args,
                            f.node.ty.node.clone(),
                        ));
                    }
                }
            }
            TypeKind::Interface(_) | TypeKind::Union(_) => {
                out.composite.insert(name);
            }
            TypeKind::Enum(e) => {
                out.enums
                    .insert(name, e.values[0].node.value.node.to_string());
            }
            TypeKind::InputObject(i) => {
                let fields = i
                    .fields
                    .iter()
                    .filter(|f| f.node.default_value.is_none())
                    .map(|f| (f.node.name.node.to_string(), f.node.ty.node.clone()))
                    .collect();
                out.inputs.insert(name, fields);
            }
            TypeKind::Scalar => {}
        }
    }
    out
}

fn base_name(ty: &Type) -> &str {
    match &ty.base {
        BaseType::Named(n) => n.as_str(),
        BaseType::List(inner) => base_name(inner),
    }
}

/// A value of `ty` that parses and coerces: the test is about who may call, not what.
fn dummy(sdl: &Sdl, ty: &Type) -> String {
    if let BaseType::List(inner) = &ty.base {
        return format!("[{}]", dummy(sdl, inner));
    }
    let name = base_name(ty);
    match name {
        "ID" | "String" => "\"probe\"".into(),
        "Int" => "1".into(),
        "Float" => "1.5".into(),
        "Boolean" => "true".into(),
        "Date" => "\"2026-01-01\"".into(),
        "DateTime" => "\"2026-01-01T00:00:00Z\"".into(),
        "Decimal" => "\"1.00\"".into(),
        _ if sdl.enums.contains_key(name) => sdl.enums[name].clone(),
        _ if name == "PeriodInput" => "{ from: \"2026-01-01\", to: \"2026-04-01\" }".into(),
        _ => {
            let fields: Vec<String> = sdl.inputs[name]
                .iter()
                .filter(|(_, t)| !t.nullable)
                .map(|(n, t)| format!("{n}: {}", dummy(sdl, t)))
                .collect();
            format!("{{ {} }}", fields.join(", "))
        }
    }
}

fn document(sdl: &Sdl, kind: &str, field: &str, args: &[(String, Type)], ty: &Type) -> String {
    let args: Vec<String> = args
        .iter()
        .filter(|(_, t)| !t.nullable)
        .map(|(n, t)| format!("{n}: {}", dummy(sdl, t)))
        .collect();
    let args = if args.is_empty() {
        String::new()
    } else {
        format!("({})", args.join(", "))
    };
    let selection = if sdl.composite.contains(base_name(ty)) {
        " { __typename }"
    } else {
        ""
    };
    let op = if kind == "Mutation" {
        "mutation"
    } else {
        "query"
    };
    format!("{op} {{ {field}{args}{selection} }}")
}

#[test]
fn the_permission_table_names_exactly_the_schema_root_fields() {
    let sdl = sdl();
    let in_schema: BTreeSet<String> = sdl
        .roots
        .iter()
        .map(|(kind, field, _, _)| format!("{kind}.{field}"))
        .collect();
    let in_table: BTreeSet<String> = OPERATIONS.iter().map(|(n, _)| n.to_string()).collect();
    let missing: Vec<_> = in_schema.difference(&in_table).collect();
    let stale: Vec<_> = in_table.difference(&in_schema).collect();
    assert!(
        missing.is_empty(),
        "root fields without a permission entry (add them to auth::policy::OPERATIONS): {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "entries for fields the schema no longer has: {stale:?}"
    );
}

both_databases! {
    fn every_role_is_refused_every_operation_the_table_does_not_allow(app) {
        let sdl = sdl();
        let audit = || app.admin("{ auditLog(first: 1) { totalCount } }", json!({}))["data"]["auditLog"]["totalCount"].as_i64().unwrap();
        let probes: Vec<(String, String, String)> = sdl
            .roots
            .iter()
            .map(|(kind, field, args, ty)| (format!("{kind}.{field}"), field.clone(), document(&sdl, kind, field, args, ty)))
            .collect();
        // First every refused pair: nothing may be written by any of them.
        let before = audit();
        let mut denied = 0;
        for (operation, field, doc) in &probes {
            for role in ROLES.into_iter().filter(|r| !may_call(*r, operation)) {
                denied += 1;
                let v = app.gql_with(&app.token("probe-user", role), doc, json!({}));
                let refused = v["errors"].as_array().into_iter().flatten().any(|e| {
                    e["extensions"]["code"] == "FORBIDDEN" && e["path"] == json!([field])
                });
                assert!(refused, "{role:?} must be refused {operation}: {doc} -> {v}");
                assert!(v["data"].get(field.as_str()).is_none_or(|d| d.is_null()), "{role:?} {operation}: {v}");
            }
        }
        assert_eq!(audit(), before, "refused operations wrote nothing");
        // Then every allowed pair: the gate lets it through, and whatever the probe's data
        // earns (NOT_FOUND, BAD_USER_INPUT, a scope's FORBIDDEN) carries a code and is never
        // INTERNAL.
        let mut allowed = 0;
        for (operation, _, doc) in &probes {
            for role in ROLES.into_iter().filter(|r| may_call(*r, operation)) {
                allowed += 1;
                let v = app.gql_with(&app.token("probe-user", role), doc, json!({}));
                for e in v["errors"].as_array().into_iter().flatten() {
                    let message = e["message"].as_str().unwrap_or("");
                    assert!(!message.contains("may not call"), "{role:?} is allowed {operation}: {v}");
                    let code = e["extensions"]["code"].as_str().unwrap_or("<none>");
                    assert!(code != "INTERNAL" && code != "<none>", "{role:?} {operation}: {v}");
                }
            }
        }
        eprintln!("[figure] role x operation: {denied} refused, {allowed} allowed, over {} operations", probes.len());
        assert_eq!(denied + allowed, probes.len() * ROLES.len());
        assert!(denied > 50 && allowed > 50, "{denied} denied, {allowed} allowed");
    }
}

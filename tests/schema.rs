//! The committed `schema.graphql` is what the code serves, and it covers the contract.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use async_graphql::parser::parse_schema;
use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};

#[test]
fn the_committed_schema_matches_the_code() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).unwrap();
    let served = funnelgraph::graphql::sdl();
    assert!(
        committed == served,
        "schema.graphql is stale: run `cargo run -- export-schema > schema.graphql`"
    );
}

/// Field name → type (with `!`/`[]`), and argument name → type, per type name.
type Shape = HashMap<String, (String, HashMap<String, String>)>;

fn shapes(sdl: &str) -> HashMap<String, (String, Shape)> {
    let doc = parse_schema(sdl).expect("valid SDL");
    let mut out = HashMap::new();
    for def in doc.definitions {
        let TypeSystemDefinition::Type(t) = def else {
            continue;
        };
        let t = t.node;
        let name = t.name.node.to_string();
        let (kind, fields): (&str, Shape) = match t.kind {
            TypeKind::Object(o) => (
                "type",
                o.fields
                    .into_iter()
                    .map(|f| {
                        let f = f.node;
                        let args = f
                            .arguments
                            .into_iter()
                            .map(|a| (a.node.name.node.to_string(), a.node.ty.node.to_string()))
                            .collect();
                        (f.name.node.to_string(), (f.ty.node.to_string(), args))
                    })
                    .collect(),
            ),
            TypeKind::Interface(o) => (
                "interface",
                o.fields
                    .into_iter()
                    .map(|f| {
                        let f = f.node;
                        (
                            f.name.node.to_string(),
                            (f.ty.node.to_string(), HashMap::new()),
                        )
                    })
                    .collect(),
            ),
            TypeKind::InputObject(o) => (
                "input",
                o.fields
                    .into_iter()
                    .map(|f| {
                        let f = f.node;
                        (
                            f.name.node.to_string(),
                            (f.ty.node.to_string(), HashMap::new()),
                        )
                    })
                    .collect(),
            ),
            TypeKind::Enum(e) => (
                "enum",
                e.values
                    .into_iter()
                    .map(|v| {
                        (
                            v.node.value.node.to_string(),
                            (String::new(), HashMap::new()),
                        )
                    })
                    .collect(),
            ),
            TypeKind::Scalar => ("scalar", HashMap::new()),
            TypeKind::Union(_) => ("union", HashMap::new()),
        };
        out.insert(name, (kind.to_string(), fields));
    }
    out
}

/// The parts of the contract the server does not serve yet, each with the issue that adds it.
const PENDING: &[&str] = &[];

#[test]
fn the_schema_covers_the_contract() {
    let contract = shapes(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/contract.graphql"
        ))
        .unwrap(),
    );
    let schema = shapes(&funnelgraph::graphql::sdl());
    let mut missing = Vec::new();
    for (name, (kind, fields)) in &contract {
        let Some((skind, sfields)) = schema.get(name) else {
            if !PENDING.contains(&name.as_str()) {
                missing.push(format!("{kind} {name}"));
            }
            continue;
        };
        assert_eq!(kind, skind, "{name} is a {skind}, the contract says {kind}");
        for (field, (ty, args)) in fields {
            let label = format!("{name}.{field}");
            let Some((sty, sargs)) = sfields.get(field) else {
                if !PENDING.contains(&label.as_str()) {
                    missing.push(label);
                }
                continue;
            };
            let compatible = sty == ty || (kind != "input" && *sty == format!("{ty}!"));
            if !compatible {
                missing.push(format!("{label} is {sty}, the contract says {ty}"));
            }
            for (arg, aty) in args {
                match sargs.get(arg) {
                    None => missing.push(format!("{label}({arg})")),
                    Some(saty) if saty != aty && saty != aty.trim_end_matches('!') => {
                        missing.push(format!("{label}({arg}) is {saty}, the contract says {aty}"))
                    }
                    _ => {}
                }
            }
        }
    }
    missing.sort();
    assert!(
        missing.is_empty(),
        "the schema lacks parts of the contract:\n{}",
        missing.join("\n")
    );
}

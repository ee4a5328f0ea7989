#!/bin/sh
# Refreshes the GraphiQL page's files in assets/graphiql/ from the npm registry (SPEC §10:
# GraphiQL served by the binary, no request leaving the machine). Pinned versions; the
# packages' licences are kept beside their files, and SHA256SUMS records what was vendored.
# Run from the repository root; needs npm and tar. Then `cargo build` embeds them.
set -eu
GRAPHIQL=3.8.3
REACT=18.3.1
out=assets/graphiql
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "graphiql@$GRAPHIQL" "react@$REACT" "react-dom@$REACT" >/dev/null)
for p in "graphiql-$GRAPHIQL" "react-$REACT" "react-dom-$REACT"; do
  mkdir -p "$tmp/$p"
  tar xzf "$tmp/$p.tgz" -C "$tmp/$p"
done
mkdir -p "$out"
cp "$tmp/graphiql-$GRAPHIQL/package/graphiql.min.js" "$tmp/graphiql-$GRAPHIQL/package/graphiql.min.css" "$out/"
cp "$tmp/graphiql-$GRAPHIQL/package/LICENSE" "$out/LICENSE.graphiql"
cp "$tmp/react-$REACT/package/umd/react.production.min.js" "$out/"
cp "$tmp/react-$REACT/package/LICENSE" "$out/LICENSE.react"
cp "$tmp/react-dom-$REACT/package/umd/react-dom.production.min.js" "$out/"
cp "$tmp/react-dom-$REACT/package/LICENSE" "$out/LICENSE.react-dom"
cat > "$out/VERSIONS" <<V
graphiql $GRAPHIQL (MIT): graphiql.min.js, graphiql.min.css (graphql-js bundled in)
react $REACT (MIT): react.production.min.js
react-dom $REACT (MIT): react-dom.production.min.js
Refreshed by scripts/vendor-graphiql.sh from the npm registry.
V
(cd "$out" && sha256sum graphiql.min.js graphiql.min.css react.production.min.js react-dom.production.min.js > SHA256SUMS)
echo "vendored into $out:"
ls -l "$out"

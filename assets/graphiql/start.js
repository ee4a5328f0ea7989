// funnelgraph's GraphiQL: the vendored GraphiQL, React and ReactDOM (assets/graphiql), talking
// to this server's /graphql and nothing else. Paste a token (`funnelgraph token`, or the dev
// tokens `serve --dev` prints) into the Headers tab.
(function () {
  var root = document.getElementById('graphiql');
  var fetcher = GraphiQL.createFetcher({ url: window.location.pathname });
  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultHeaders: '{"Authorization": "Bearer PASTE_A_TOKEN_HERE"}',
      defaultQuery: '{\n  me { externalId name role }\n  campaigns(first: 10) { totalCount nodes { externalId name channel cost { amount currency } } }\n}\n',
    })
  );
})();

// funnelgraph's dashboard (SPEC §10): one page, no build step, everything through the public
// GraphQL API with the signed-in caller's token, so each role sees exactly what the API lets
// it see. Its queries are trusted documents (SPEC §11): the operations of
// documents.graphql, sent by the id of documents.json and their names, never as text, so the
// page works on a server that runs trusted documents only. Money is shown from the API's decimal strings (Intl formats the string itself, so no
// amount passes through a float); `data-amount` keeps the raw figure on every money cell.
(function () {
  'use strict';
  var $ = function (s) { return document.querySelector(s); };
  var token = sessionStorage.getItem('funnelgraph-token');
  var me = null;
  var documentId = null;

  // A deep link may carry the token in the fragment (never sent to the server): take it, and
  // drop it from the address bar.
  if (location.hash.indexOf('#token=') === 0) {
    try { token = decodeURIComponent(location.hash.slice(7)); } catch (e) { token = null; }
    if (token) { sessionStorage.setItem('funnelgraph-token', token); }
    history.replaceState(null, '', location.pathname + location.search);
  }

  // The id of documents.graphql, from its manifest (loaded once).
  function loadDocuments() {
    if (documentId) { return Promise.resolve(documentId); }
    return fetch('/assets/dashboard/documents.json').then(function (r) { return r.json(); }).then(function (m) {
      documentId = 'sha256:' + Object.keys(m)[0];
      return documentId;
    });
  }
  function post(operation, variables) {
    return loadDocuments().then(function (id) {
      return fetch('/graphql', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'Authorization': 'Bearer ' + token },
        body: JSON.stringify({ documentId: id, operationName: operation, variables: variables || {} })
      });
    }).then(function (r) { return r.json(); });
  }
  function gql(operation, variables) {
    return post(operation, variables).then(function (j) {
      if (j.errors && !j.data) { throw new Error(j.errors.map(function (e) { return e.message; }).join('; ')); }
      if (j.errors) { var e = new Error(j.errors[0].message); e.partial = j; throw e; }
      return j.data;
    });
  }
  function esc(s) {
    return String(s == null ? '' : s).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }
  var formats = {};
  function money(m) {
    if (!m) { return '<td>–</td>'; }
    var f = formats[m.currency] || (formats[m.currency] = new Intl.NumberFormat(undefined, { style: 'currency', currency: m.currency }));
    return '<td data-amount="' + esc(m.amount) + '">' + esc(f.format(m.amount)) + '</td>';
  }
  function pct(x) { return x == null ? '–' : (100 * x).toFixed(1) + ' %'; }
  function days(x) { return x == null ? '–' : x.toFixed(1); }
  function fail(el, e) {
    var msg = String(e.message || e);
    el.innerHTML = '<p class="error">' + (msg.indexOf('not allowed') >= 0 || msg.indexOf('may not') >= 0 || msg.indexOf('FORBIDDEN') >= 0 ? 'Not available to your role.' : esc(msg)) + '</p>';
  }

  function period() { return { from: $('#from').value, to: $('#to').value }; }

  function showFunnel() {
    var el = $('#funnel .body');
    return gql('Funnel', { p: period() }).then(function (d) {
      var f = d.funnel;
      var rows = f.stages.map(function (s) {
        return '<tr data-stage="' + esc(s.stage) + '"><td>' + esc(s.stage) + '</td><td data-test="entered">' + esc(s.entered) + '</td><td>' + esc(s.convertedToNext) +
          '</td><td>' + pct(s.conversionRate) + '</td><td>' + days(s.medianDaysToNext) + '</td></tr>';
      }).join('');
      var times = [['Marketing time (inquiry → SAL)', f.marketingTime], ['Sales cycle (SAL → won/lost)', f.salesCycle], ['Handoff (MQL → SAL)', f.handoffTime]]
        .map(function (t) {
          return '<tr><td>' + esc(t[0]) + '</td><td>' + esc(t[1].count) + '</td><td>' + days(t[1].medianDays) + '</td><td>' + days(t[1].p90Days) + '</td><td>' + days(t[1].meanDays) + '</td></tr>';
        }).join('');
      el.innerHTML = '<div class="kpis"><div class="kpi"><b data-test="cohort">' + esc(f.cohortSize) + '</b><span>leads created in the period</span></div></div>' +
        '<table><thead><tr><th>Stage</th><th>Entered</th><th>To next</th><th>Rate</th><th>Median days</th></tr></thead><tbody>' + rows + '</tbody></table>' +
        '<h2 style="margin-top:1rem">Timeframes (days)</h2><table><thead><tr><th></th><th>Leads</th><th>Median</th><th>p90</th><th>Mean</th></tr></thead><tbody>' + times + '</tbody></table>';
    }).catch(function (e) { fail(el, e); });
  }

  function chart(rows) {
    var top = rows.slice().sort(function (a, b) { return Number(b.attributedRevenue.amount) - Number(a.attributedRevenue.amount); }).slice(0, 8);
    if (!top.length) { return ''; }
    // Bar lengths only: drawing needs a number, the figures shown stay the API's strings.
    var max = Math.max.apply(null, top.map(function (r) { return Math.max(Number(r.attributedRevenue.amount), Number(r.cost.amount)); })) || 1;
    var h = 22, w = 520, label = 150, svg = '';
    top.forEach(function (r, i) {
      var y = i * h * 1.6;
      var rev = (w - label) * Number(r.attributedRevenue.amount) / max, cost = (w - label) * Number(r.cost.amount) / max;
      svg += '<text x="0" y="' + (y + 14) + '">' + esc(r.campaign.name.slice(0, 22)) + '</text>' +
        '<rect x="' + label + '" y="' + y + '" width="' + Math.max(rev, 0) + '" height="' + (h / 2) + '" fill="#2457c5"></rect>' +
        '<rect x="' + label + '" y="' + (y + h / 2) + '" width="' + Math.max(cost, 0) + '" height="' + (h / 2) + '" fill="#f0b429"></rect>';
    });
    return '<svg class="chart" role="img" aria-label="Attributed revenue (blue) and cost (yellow) of the top campaigns" viewBox="0 0 ' + w + ' ' + (top.length * h * 1.6) + '">' + svg + '</svg>' +
      '<p class="muted">Blue: attributed revenue; yellow: cost.</p>';
  }

  function showRoi() {
    var el = $('#roi .body');
    return gql('Roi', { m: $('#model').value, p: period() }).then(function (d) {
      var rows = d.campaignRoi;
      el.innerHTML = '<table><thead><tr><th>Campaign</th><th>Cost</th><th>Revenue</th><th>ROI</th><th>Wins</th></tr></thead><tbody>' +
        rows.map(function (r) {
          return '<tr data-campaign="' + esc(r.campaign.externalId) + '"><td>' + esc(r.campaign.name) + '</td>' + money(r.cost) + money(r.attributedRevenue) +
            '<td>' + pct(r.roi) + '</td><td>' + esc(r.wins.toFixed(2)) + '</td></tr>';
        }).join('') + '</tbody></table>' + chart(rows);
    }).catch(function (e) { fail(el, e); });
  }

  function showLeakage() {
    var el = $('#leakage .body');
    return gql('Leakage', { p: period() }).then(function (d) {
      var l = d.leakage;
      var f = formats[l.wastedSpend.currency] || (formats[l.wastedSpend.currency] = new Intl.NumberFormat(undefined, { style: 'currency', currency: l.wastedSpend.currency }));
      el.innerHTML = '<div class="kpis"><div class="kpi"><b data-test="mqls">' + esc(l.mqls) + '</b><span>MQLs</span></div>' +
        '<div class="kpi"><b data-test="leaked">' + esc(l.leaked) + '</b><span>MQLs leaked (' + pct(l.leakageRate) + ')</span></div>' +
        '<div class="kpi"><b data-test="wasted" data-amount="' + esc(l.wastedSpend.amount) + '">' + esc(f.format(l.wastedSpend.amount)) + '</b><span>wasted spend</span></div></div>' +
        '<div id="leaked-leads"></div>';
      // The leads themselves are personal data: shown to the roles that may read them.
      return gql('LeakedLeads', { p: period() })
        .then(function (d2) {
          var ll = d2.leakage.leakedLeads;
          $('#leaked-leads').innerHTML = '<h2>Leaked leads to call (' + esc(ll.totalCount) + ')</h2><table><thead><tr><th>Lead</th><th>Name</th><th>Company</th></tr></thead><tbody>' +
            ll.nodes.map(function (n) {
              return '<tr data-lead="' + esc(n.externalId) + '"><td>' + esc(n.externalId) + '</td><td>' + esc(n.fullName) + '</td><td>' + esc(n.company) + '</td></tr>';
            }).join('') + '</tbody></table>';
        })
        .catch(function () { $('#leaked-leads').innerHTML = '<p class="muted">The leaked leads themselves are not shown to your role.</p>'; });
    }).catch(function (e) { fail(el, e); });
  }

  function showStatements() {
    var box = $('#statements');
    if (!me || (me.role !== 'FINANCE' && me.role !== 'ADMIN')) { box.hidden = true; return Promise.resolve(); }
    box.hidden = false;
    var el = $('#statements .body');
    return gql('Owners').then(function (d) {
      var owners = {};
      d.campaigns.nodes.forEach(function (c) { if (c.owner) { owners[c.owner.externalId] = c.owner; } });
      var ids = Object.keys(owners).sort();
      if (!ids.length) { el.innerHTML = '<p class="muted">No campaign owners.</p>'; return; }
      // One statement per owner, each a request of the same trusted operation.
      return Promise.all(ids.map(function (id) {
        return post('Statement', { u: id, p: period() }).catch(function (e) { return { errors: [{ message: String(e.message || e) }] }; });
      })).then(function (answers) {
        var rows = ids.map(function (id, i) {
          var s = (answers[i].data || {}).compensationStatement;
          if (!s) {
            // One owner's statement failed: say so in its row, the others still show.
            var why = (answers[i].errors || [{ message: 'no statement' }])[0].message;
            return '<tr data-user="' + esc(id) + '"><td>' + esc(owners[id].name) + '</td><td colspan="4" class="error">' + esc(why) + '</td></tr>';
          }
          return '<tr data-user="' + esc(id) + '"><td>' + esc(owners[id].name) + '</td><td data-test="status">' + esc(s.status) + '</td>' + money(s.attributedRevenue) +
            '<td>' + esc(s.qualifiedLeads.toFixed(2)) + '</td>' + money(s.total) + '</tr>';
        }).join('');
        el.innerHTML = '<table><thead><tr><th>Marketer</th><th>Status</th><th>Attributed revenue</th><th>Qualified leads</th><th>Pay</th></tr></thead><tbody>' +
          (rows || '<tr><td colspan="5" class="muted">No statements for this period.</td></tr>') + '</tbody></table>' +
          '<div class="buttons" style="margin-top:.8rem"><button type="button" id="close-period">Close the period</button>' +
          '<button type="button" class="secondary" id="reopen-period">Reopen the period</button></div><p class="error" id="close-error" role="alert"></p>';
        $('#close-period').addEventListener('click', function () { periodAction('ClosePeriod'); });
        $('#reopen-period').addEventListener('click', function () { periodAction('ReopenPeriod'); });
      });
    }).catch(function (e) { fail(el, e); });
  }

  function periodAction(operation) {
    gql(operation, { p: period() }).then(showStatements).catch(function (e) { $('#close-error').textContent = e.message; });
  }

  function showAll() {
    $('#board-error').textContent = '';
    return Promise.all([showFunnel(), showRoi(), showLeakage(), showStatements()]).then(function () {
      document.body.setAttribute('data-ready', 'true');
    });
  }

  function signedIn() {
    return gql('Me').then(function (d) {
      me = d.me;
      $('#who').innerHTML = esc(me.name) + ' · ' + esc(me.role) + ' <button type="button" class="secondary" id="signout">Sign out</button>';
      $('#signout').addEventListener('click', function () { sessionStorage.removeItem('funnelgraph-token'); location.reload(); });
      $('#signin').hidden = true;
      $('#board').hidden = false;
      return showAll();
    });
  }

  function signIn(t) {
    token = t.trim();
    sessionStorage.setItem('funnelgraph-token', token);
    signedIn().catch(function (e) { $('#signin').hidden = false; $('#signin-error').textContent = 'Sign-in failed: ' + e.message; });
  }

  function start() {
    var now = new Date();
    var next = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1));
    $('#from').value = now.getUTCFullYear() + '-01-01';
    $('#to').value = next.toISOString().slice(0, 10);
    $('#period-form').addEventListener('submit', function (e) { e.preventDefault(); showAll(); });
    $('#token-form').addEventListener('submit', function (e) { e.preventDefault(); signIn($('#token').value); });
    fetch('/dev/tokens').then(function (r) { return r.ok ? r.json() : []; }).then(function (list) {
      if (!list.length) { return; }
      $('#dev-roles').hidden = false;
      $('#dev-buttons').innerHTML = list.map(function (t, i) { return '<button type="button" data-i="' + i + '">' + esc(t.role) + '</button>'; }).join('');
      Array.prototype.forEach.call(document.querySelectorAll('#dev-buttons button'), function (b) {
        b.addEventListener('click', function () { signIn(list[Number(b.getAttribute('data-i'))].token); });
      });
    }).catch(function () {});
    if (token) {
      signedIn().catch(function (e) { $('#signin').hidden = false; $('#signin-error').textContent = 'Sign-in failed: ' + e.message; });
    } else {
      $('#signin').hidden = false;
    }
  }
  start();
})();

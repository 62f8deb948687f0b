// The status page's script: one WebSocket and, as it opens, the whole state over HTTP
// (GET /state.json, gzip), then the numbered changes after it; it never polls. Ages count on from the box's time (offset by the clock difference seen on
// each message). Written without template literals: it lives in a TS template string
// (not String.raw, whose template object V8 keeps with two more copies; hence \\u).
export const PAGE_JS = `'use strict';
(function () {
  var HOUR = 3600000, BUCKET = 10000;
  var state = {}, history = {}, offset = 0, socket = null, retryMs = 500;
  var $ = function (id) { return document.getElementById(id); };
  function esc(v) { return String(v).replace(/[&<>"']/g, function (c) { return '&#' + c.charCodeAt(0) + ';'; }); }
  function setText(id, text) { var el = $(id); if (el && el.textContent !== text) el.textContent = text; }
  function setHtml(el, html) { if (el.__html !== html) { el.innerHTML = html; el.__html = html; } }
  function now() { return Date.now() + offset; }
  function duration(ms) {
    var s = Math.max(0, Math.floor(ms / 1000)), d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
    if (d > 0) return d + ' d ' + h + ' h';
    if (h > 0) return h + ' h ' + m + ' min';
    if (m > 0) return m + ' min ' + (s % 60) + ' s';
    return (s % 60) + ' s';
  }
  function ago(atMs) { return atMs == null ? '\\u2013' : duration(now() - atMs) + ' ago'; }
  function bytes(n) { var u = ['B', 'kB', 'MB', 'GB', 'TB'], i = 0; while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; } return (i ? n.toFixed(1) : n) + ' ' + u[i]; }
  function fmt(v) { return typeof v !== 'number' ? String(v) : Math.abs(v) >= 1000 ? String(Math.round(v)) : Math.abs(v) >= 100 ? v.toFixed(1) : Number(v.toPrecision(4)).toString(); }
  function short(id) { return id ? id.slice(0, 8) : '?'; }

  function renderBox() {
    var b = state.box; if (!b) return;
    setText('title-device', short(b.device));
    setText('device', b.device);
    setText('owner', b.owner || 'not paired');
    setText('version', b.version);
    var q = b.time.quality;
    setText('time', q === 'none' ? 'not synchronised' : 'synchronised (' + q + ')' + (b.time.jumps ? ', ' + b.time.jumps + ' jumps' : ''));
    $('time').className = q === 'none' ? 'bad' : 'ok';
    if (b.disk) { setText('disk', b.disk.percent + ' % of ' + bytes(b.disk.totalBytes)); $('disk-meter').value = b.disk.percent; }
    else setText('disk', 'unknown');
  }

  function renderSensors() {
    var rows = (state.sensors || []).map(function (s) {
      var vals = s.values.length ? s.values : [null];
      return vals.map(function (v, i) {
        var name = v && v.name !== s.name ? v.name : s.name;
        var value = !s.ok ? '<span class="bad">failing' + (s.error ? ': ' + esc(s.error) : '') + '</span>'
          : v ? esc(fmt(v.value)) + (v.unit ? ' ' + esc(v.unit) : '') : '<span class="muted">no reading yet</span>';
        return '<tr><th scope="row" title="' + esc(s.kind) + '">' + esc(name) + '</th><td class="value" data-sensor="' + esc(name) + '">' + value +
          '</td><td data-at="' + (v ? v.atMs : '') + '">' + (v ? esc(ago(v.atMs)) : '\\u2013') + '</td></tr>';
      }).join('');
    }).join('');
    setHtml($('sensor-rows'), rows);
  }

  function chart(name, series) {
    var pts = series.points, w = 300, h = 90, pad = 14;
    if (!pts.length) return '';
    // The span drawn is the last hour, or less while the box has not been up that long.
    var t1 = now(), t0 = Math.max(t1 - HOUR, Math.min(pts[0][0], t1 - 60000)), span = t1 - t0, lo = Infinity, hi = -Infinity;
    pts.forEach(function (p) { if (p[1] < lo) lo = p[1]; if (p[1] > hi) hi = p[1]; });
    if (hi === lo) { hi += 1; lo -= 1; }
    var x = function (t) { return (Math.min(1, Math.max(0, (t - t0) / span)) * (w - 4)).toFixed(1); };
    var y = function (v) { return (pad + (1 - (v - lo) / (hi - lo)) * (h - 2 * pad)).toFixed(1); };
    var d = pts.map(function (p, i) { return (i ? 'L' : 'M') + x(p[0]) + ' ' + y(p[1]); }).join('');
    var last = pts[pts.length - 1][1];
    return '<figure><figcaption><span>' + esc(name) + (series.unit ? ' (' + esc(series.unit) + ')' : '') + '</span><span>' + (span >= HOUR - 1000 ? 'last hour' : 'last ' + Math.max(1, Math.round(span / 60000)) + ' min') + '</span></figcaption>' +
      '<svg class="chart" viewBox="0 0 ' + w + ' ' + h + '" role="img" aria-label="' + esc(name) + ' over the last ' + duration(span) + ': from ' + fmt(lo) + ' to ' + fmt(hi) + ', now ' + fmt(last) + '">' +
      '<line class="axis" x1="0" y1="' + (h - 1) + '" x2="' + w + '" y2="' + (h - 1) + '"/>' +
      '<text x="2" y="10">' + esc(fmt(hi)) + '</text><text x="2" y="' + (h - 4) + '">' + esc(fmt(lo)) + '</text>' +
      '<path class="line" d="' + d + '"/><circle class="dot" r="3" cx="' + x(pts[pts.length - 1][0]) + '" cy="' + y(last) + '"/></svg></figure>';
  }
  function renderCharts() {
    setHtml($('charts'), Object.keys(history).sort().map(function (n) { return chart(n, history[n]); }).join(''));
  }
  function addPoint(p) {
    var s = history[p[0]] || (history[p[0]] = { unit: p[1], points: [] }), pts = s.points, last = pts[pts.length - 1];
    if (last && Math.floor(last[0] / BUCKET) === Math.floor(p[2] / BUCKET)) { last[0] = p[2]; last[1] = p[3]; } else pts.push([p[2], p[3]]);
    while (pts.length && pts[0][0] < now() - HOUR) pts.shift();
  }

  // The whole state's charts come packed (agent/status/history.ts): steps of 100 ms.
  function unpack(packed) {
    var out = {};
    Object.keys(packed).forEach(function (name) {
      var p = packed[name], t = p.t0, pts = [];
      p.v.forEach(function (v, i) { t += p.dt[i]; pts.push([t * 100, v]); });
      out[name] = { unit: p.unit, points: pts };
    });
    return out;
  }

  function renderQueue() {
    var q = state.queue; if (!q) return;
    setText('q-waiting', q.waiting + (q.waiting === 1 ? ' reading' : ' readings'));
    $('q-oldest').setAttribute('data-at', q.oldestStoredMs == null ? '' : q.oldestStoredMs);
    setText('q-oldest', q.oldestStoredMs == null ? 'none waiting' : ago(q.oldestStoredMs));
    setText('q-dropped', String(q.dropped));
    $('q-dropped').className = q.dropped ? 'num bad' : 'num';
    setText('q-receipt', q.lastReceiptSeq == null ? 'none yet' : 'seq ' + q.lastReceiptSeq + (q.lastReceiptAtMs ? ', ' + ago(q.lastReceiptAtMs) : ''));
  }

  function renderUplink() {
    var u = state.uplink; if (!u) return;
    var text = u.connected ? 'connected' : u.viaMesh ? 'through the mesh (via ' + short(u.viaMesh) + ')'
      : (u.broker ? 'not connected' : 'no broker configured') + (state.mesh ? '; no route through the mesh' : '');
    setText('u-state', text);
    $('u-state').className = u.connected || u.viaMesh ? 'ok' : 'bad';
    setText('u-broker', u.broker || '\\u2013');
    setText('u-since', u.connectedSinceMs ? new Date(u.connectedSinceMs).toLocaleString() + ' (' + duration(now() - u.connectedSinceMs) + ')' : '\\u2013');
    setText('u-version', u.mqttVersion ? 'MQTT ' + u.mqttVersion : '\\u2013');
    setText('u-errors', String(u.errorsLastHour));
  }

  function graph(m) {
    var W = 400, H = 300, cx = W / 2, cy = H / 2, pos = {}, edges = [], routeEdges = {};
    pos[m.node] = [cx, cy];
    m.neighbours.forEach(function (n, i, all) {
      // Neighbours around this box, the first to its left: two neighbours make a line across.
      var a = Math.PI + 2 * Math.PI * i / Math.max(1, all.length) + (all.length > 2 ? Math.PI / all.length : 0);
      pos[n.node] = [cx + 110 * Math.cos(a), cy + 80 * Math.sin(a)];
      edges.push([m.node, n.node, n.cost]);
    });
    var uplinks = {}, far = m.routes.filter(function (r) { return r.selected && r.via && !pos[r.dest]; });
    m.routes.forEach(function (r) { if (r.uplink) uplinks[r.dest] = true; });
    far.forEach(function (r, i) {
      var v = pos[r.via] || [cx, cy], a = Math.atan2(v[1] - cy, v[0] - cx) + (i % 2 ? 0.35 : -0.35) * (far.length > 1 ? 1 : 0);
      pos[r.dest] = [cx + 170 * Math.cos(a), cy + 120 * Math.sin(a)];
      edges.push([r.via, r.dest, Math.max(0, r.total - (m.neighbours.filter(function (n) { return n.node === r.via; })[0] || { cost: 0 }).cost)]);
    });
    var best = m.routes.filter(function (r) { return r.uplink && r.selected && r.via; }).sort(function (a, b) { return a.total - b.total; })[0];
    if (best) { routeEdges[m.node + '>' + best.via] = true; routeEdges[best.via + '>' + best.dest] = true; }
    // Only as tall as the boxes drawn: a line of three takes a strip, not a square.
    var ys = Object.keys(pos).map(function (id) { return pos[id][1]; }), top = Math.max(0, Math.min.apply(null, ys) - 25), bottom = Math.min(H, Math.max.apply(null, ys) + 40);
    var svg = '<svg class="graph" viewBox="0 ' + top.toFixed(0) + ' ' + W + ' ' + (bottom - top).toFixed(0) + '" role="img" aria-labelledby="graph-title"><title id="graph-title">Mesh: this box and ' + m.neighbours.length + ' neighbours' + (best ? ', route to the uplink via ' + short(best.via) : ', no route to an uplink') + '</title>';
    edges.forEach(function (e) {
      var a = pos[e[0]], b = pos[e[1]]; if (!a || !b) return;
      var onRoute = routeEdges[e[0] + '>' + e[1]] || routeEdges[e[1] + '>' + e[0]];
      svg += '<line class="edge' + (onRoute ? ' route' : '') + '" x1="' + a[0].toFixed(1) + '" y1="' + a[1].toFixed(1) + '" x2="' + b[0].toFixed(1) + '" y2="' + b[1].toFixed(1) + '"/>' +
        '<text class="cost" x="' + ((a[0] + b[0]) / 2 + 4).toFixed(1) + '" y="' + ((a[1] + b[1]) / 2 - 4).toFixed(1) + '">' + e[2] + '</text>';
    });
    Object.keys(pos).forEach(function (id) {
      var p = pos[id], cls = 'node' + (id === m.node ? ' self' : '') + (uplinks[id] ? ' uplink' : '');
      svg += '<g data-node="' + esc(id) + '"><circle class="' + cls + '" cx="' + p[0].toFixed(1) + '" cy="' + p[1].toFixed(1) + '" r="' + (id === m.node ? 13 : 10) + '"/>' +
        '<text text-anchor="middle" x="' + p[0].toFixed(1) + '" y="' + (p[1] + 28).toFixed(1) + '">' + esc(short(id)) + (id === m.node ? ' (this)' : '') + '</text></g>';
    });
    return svg + '</svg><p class="legend"><span class="route">\\u2501</span> route to the uplink \\u00b7 green ring: box with an uplink \\u00b7 numbers: link cost</p>';
  }
  function linkRow(l) {
    var budget = '\\u2013';
    if (l.allowanceMs) {
      var used = l.airtimeLastHourMs || 0, pct = Math.min(100, Math.round(100 * used / l.allowanceMs));
      budget = '<span class="bar' + (l.budgetLeftMs === 0 ? ' full' : '') + '" role="img" aria-label="' + pct + ' % of the duty-cycle budget used"><span style="width:' + pct + '%"></span></span> ' +
        (used / 1000).toFixed(1) + ' s of ' + (l.allowanceMs / 1000).toFixed(0) + ' s';
    } else if (l.airtimeLastHourMs == null) budget = 'no duty cycle';
    return '<tr><th scope="row">' + esc(l.name) + '</th><td>' + l.txFrames + ' / ' + l.rxFrames + '</td><td>' + bytes(l.txBytes) + ' / ' + bytes(l.rxBytes) + '</td><td>' + budget + '</td></tr>';
  }
  function renderMesh() {
    var m = state.mesh, body = $('mesh-body');
    if (!m) { setHtml(body, '<p class="muted">The mesh is off on this box.</p>'); return; }
    var c = m.counters;
    var neighbours = m.neighbours.map(function (n) { return '<li><span class="mono">' + esc(short(n.node)) + '</span> on ' + esc(n.link) + ', cost ' + n.cost + '</li>'; }).join('');
    setHtml(body, '<div class="mesh-layout"><div>' + graph(m) + '</div><div>' +
      '<h3 class="sr-only">Neighbours</h3><ul id="neighbours">' + (neighbours || '<li class="muted">no neighbour heard</li>') + '</ul>' +
      '<table class="grid"><caption class="sr-only">Links</caption><thead><tr><th scope="col">Link</th><th scope="col">Frames out / in</th><th scope="col">Bytes out / in</th><th scope="col">Airtime / budget (hour)</th></tr></thead><tbody>' +
      m.links.map(linkRow).join('') + '</tbody></table>' +
      '<dl class="facts"><dt>Forwarded</dt><dd class="num">' + c.forwarded + '</dd><dt>Delivered</dt><dd class="num">' + c.delivered + '</dd><dt>Dropped</dt><dd class="num">' + c.dropped +
      '</dd><dt>Rejected</dt><dd class="num">' + c.rejected + '</dd><dt>Held for budget</dt><dd class="num">' + c.heldForBudget + '</dd></dl></div></div>');
  }

  function renderProblems() {
    var p = state.problems || [];
    var html = p.length
      ? '<div class="banner"><strong>' + (p.length === 1 ? 'One problem' : p.length + ' problems') + '</strong><ul>' +
        p.map(function (x) { return '<li data-problem="' + esc(x.id) + '"><span class="what">' + esc(x.text) + '</span> <span class="todo">' + esc(x.action) + '</span></li>'; }).join('') + '</ul></div>'
      : '<div class="banner healthy"><strong>Healthy: nothing to do.</strong></div>';
    setHtml($('problems'), html);
    // A tab in the background still says whether the box needs attention.
    var title = (p.length ? '\\u26a0 ' + p.length + (p.length === 1 ? ' problem' : ' problems') + ' \\u00b7 ' : '') + 'iop-agent ' + short(state.box ? state.box.device : '');
    if (document.title !== title) document.title = title;
  }

  var renderers = { box: renderBox, sensors: renderSensors, queue: renderQueue, uplink: renderUplink, mesh: renderMesh, problems: renderProblems };
  function tick() {
    if (state.box) setText('uptime', duration(now() - state.box.startedAtMs));
    document.querySelectorAll('[data-at]').forEach(function (el) { var at = el.getAttribute('data-at'); if (at) { var t = ago(Number(at)); if (el.textContent !== t) el.textContent = t; } });
    if (state.uplink && state.uplink.connectedSinceMs) renderUplink();
  }

  // The whole state comes over HTTP (compressed), fetched as the socket opens; the socket
  // says with its 'sync' which change it numbers next, and the state counts once it is at
  // least that recent (else it is fetched again). Changes wait until then, and only those
  // numbered after the state are applied.
  var synced = false, fetchingFor = null, pending = [], need = -1, stateSeq = -1, first = true;
  function applyState(s) {
    if (typeof s.nowMs === 'number') offset = s.nowMs - Date.now();
    state = s.state; history = unpack(s.history || {}); stateSeq = s.seq;
    Object.keys(renderers).forEach(function (k) { renderers[k](); }); renderCharts(); tick();
    document.body.classList.remove('loading');
    if (first) {
      // For the bench (bench/status-page.ts): drawn, then free to answer after that frame.
      first = false; performance.mark('first-state');
      requestAnimationFrame(function () { setTimeout(function () { performance.mark('interactive'); }, 0); });
    }
  }
  function fetchState() {
    var ws = socket;
    if (fetchingFor === ws) return;
    fetchingFor = ws;
    // A state that has not come in 10 s (a stalled connection) is asked for again, with a new socket.
    var abort = new AbortController(), timer = setTimeout(function () { abort.abort(); }, 10000);
    fetch('/state.json', { cache: 'no-store', signal: abort.signal }).then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); }).then(function (s) {
      clearTimeout(timer);
      if (ws !== socket) return;
      fetchingFor = null;
      if (!synced) { applyState(s); settle(); }
    }).catch(function () {
      clearTimeout(timer);
      // Closing the socket reconnects it, which fetches again.
      if (ws !== socket) return;
      fetchingFor = null; ws.close();
    });
  }
  function settle() {
    if (synced || need < 0) return;
    if (stateSeq < need) { fetchState(); return; }
    synced = true;
    var queued = pending; pending = [];
    queued.forEach(function (m) { if (m.seq > stateSeq) apply(m); });
  }
  function apply(msg) {
    if (typeof msg.nowMs === 'number') offset = msg.nowMs - Date.now();
    if (msg.t === 'change') { Object.keys(msg.state).forEach(function (k) { state[k] = msg.state[k]; if (renderers[k]) renderers[k](); }); }
    else if (msg.t === 'points') { msg.points.forEach(addPoint); renderCharts(); }
    tick();
  }
  function onMessage(ev) {
    var msg; try { msg = JSON.parse(ev.data); } catch (e) { return; }
    if (msg.t === 'sync') { need = msg.seq; synced = false; settle(); }
    else if (synced) apply(msg);
    else pending.push(msg);
  }

  function connect() {
    socket = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws');
    synced = false; pending = []; need = -1; stateSeq = -1;
    fetchState();
    socket.onopen = function () { retryMs = 500; var el = $('link-state'); el.textContent = 'live'; el.className = 'link-state live'; };
    socket.onmessage = onMessage;
    socket.onclose = function () {
      var el = $('link-state'); el.textContent = 'agent unreachable, retrying'; el.className = 'link-state down';
      setTimeout(connect, retryMs); retryMs = Math.min(retryMs * 2, 10000);
    };
  }

  $('copy').addEventListener('click', function () {
    var id = $('device').textContent, btn = $('copy');
    var done = function () { btn.textContent = 'Copied'; setTimeout(function () { btn.textContent = 'Copy'; }, 1500); };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(id).then(done, function () {});
    else { var r = document.createRange(); r.selectNodeContents($('device')); var s = getSelection(); s.removeAllRanges(); s.addRange(r); if (document.execCommand('copy')) done(); }
  });
  setInterval(tick, 1000);
  connect();
})();
`;

// The status page's document: landmarks and headings for screen readers; every value has
// its label; the problem banner and the connection state are live regions.
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>iop-agent status</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/app.css">
<script src="/app.js" defer></script>
</head>
<body class="loading">
<header class="top">
  <h1>iop-agent <span id="title-device" class="mono"></span></h1>
  <p id="link-state" class="link-state" role="status" aria-live="polite">connecting&hellip;</p>
</header>
<div id="problems" class="problems" role="region" aria-label="Problems" aria-live="polite"></div>
<main>
  <section id="box" aria-labelledby="h-box" class="card">
    <h2 id="h-box">Box</h2>
    <dl class="facts">
      <dt>Device id</dt><dd><span id="device" class="mono wrap"></span> <button type="button" id="copy" class="copy" aria-label="Copy the device id">Copy</button></dd>
      <dt>Owner</dt><dd id="owner" class="mono wrap"></dd>
      <dt>Version</dt><dd id="version"></dd>
      <dt>Uptime</dt><dd id="uptime" class="num"></dd>
      <dt>Time</dt><dd id="time"></dd>
      <dt>Disk (state dir)</dt><dd><span id="disk" class="num"></span> <meter id="disk-meter" min="0" max="100" low="75" high="90" optimum="0" value="0" aria-label="Disk use"></meter></dd>
    </dl>
  </section>
  <section id="sensors" aria-labelledby="h-sensors" class="card">
    <h2 id="h-sensors">Sensors</h2>
    <table class="grid"><thead><tr><th scope="col">Sensor</th><th scope="col">Value</th><th scope="col">Age</th></tr></thead><tbody id="sensor-rows"></tbody></table>
    <div id="charts" class="charts"></div>
  </section>
  <div class="stack">
  <section id="queue" aria-labelledby="h-queue" class="card">
    <h2 id="h-queue">Queue</h2>
    <dl class="facts">
      <dt>Waiting</dt><dd id="q-waiting" class="num"></dd>
      <dt>Oldest waiting</dt><dd id="q-oldest" class="num"></dd>
      <dt>Dropped</dt><dd id="q-dropped" class="num"></dd>
      <dt>Last receipt</dt><dd id="q-receipt" class="num"></dd>
    </dl>
  </section>
  <section id="uplink" aria-labelledby="h-uplink" class="card">
    <h2 id="h-uplink">Uplink</h2>
    <dl class="facts">
      <dt>State</dt><dd id="u-state"></dd>
      <dt>Broker</dt><dd id="u-broker" class="mono wrap"></dd>
      <dt>Connected since</dt><dd id="u-since" class="num"></dd>
      <dt>MQTT version</dt><dd id="u-version"></dd>
      <dt>Errors (last hour)</dt><dd id="u-errors" class="num"></dd>
    </dl>
  </section>
  </div>
  <section id="mesh" aria-labelledby="h-mesh" class="card wide">
    <h2 id="h-mesh">Mesh</h2>
    <div id="mesh-body"></div>
  </section>
</main>
<footer class="foot"><p>Read-only view of this box, updated live.</p></footer>
</body>
</html>
`;

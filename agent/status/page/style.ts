// The status page's style: one column on a phone, a grid on wider screens; numbers in
// tabular figures and fixed boxes so values changing never move the layout.
export const PAGE_CSS = `
:root { color-scheme: light dark; --bg: #f6f7f9; --card: #fff; --fg: #1b1f24; --muted: #5b6470; --line: #d7dce2;
  --ok: #1f7a3a; --bad: #b3261e; --warn: #8a5a00; --accent: #1d5fbf; --route: #d97706; }
@media (prefers-color-scheme: dark) { :root { --bg: #111418; --card: #1b2027; --fg: #e8eaed; --muted: #a0a8b3; --line: #323943;
  --ok: #5fcf80; --bad: #ff8a80; --warn: #f0c060; --accent: #7fb0ff; --route: #fbbf24; } }
* { box-sizing: border-box; }
/* Until the first state arrives nothing is shown, so nothing moves when it fills in. */
.loading main, .loading .foot { visibility: hidden; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--fg); }
.top { display: flex; flex-wrap: wrap; align-items: baseline; justify-content: space-between; gap: .25rem 1rem; padding: .75rem 1rem; border-bottom: 1px solid var(--line); background: var(--card); }
h1 { font-size: 1.15rem; margin: 0; }
h2 { font-size: 1rem; margin: 0 0 .5rem; }
.link-state { margin: 0; color: var(--muted); font-size: .9rem; min-width: 10ch; text-align: right; }
.link-state.live::before { content: "\\25CF\\20"; color: var(--ok); }
.link-state.down::before { content: "\\25CF\\20"; color: var(--bad); }
.problems { padding: 0 1rem; }
.problems:empty { display: none; }
.banner { margin: .75rem 0 0; padding: .6rem .8rem; border-radius: 6px; border: 2px solid var(--bad); background: color-mix(in srgb, var(--bad) 12%, var(--card)); }
.banner.healthy { border-color: var(--ok); background: color-mix(in srgb, var(--ok) 10%, var(--card)); }
.banner strong { display: block; }
.banner ul { margin: .25rem 0 0; padding-left: 1.2rem; }
.banner .what { font-weight: 600; }
.banner .todo { color: var(--fg); }
main { display: grid; gap: .75rem; padding: .75rem 1rem 1rem; grid-template-columns: repeat(auto-fit, minmax(min(100%, 330px), 1fr)); align-items: start; }
/* Queue and uplink share a column. */
.stack { display: grid; gap: .75rem; min-width: 0; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: .75rem .9rem; min-width: 0; }
.card.wide { grid-column: 1 / -1; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem .9rem; margin: 0; }
.facts dt { color: var(--muted); }
.facts dd { margin: 0; min-height: 1.45em; }
.mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: .88em; }
.wrap { overflow-wrap: anywhere; }
.num { font-variant-numeric: tabular-nums; }
.copy { font: inherit; font-size: .8rem; padding: .1rem .5rem; border: 1px solid var(--line); border-radius: 4px; background: var(--bg); color: var(--fg); cursor: pointer; }
.copy:focus-visible, a:focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
meter { width: 6rem; height: .8rem; vertical-align: middle; }
.grid { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; table-layout: fixed; }
.grid th, .grid td { text-align: left; padding: .2rem .3rem; border-bottom: 1px solid var(--line); overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.grid th { color: var(--muted); font-weight: 500; }
.grid td.value { font-weight: 600; }
#sensors .grid th:nth-child(1) { width: 38%; } #sensors .grid th:nth-child(2) { width: 37%; }
.bad { color: var(--bad); }
.ok { color: var(--ok); }
.muted { color: var(--muted); }
.charts { display: grid; gap: .5rem; margin-top: .6rem; grid-template-columns: repeat(auto-fill, minmax(min(100%, 260px), 1fr)); }
figure { margin: 0; }
figcaption { font-size: .85rem; color: var(--muted); display: flex; justify-content: space-between; }
.chart { width: 100%; height: auto; aspect-ratio: 300 / 90; display: block; }
.chart .line { fill: none; stroke: var(--accent); stroke-width: 1.6; vector-effect: non-scaling-stroke; }
.chart .dot { fill: var(--accent); }
.chart .axis { stroke: var(--line); stroke-width: 1; }
.chart text { fill: var(--muted); font-size: 10px; }
.mesh-layout { display: grid; gap: .75rem; grid-template-columns: repeat(auto-fit, minmax(min(100%, 320px), 1fr)); }
.graph { width: 100%; height: auto; display: block; max-width: 520px; }
.graph .edge { stroke: var(--muted); stroke-width: 1.5; }
.graph .edge.route { stroke: var(--route); stroke-width: 4; }
.graph .node { fill: var(--card); stroke: var(--accent); stroke-width: 2; }
.graph .node.self { fill: var(--accent); }
.graph .node.uplink { stroke: var(--ok); stroke-width: 4; }
.graph text { fill: var(--fg); font-size: 11px; font-family: ui-monospace, Menlo, Consolas, monospace; }
.graph .cost { fill: var(--muted); font-size: 10px; }
.legend { font-size: .85rem; color: var(--muted); margin: .25rem 0 0; }
.legend .route { color: var(--route); font-weight: 700; }
.bar { display: inline-block; width: 5rem; height: .6rem; border: 1px solid var(--line); border-radius: 3px; vertical-align: middle; position: relative; overflow: hidden; }
.bar > span { position: absolute; inset: 0 auto 0 0; background: var(--accent); }
.bar.full > span { background: var(--bad); }
.foot { padding: 0 1rem 1rem; color: var(--muted); font-size: .85rem; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
`;

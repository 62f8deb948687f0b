// The page's files, as modules: the single executable carries them (no files on disk,
// no CDN, no build step on the box). ASCII only, other characters as escapes (\u2013,
// &hellip;): V8 keeps an ASCII string in one byte a character, any other in two.
import type { Asset } from '../server.ts';
import { PAGE_CSS } from './style.ts';
import { PAGE_HTML } from './html.ts';
import { PAGE_JS } from './script.ts';

export const PAGE_ASSETS = new Map<string, Asset>([
  ['/', { type: 'text/html; charset=utf-8', body: PAGE_HTML }],
  ['/app.css', { type: 'text/css; charset=utf-8', body: PAGE_CSS }],
  ['/app.js', { type: 'text/javascript; charset=utf-8', body: PAGE_JS }],
]);

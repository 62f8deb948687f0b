// `host:port` as the config's metrics.listen and status.listen and the --metrics and
// --status flags take it. Apart from the listeners: the agent parses its flags at start,
// and importing the listener would load node:http into every box that serves nothing.
import { LISTEN_ADDRESS } from '../config/schema.ts';
import { IopError } from '../errors.ts';

export interface ListenAddress {
  host: string;
  port: number;
}

/** `host:port` or `[v6]:port`, as the config and --metrics take it. */
export function parseListenAddress(text: string, where: string): ListenAddress {
  const match = LISTEN_ADDRESS.exec(text);
  const port = Number(match?.[2]);
  if (!match || port > 65_535) throw new IopError('USAGE', `${where} expects host:port, e.g. 127.0.0.1:9464 ([::1]:9464 for IPv6), got '${text}'`);
  return { host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}
